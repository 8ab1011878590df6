"""IoT Edge specifics: deployment content for `$edgeAgent`/`$edgeHub`, and reading the
`$edgeAgent` module twin back into the common model (`ModuleSpec`, `ModuleReport`).

Deployment content. A *layered* deployment (the default; the idiomatic staged rollout:
one per release, widened by tagging devices) writes only
`properties.desired.modules.<name>` into `$edgeAgent` and never runtime settings, so the
base deployment's registry credentials stay in force. A *base* deployment (label
`fleet-tui.kind = base`) writes the whole `properties.desired` of `$edgeAgent` (schemaVersion,
runtime with `registryCredentials`, systemModules, modules) and of `$edgeHub`.

Registry credentials: IoT Edge has no secret references in deployment content — whatever
is there reaches every device twin in clear. So fleet-tui never writes a password it has
resolved: `password` is written as the placeholder `${NAME}` of the config's
`password_env` (the deployment.template.json convention), to be substituted by the
operator's pipeline; username and address are written as they are.

Device state from `$edgeAgent` reported properties (per module):
- desired `$version` ≠ reported `lastDesiredVersion` → pending (agent has not caught up);
- image and runtimeStatus as desired → running; same image but backoff/failed/unhealthy
  → failed (with exitCode); same image otherwise → applying;
- a different (old) image: with `lastDesiredStatus.code` 200 → applying; with 500 (the
  agent's status during a slow pull) or no report yet → downloading, NOT failed; with
  400/412 (bad content, schema mismatch) → failed; with 406 (device not reporting) → offline.
Digests come from digest-pinned refs (`…@sha256:…`); `imageHash` is the image *id* on the
device, not the manifest digest, so it is not used as one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from fleet_tui.config import RegistryAuth
from fleet_tui.errors import UsageError
from fleet_tui.hub.protocol import Deployment, ModuleReport, ModuleSpec

EDGE_AGENT, EDGE_HUB = "$edgeAgent", "$edgeHub"
SCHEMA_VERSION = "1.1"
KIND_LABEL = "fleet-tui.kind"
LAYER_PREFIX = "properties.desired.modules."
FAILED_STATUSES = {"backoff", "failed", "unhealthy", "dead"}
SYSTEM_MODULES = {
    "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4"}},
    "edgeHub": {
        "type": "docker",
        "status": "running",
        "restartPolicy": "always",
        "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4"},
    },
}


def registry_host(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


def image_digest(image: str) -> str:
    return image.split("@", 1)[1] if "@sha256:" in image else ""


def check_pinned(spec: ModuleSpec) -> None:
    if not image_digest(spec.image):
        raise UsageError(
            f"module {spec.name}: image {spec.image} is not digest-pinned; IoT Edge devices do not "
            "notice a re-pushed tag, deploy host/repo@sha256:… instead"
        )


def module_entry(spec: ModuleSpec) -> dict[str, Any]:
    return {
        "version": "1.0",
        "type": "docker",
        "status": "running",
        "restartPolicy": "always",
        "settings": {"image": spec.image, "createOptions": spec.create_options or "{}"},
    }


def credentials_by_reference(images: list[str], auth: Mapping[str, RegistryAuth]) -> dict[str, Any]:
    """registryCredentials for the registries of `images`, passwords as `${ENV}` placeholders."""
    creds: dict[str, Any] = {}
    for host in sorted({registry_host(image) for image in images}):
        entry = auth.get(host)
        if entry is None:
            continue
        ref = entry.password_env or "REGISTRY_PASSWORD_" + "".join(c if c.isalnum() else "_" for c in host).upper()
        alias = "".join(c for c in host if c.isalnum())
        creds[alias] = {"username": entry.username, "password": "${" + ref + "}", "address": host}
    return creds


def modules_content(deployment: Deployment, auth: Mapping[str, RegistryAuth]) -> dict[str, dict[str, Any]]:
    """`content.modulesContent` for an IoT Hub configuration."""
    for spec in deployment.modules.values():
        check_pinned(spec)
    modules = {name: module_entry(spec) for name, spec in sorted(deployment.modules.items())}
    if deployment.labels.get(KIND_LABEL, "layered") != "base":
        return {EDGE_AGENT: {LAYER_PREFIX + name: entry for name, entry in modules.items()}}
    runtime_settings: dict[str, Any] = {"minDockerVersion": "v1.25"}
    creds = credentials_by_reference([s.image for s in deployment.modules.values()], auth)
    if creds:
        runtime_settings["registryCredentials"] = creds
    return {
        EDGE_AGENT: {
            "properties.desired": {
                "schemaVersion": SCHEMA_VERSION,
                "runtime": {"type": "docker", "settings": runtime_settings},
                "systemModules": SYSTEM_MODULES,
                "modules": modules,
            }
        },
        EDGE_HUB: {
            "properties.desired": {
                "schemaVersion": SCHEMA_VERSION,
                "routes": {"upstream": "FROM /messages/* INTO $upstream"},
                "storeAndForwardConfiguration": {"timeToLiveSecs": 7200},
            }
        },
    }


def _spec(name: str, entry: Any) -> ModuleSpec:
    settings = entry.get("settings", {}) if isinstance(entry, dict) else {}
    options = settings.get("createOptions", "")
    return ModuleSpec(name, str(settings.get("image", "")), "" if options == "{}" else str(options))


def modules_from_content(content: Mapping[str, Any] | None) -> dict[str, ModuleSpec]:
    """Module specs of a configuration's modulesContent (layered or base); never credentials."""
    agent = (content or {}).get(EDGE_AGENT) or {}
    full = agent.get("properties.desired", {}).get("modules", {})
    specs = {name: _spec(name, entry) for name, entry in full.items()}
    for key, entry in agent.items():
        if key.startswith(LAYER_PREFIX) and "." not in key[len(LAYER_PREFIX) :]:
            name = key[len(LAYER_PREFIX) :]
            specs[name] = _spec(name, entry)
    return specs


def desired_modules(agent_twin: Mapping[str, Any]) -> dict[str, ModuleSpec]:
    desired = agent_twin.get("properties", {}).get("desired", {})
    return {name: _spec(name, entry) for name, entry in (desired.get("modules") or {}).items()}


def applied_ids(twin: Mapping[str, Any]) -> list[str]:
    """Ids of the configurations the hub reports as Applied to this twin, in listed order."""
    return [cid for cid, c in (twin.get("configurations") or {}).items() if (c or {}).get("status") == "Applied"]


def applied_configuration(twin: Mapping[str, Any], ranks: Mapping[str, tuple[int, float]] | None = None) -> str:
    """The deployment in force on this twin ('' if none): of the Applied configurations,
    the one with the highest priority, a tie going to the later creation — the rule IoT Edge
    uses to pick a deployment. `ranks` maps id → (priority, created); an id missing from it
    (deleted meanwhile) ranks below every known one."""
    applied = applied_ids(twin)
    if len(applied) < 2 or not ranks:
        return applied[0] if applied else ""
    unknown = (-(2**63), float("-inf"))
    return max(applied, key=lambda cid: ranks.get(cid, unknown))


def timestamp(value: Any) -> float:
    if not value or not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def module_reports(agent_twin: Mapping[str, Any]) -> dict[str, ModuleReport]:
    """The `$edgeAgent` module twin (raw JSON) → one ModuleReport per desired or reported module."""
    props = agent_twin.get("properties", {})
    desired, reported = props.get("desired", {}), props.get("reported", {})
    want = desired_modules(agent_twin)
    have = reported.get("modules") or {}
    caught_up = desired.get("$version") == reported.get("lastDesiredVersion")
    status = reported.get("lastDesiredStatus") or {}
    code = int(status.get("code") or 0)
    reports: dict[str, ModuleReport] = {}
    for name in sorted(set(want) | set(have)):
        got = have.get(name) or {}
        image = str((got.get("settings") or {}).get("image", ""))
        runtime = str(got.get("runtimeStatus", "")).lower()
        target = want.get(name)
        error = ""
        if target is None:
            state = "running" if runtime == "running" else "failed"  # left over from an older deployment
        elif not caught_up:
            state = "pending"
        elif image == target.image:
            wanted = str((desired.get("modules", {}).get(name) or {}).get("status", "running")).lower()
            if runtime == wanted:
                state = "running"
            elif runtime in FAILED_STATUSES:
                state, error = "failed", f"{runtime}, exit code {got.get('exitCode', '?')}"
            else:
                state = "applying"
        elif code == 200:
            state = "applying"
        elif code in (0, 500):
            state = "downloading"  # a slow pull shows as 500 with the old image
        elif code == 406:
            state = "offline"
        else:
            state, error = "failed", f"edge agent status {code}: {status.get('description', '')}".strip()
        if state == "failed" and not error and got.get("statusDescription"):
            error = str(got["statusDescription"])
        reports[name] = ModuleReport(
            name=name,
            image=image,
            digest=image_digest(image),
            state=state,
            error=error[:200],
            updated=timestamp(got.get("lastStartTimeUtc")),
        )
    return reports


def deployment_from_configuration(raw: Mapping[str, Any]) -> Deployment:
    """An IoT Hub configuration (raw JSON) → Deployment (modules only; no credentials)."""
    return Deployment(
        id=str(raw.get("id", "")),
        target_condition=str(raw.get("targetCondition") or ""),
        priority=int(raw.get("priority") or 0),
        modules=modules_from_content((raw.get("content") or {}).get("modulesContent")),
        labels=dict(raw.get("labels") or {}),
        created=timestamp(raw.get("createdTimeUtc")),
        etag=str(raw.get("etag") or ""),
    )
