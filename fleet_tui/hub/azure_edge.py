"""IoT Edge deployment content for `$edgeAgent`/`$edgeHub`, and module definitions read back.

A *layered* deployment (the default; the idiomatic staged rollout: one per release, widened
by tagging devices) writes `properties.desired.modules.<managed>` only (a pre-staged
rollout's stage layer also writes `<managed>-stage`, desired `stopped`) — the managed module's
*whole* definition as it stands in the deployment in force (version, type, status,
restartPolicy, imagePullPolicy, startupOrder, env, settings…) with only `settings.image`
changed. Sibling modules are never written: the layers and base deployment that own them stay
in force. createOptions is re-chunked into `createOptions`, `createOptions01`, … of 512
characters, the way edgeAgent joins it (it reads up to 100 contiguous chunks; Microsoft's
tools write at most 8, so longer is refused here).

A *base* deployment (label `fleet-tui.kind = base`) writes the whole `properties.desired` of
`$edgeAgent` and `$edgeHub`. It is the operator's own content when `[hub] base_manifest`
names a deployment manifest (its registry credentials included, as the operator wrote them);
otherwise a minimal one with the system modules of `[hub] edge_version` and registry
credentials only when `[hub] registry_credentials = "pull-token"` says to resolve and write
the `[registry.auth]` token (IoT Edge has no secret references: what is in the content
reaches every device twin in clear, so that is the operator's explicit choice). No
placeholder is ever written.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Mapping

from fleet_tui.errors import UsageError
from fleet_tui.hub.azure_agent import EDGE_AGENT, EDGE_HUB, image_digest
from fleet_tui.hub.protocol import Deployment, ModuleSpec, stage_module

SCHEMA_VERSION = "1.1"
KIND_LABEL = "fleet-tui.kind"
LAYER_PREFIX = "properties.desired.modules."
CHUNK = 512
MAX_CHUNKS = 8  # createOptions … createOptions07, what Microsoft's tools write
EDGE_VERSION = "1.6"  # current LTS (1.5 serviced until 2026-11-10, 1.4 ended 2024-11-12)


def system_modules(edge_version: str = EDGE_VERSION) -> dict[str, Any]:
    return {
        "edgeAgent": {"type": "docker", "settings": {"image": f"mcr.microsoft.com/azureiotedge-agent:{edge_version}"}},
        "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                    "settings": {"image": f"mcr.microsoft.com/azureiotedge-hub:{edge_version}"}},
    }


def registry_host(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


def check_pinned(spec: ModuleSpec) -> None:
    if not image_digest(spec.image):
        raise UsageError(
            f"module {spec.name}: image {spec.image} is not digest-pinned; IoT Edge devices do not "
            "notice a re-pushed tag, deploy host/repo@sha256:… instead"
        )


def chunk_create_options(options: str, module: str) -> dict[str, str]:
    if len(options) > CHUNK * MAX_CHUNKS:
        raise UsageError(f"module {module}: createOptions is {len(options)} characters; IoT Edge takes at most "
                         f"{CHUNK * MAX_CHUNKS} ({MAX_CHUNKS} chunks of {CHUNK})")
    pieces = [options[i:i + CHUNK] for i in range(0, len(options), CHUNK)] or ["{}"]
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): piece for i, piece in enumerate(pieces)}


def join_create_options(settings: Mapping[str, Any]) -> str:
    """What edgeAgent reads: `createOptions` then `createOptions01`, `02`, … contiguous."""
    out, i = [str(settings.get("createOptions", ""))], 1
    while f"createOptions{i:02d}" in settings:
        out.append(str(settings[f"createOptions{i:02d}"]))
        i += 1
    return "".join(out)


def module_entry(spec: ModuleSpec) -> dict[str, Any]:
    """The module's entry: its definition as held by the hub, image (and createOptions) replaced."""
    entry = copy.deepcopy(spec.definition) if spec.definition else {
        "version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always"}
    settings = {k: v for k, v in (entry.get("settings") or {}).items() if not k.lower().startswith("createoptions")}
    options = spec.create_options or "{}"
    try:
        json.loads(options)
    except ValueError:
        raise UsageError(f"module {spec.name}: createOptions is not valid JSON; edgeAgent would refuse the "
                         "whole deployment (400)") from None
    entry["settings"] = {**settings, "image": spec.image, **chunk_create_options(options, spec.name)}
    return entry


def modules_content(deployment: Deployment, managed: str | None = None, base: Mapping[str, Any] | None = None,
                    credentials: Mapping[str, Any] | None = None, edge_version: str = EDGE_VERSION) -> dict[str, Any]:
    """`content.modulesContent` for an IoT Hub configuration. Layered: only `managed` (when the
    deployment has it), digest-pinned. Base: `base` (the operator's manifest modulesContent) or a
    minimal one, with `credentials` (already resolved, opt-in) when given."""
    # a layer writes the managed module, and beside it a pre-staged rollout's stopped stage module
    names = ([n for n in (managed, stage_module(managed)) if n in deployment.modules]
             if managed and managed in deployment.modules else sorted(deployment.modules))
    for name in names:
        check_pinned(deployment.modules[name])
    modules = {name: module_entry(deployment.modules[name]) for name in names}
    if deployment.labels.get(KIND_LABEL, "layered") != "base":
        return {EDGE_AGENT: {LAYER_PREFIX + name: entry for name, entry in modules.items()}}
    if base:
        content = copy.deepcopy(dict(base))
        agent = content.setdefault(EDGE_AGENT, {}).setdefault("properties.desired", {})
        agent.setdefault("modules", {}).update(modules)
        return content
    runtime: dict[str, Any] = {"minDockerVersion": "v1.25"}
    if credentials:
        runtime["registryCredentials"] = dict(credentials)
    return {
        EDGE_AGENT: {"properties.desired": {
            "schemaVersion": SCHEMA_VERSION, "runtime": {"type": "docker", "settings": runtime},
            "systemModules": system_modules(edge_version), "modules": modules}},
        EDGE_HUB: {"properties.desired": {
            "schemaVersion": SCHEMA_VERSION, "routes": {"upstream": "FROM /messages/* INTO $upstream"},
            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
    }


def spec_of(name: str, entry: Any) -> ModuleSpec:
    """A module entry (desired or deployment content) → ModuleSpec, createOptions joined."""
    entry = entry if isinstance(entry, dict) else {}
    settings = entry.get("settings") or {}
    options = join_create_options(settings)
    definition = copy.deepcopy(entry)
    definition["settings"] = {k: v for k, v in settings.items() if not k.lower().startswith("createoptions")}
    return ModuleSpec(name, str(settings.get("image", "")), "" if options in ("{}", "") else options, definition)


def modules_from_content(content: Mapping[str, Any] | None) -> dict[str, ModuleSpec]:
    """Module specs of a configuration's modulesContent (layered or base); never credentials."""
    agent = (content or {}).get(EDGE_AGENT) or {}
    full = (agent.get("properties.desired") or {}).get("modules") or {}
    specs = {name: spec_of(name, entry) for name, entry in full.items()}
    for key, entry in agent.items():
        if key.startswith(LAYER_PREFIX) and "." not in key[len(LAYER_PREFIX):]:
            name = key[len(LAYER_PREFIX):]
            specs[name] = spec_of(name, entry)
    return specs


def desired_modules(agent_twin: Mapping[str, Any]) -> dict[str, ModuleSpec]:
    desired = (agent_twin.get("properties") or {}).get("desired") or {}
    return {name: spec_of(name, entry) for name, entry in (desired.get("modules") or {}).items()}


def deployment_from_configuration(raw: Mapping[str, Any]) -> Deployment:
    """An IoT Hub configuration (raw JSON) → Deployment (modules only; no credentials)."""
    from fleet_tui.hub.azure_agent import timestamp

    metrics = {**(((raw.get("systemMetrics") or {}).get("results")) or {}),
               **(((raw.get("metrics") or {}).get("results")) or {})}
    return Deployment(
        id=str(raw.get("id", "")),
        target_condition=str(raw.get("targetCondition") or ""),
        priority=int(raw.get("priority") or 0),
        modules=modules_from_content((raw.get("content") or {}).get("modulesContent")),
        labels=dict(raw.get("labels") or {}),
        created=timestamp(raw.get("createdTimeUtc")),
        etag=str(raw.get("etag") or ""),
        metrics={k: int(v) for k, v in metrics.items() if isinstance(v, (int, float))},
    )
