"""Module runtimes for the edgeAgent emulator (edge_device.py).

`DockerModules`: containers on a real dockerd, as aziot-edged runs them (container name =
module name; Docker state → runtimeStatus as edgelet maps it: running → running, created →
stopped, exited 0 → stopped, exited ≠ 0 → failed, or backoff when the restart policy would
restart it). `LightModules`: no engine — a pull checks, through the real registry, that the
image exists and has the device's platform (else the pull fails like dockerd's "no matching
manifest"), and `crash` names images whose module exits on start.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import docker
import docker.errors

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
from fleet_tui.oci.image import load_image
from tests.support.edge_device import PullError

LABEL = "net.azure-devices.edge.owner"


def _utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class DockerModules:
    def __init__(self, base_url: str, device_id: str) -> None:
        # the device's name in the User-Agent: dockerd passes it upstream to the registry
        self.client = docker.DockerClient(base_url=base_url, user_agent=f"edge-device/{device_id}", timeout=120)
        self.images: dict[str, str] = {}

    def names(self) -> list[str]:
        return [c.name for c in self.client.containers.list(all=True, filters={"label": LABEL})]

    def image(self, name: str) -> str:
        return self.images.get(name, "")

    def pull(self, image: str) -> None:
        repo, _, digest = image.partition("@")
        try:
            for event in self.client.api.pull(repo, tag=digest, stream=True, decode=True):
                if "error" in event:
                    raise PullError(event["error"])
        except docker.errors.APIError as exc:
            raise PullError(str(exc)) from None

    def run(self, name: str, image: str, entry: dict, options: dict) -> None:
        self.remove(name)
        env = [f"{k}={(v or {}).get('value', '')}" for k, v in (entry.get("env") or {}).items()]
        container = self.client.containers.create(image, name=name, network_mode="none", environment=env,
                                                  labels={LABEL: "Microsoft.Azure.Devices.Edge.Agent"})
        self.images[name] = image
        if entry.get("status", "running") == "running":
            container.start()

    def remove(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        self.images.pop(name, None)

    def state(self, name: str) -> dict[str, Any]:
        c = self.client.containers.get(name)
        st = c.attrs.get("State", {})
        code = int(st.get("ExitCode") or 0)
        status = {"running": "running", "created": "stopped", "paused": "stopped"}.get(c.status)
        if status is None:
            status = "stopped" if code == 0 else "backoff"
        return {"runtimeStatus": status, "exitCode": code, "imageHash": c.attrs.get("Image", ""),
                "started": st.get("StartedAt", "")[:19] + "Z" if st.get("StartedAt") else "0001-01-01T00:00:00Z",
                "statusDescription": st.get("Error", "")}


class LightModules:
    """Module state in memory; images are checked against the registry (cached per fleet)."""

    checked: dict[tuple[str, str], bool] = {}

    def __init__(self, config: Config, platform: str = "linux/amd64", crash: frozenset[str] = frozenset()) -> None:
        self.config, self.platform, self.crash = config, platform, crash
        self.running: dict[str, tuple[str, str, str]] = {}  # name → (image, status, started)

    def names(self) -> list[str]:
        return sorted(self.running)

    def image(self, name: str) -> str:
        return self.running.get(name, ("", "", ""))[0]

    def pull(self, image: str) -> None:
        key = (image, self.platform)
        if key not in LightModules.checked:
            try:
                load_image(image, self.config, self.platform)
                LightModules.checked[key] = True
            except FleetError:
                LightModules.checked[key] = False
        if not LightModules.checked[key]:
            raise PullError(f"manifest unknown or no matching manifest for {self.platform}")

    def run(self, name: str, image: str, entry: dict, options: dict) -> None:
        crashes = any(digest in image for digest in self.crash)  # `crash`: digests whose module exits on start
        status = "backoff" if crashes else ("running" if entry.get("status", "running") == "running" else "stopped")
        self.running[name] = (image, status, _utc())

    def remove(self, name: str) -> None:
        self.running.pop(name, None)

    def state(self, name: str) -> dict[str, Any]:
        image, status, started = self.running[name]
        return {"runtimeStatus": status, "exitCode": 1 if status == "backoff" else 0, "started": started}
