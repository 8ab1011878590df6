"""Helpers that put a fake hub's Edge devices in a state, the way the hub and edgeAgent would:
deployments through the hub's own routes (so `$edgeAgent` desired properties come from the
hub's evaluation, never hand-written) and reports in edgeAgent's schema through the
device-side route (so the hub stamps them)."""

from __future__ import annotations

from typing import Any

from tests.support.fake_iothub import FakeIotHub
from tests.support.fake_routes import route


def deploy(fake: FakeIotHub, config_id: str, condition: str, priority: int, modules: dict[str, dict[str, Any]],
           base: bool = True) -> None:
    """A configuration with these module entries (base: full `$edgeAgent` desired; else layered)."""
    if base:
        content = {"$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1", "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
            "systemModules": {}, "modules": modules}}, "$edgeHub": {"properties.desired": {"schemaVersion": "1.1"}}}
    else:
        content = {"$edgeAgent": {f"properties.desired.modules.{name}": entry for name, entry in modules.items()}}
    body = {"id": config_id, "schemaVersion": "1.0", "labels": {}, "targetCondition": condition, "priority": priority,
            "content": {"modulesContent": content}}
    with fake.lock:
        status, out, _ = route(fake, "PUT", f"/configurations/{config_id}", {}, body)
    assert status == 200, out


def module(image: str, **extra: Any) -> dict[str, Any]:
    return {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
            "settings": {"image": image, "createOptions": "{}"}, **extra}


def report(fake: FakeIotHub, device_id: str, modules: dict[str, str], *, code: int = 200, description: str = "",
           runtime: str = "running", seen: int | None = None, arch: str = "x86_64") -> None:
    """edgeAgent's reported properties: `modules` name → image it runs; `seen`: the desired
    version it acted on (default: the current one)."""
    with fake.lock:
        desired = fake.modules[(device_id, "$edgeAgent")]["properties"]["desired"]
        patch = {
            "schemaVersion": "1.0", "lastDesiredVersion": desired.get("$version") if seen is None else seen,
            "lastDesiredStatus": {"code": code, "description": description},
            "runtime": {"type": "docker", "platform": {"os": "Linux", "architecture": arch, "version": "1.5.21"}},
            "modules": {name: {"runtimeStatus": runtime, "exitCode": 0, "lastStartTimeUtc": "2026-11-30T10:00:00Z",
                               "settings": {"image": image}} for name, image in modules.items()},
        }
        status, out, _ = route(fake, "PATCH", f"/twins/{device_id}/modules/$edgeAgent/properties/reported", {}, patch)
    assert status == 204, out
