"""Reading IoT Edge devices back from the hub: module state, liveness, platform.

Sources (Azure/iotedge 1.4-1.6 edge-agent and edgelet, docs; quoted in docs/azure.md):
- `$edgeAgent` reported properties: `lastDesiredVersion`, `lastDesiredStatus {code,
  description}` (200, 400, 406, 412, 417, 500), `runtime.platform {os, architecture}`, and per
  module `runtimeStatus` (unknown, backoff, running, unhealthy, stopped, failed, dead),
  `exitCode`, `statusDescription`, `settings.image`. A module appears there only once its
  container exists. edgeAgent reports only when something changed, never byte counts.
- Liveness: an Edge device's own twin reads `Disconnected` (iotedge #80, #809) and so does its
  `$edgeAgent` module twin (it sends no telemetry, #2733); `$edgeHub`'s module twin is
  `Connected` while the runtime is up (the hub may take up to 5 minutes to say so). A device
  counts as online when `$edgeHub` is Connected, or when its `$edgeAgent` reported within
  `window` seconds by the hub's own stamp (`$metadata.$lastUpdated`), never a device clock.
- `lastDesiredStatus.code` 500 means "failed" whatever failed: a pull that failed reads
  `… registry operation error: pull image "<img>"` (unauthorized, manifest unknown and not
  found all look alike), a pull still running past the management API timeout reads "The
  operation was canceled"/a timeout — that one is a slow download, not a failure.
- 400/412/417 reject the whole desired state; edgeAgent then leaves `lastDesiredVersion` at
  the last version it applied, so they count as failed even though it did not "catch up".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from fleet_tui.hub.protocol import ModuleReport, ModuleSpec

EDGE_AGENT, EDGE_HUB = "$edgeAgent", "$edgeHub"
FAILED_RUNTIME = {"backoff", "failed", "unhealthy", "dead"}
REJECTED = {400: "bad deployment content", 412: "unsupported schema version", 417: "empty configuration"}
PULL_FAILED = ("registry operation error", "pull image")
STILL_PULLING = ("operation was canceled", "task was canceled", "timed out", "timeout")
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "arm": "arm/v7", "armv7l": "arm/v7"}


def timestamp(value: Any) -> float:
    if not value or not isinstance(value, str) or value.startswith("0001-"):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def image_digest(image: str) -> str:
    return image.split("@", 1)[1] if "@sha256:" in image else ""


def reported_at(twin: Mapping[str, Any], section: str = "reported") -> float:
    """The hub's stamp of the last change to a module twin's desired/reported properties."""
    props = (twin.get("properties") or {}).get(section) or {}
    return timestamp((props.get("$metadata") or {}).get("$lastUpdated"))


def is_online(agent: Mapping[str, Any] | None, edge_hub: Mapping[str, Any] | None, now: float, window: float) -> bool:
    if (edge_hub or {}).get("connectionState") == "Connected":
        return True
    last = reported_at(agent or {})
    return bool(last) and now - last <= window


def last_seen(agent: Mapping[str, Any] | None, edge_hub: Mapping[str, Any] | None) -> float:
    return max(reported_at(agent or {}), timestamp((edge_hub or {}).get("lastActivityTime")))


def platform_of(agent: Mapping[str, Any]) -> str:
    """`runtime.platform` → OCI `os/arch` ("" when the agent has not said)."""
    platform = (((agent.get("properties") or {}).get("reported") or {}).get("runtime") or {}).get("platform") or {}
    arch = str(platform.get("architecture") or "")
    if not arch:
        return ""
    return f"{str(platform.get('os') or 'linux').lower()}/{ARCH.get(arch.lower(), arch.lower())}"


def classify_500(description: str) -> tuple[str, str]:
    """(state, error) for lastDesiredStatus 500 on a module that still runs its old image."""
    text = description.lower()
    if any(mark in text for mark in STILL_PULLING):
        return "downloading", ""
    if any(mark in text for mark in PULL_FAILED):
        return "failed", f"image pull failed: {description}".strip()
    return ("failed", f"edge agent status 500: {description}") if description else ("downloading", "")


def module_reports(agent: Mapping[str, Any], desired_modules: Mapping[str, ModuleSpec]) -> dict[str, ModuleReport]:
    """The `$edgeAgent` module twin (raw JSON) → one ModuleReport per desired or reported module."""
    props = agent.get("properties") or {}
    desired, reported = props.get("desired") or {}, props.get("reported") or {}
    have = reported.get("modules") or {}
    caught_up = desired.get("$version") == reported.get("lastDesiredVersion")
    status = reported.get("lastDesiredStatus") or {}
    code = int(status.get("code") or 0)
    description = str(status.get("description") or "")
    updated = max(reported_at(agent), reported_at(agent, "desired") if caught_up else 0.0)
    platform = platform_of(agent)
    reports: dict[str, ModuleReport] = {}
    for name in sorted(set(desired_modules) | set(have)):
        got = have.get(name) or {}
        image = str((got.get("settings") or {}).get("image", ""))
        runtime = str(got.get("runtimeStatus", "")).lower()
        target = desired_modules.get(name)
        error = ""
        if target is None:
            state = "running" if runtime == "running" else "failed"  # left over from an older deployment
        elif code in REJECTED:
            state, error = "failed", f"edge agent refused the deployment ({code} {REJECTED[code]}): {description}"
        elif not caught_up:
            state = "pending"
        elif image == target.image:
            wanted = str((desired.get("modules", {}).get(name) or {}).get("status", "running")).lower()
            if runtime == wanted:
                # as desired: running, or a pre-staged module pulled and created but never started
                state = "running" if wanted == "running" else "stopped"
            elif runtime in FAILED_RUNTIME:
                state, error = "failed", f"{runtime}, exit code {got.get('exitCode', '?')}"
            else:
                state = "applying"
        elif code == 200:
            state = "applying"
        elif code == 500:
            state, error = classify_500(description)
        elif code == 406:
            state = "offline"
        else:
            state = "downloading"  # no report yet for this desired version
        if state == "failed" and not error and got.get("statusDescription"):
            error = str(got["statusDescription"])
        reports[name] = ModuleReport(name=name, image=image, digest=image_digest(image), state=state,
                                     error=error[:300], updated=updated, platform=platform)
    return reports


def applied_ids(twin: Mapping[str, Any]) -> list[str]:
    """Ids of the configurations the hub reports as Applied to this twin, in listed order."""
    return [cid for cid, c in (twin.get("configurations") or {}).items() if (c or {}).get("status") == "Applied"]


def applied_configuration(twin: Mapping[str, Any], ranks: Mapping[str, tuple[int, float]] | None = None) -> str:
    """The deployment in force on this twin ('' if none): of the Applied configurations, the one
    with the highest priority, a tie going to the later creation — the rule IoT Edge applies
    between layered deployments on the same module. `ranks` maps id → (priority, created)."""
    applied = applied_ids(twin)
    if len(applied) < 2 or not ranks:
        return applied[0] if applied else ""
    unknown = (-(2**63), float("-inf"))
    return max(applied, key=lambda cid: ranks.get(cid, unknown))
