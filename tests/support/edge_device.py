"""An IoT Edge device emulator that does what edgeAgent does, for tests against the fake hub.

Each step (edgeAgent reconciles every 5 s; the emulator every `interval`): read the
`$edgeAgent` module twin from the hub, check the desired state the way edgeAgent does
(schemaVersion 1.0/1.1 else 412, empty else 417, createOptions chunks joined and parsed else
400 — the whole deployment refused, `lastDesiredVersion` left where it was), then reconcile
modules in `startupOrder`: pull what changed and (re)create the container, start it when its
desired status is `running`, remove modules no longer desired. A failed pull makes the
deployment 500 with edgeAgent's own text (`One or more errors occurred. (Error calling Create
module X: registry operation error: pull image "…")`); nothing is reported while a pull runs
(edgeAgent reports at the end of a reconcile). Reported properties follow edgeAgent's schema
(schemaVersion, version, lastDesiredVersion, lastDesiredStatus, runtime.platform,
systemModules, modules with runtimeStatus, exitCode, statusDescription, lastStartTimeUtc,
settings.image/imageHash/createOptions chunks) and are sent only when they changed.

Runtimes: `DockerModules` pulls and runs containers on a real dockerd (docker SDK; its client
User-Agent names the device, so the registry's access log attributes bytes per device);
`LightModules` checks the image exists for its platform in the registry and pretends the
rest (hundreds of devices in one thread). Sources: Azure/iotedge 1.5 edge-agent (Agent.cs,
HealthRestartPlanner.cs, DockerReportedConfig.cs, DeploymentStatusCode.cs), see docs/azure.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import threading
import time
import urllib.parse
from typing import Any

import httpx

API = "2021-04-12"
AGENT = "$edgeAgent"


def _utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class HubLink:
    """The device side of the fake hub, over its REST stand-ins (edgeAgent uses MQTT/AMQP)."""

    def __init__(self, host: str, key_b64: str, ca: str) -> None:
        self.host, self.key = host, base64.b64decode(key_b64)
        self.http = httpx.Client(base_url=f"https://{host}", verify=ssl.create_default_context(cafile=ca), timeout=30)

    def _auth(self) -> dict[str, str]:
        expiry = str(int(time.time()) + 3600)
        sig = base64.b64encode(hmac.new(self.key, f"{self.host}\n{expiry}".encode(), hashlib.sha256).digest()).decode()
        return {"Authorization": f"SharedAccessSignature sr={self.host}&sig={urllib.parse.quote(sig)}&se={expiry}&skn=device"}

    def twin(self, device_id: str) -> dict:
        r = self.http.get(f"/twins/{device_id}/modules/{AGENT}", params={"api-version": API}, headers=self._auth())
        r.raise_for_status()
        return r.json()

    def report(self, device_id: str, patch: dict) -> None:
        r = self.http.patch(f"/twins/{device_id}/modules/{AGENT}/properties/reported", params={"api-version": API},
                            json=patch, headers=self._auth())
        r.raise_for_status()

    def connect(self, device_id: str, connected: bool = True) -> None:
        r = self.http.post(f"/twins/{device_id}/modules/$edgeHub/connection", params={"api-version": API},
                           json={"connected": connected}, headers=self._auth())
        r.raise_for_status()


class PullError(Exception):
    pass


def join_chunks(settings: dict) -> str:
    chunks = sorted((k for k in settings if k.lower().startswith("createoptions")), key=str.lower)
    expected = ["createOptions"] + [f"createOptions{i:02d}" for i in range(1, len(chunks))]
    if [c.lower() for c in chunks] != [e.lower() for e in expected]:
        raise ValueError("createOptions chunks are not numbered contiguously")
    return "".join(str(settings[c]) for c in chunks) or "{}"


class EdgeAgentEmulator:
    def __init__(self, device_id: str, link: HubLink, modules: Any, arch: str = "x86_64") -> None:
        self.device_id, self.link, self.modules, self.arch = device_id, link, modules, arch
        self.last: dict | None = None
        self.applied_version: int | None = None
        self.status = {"code": 406, "description": "Agent is not running"}

    def step(self) -> None:
        desired = (self.link.twin(self.device_id).get("properties") or {}).get("desired") or {}
        version = desired.get("$version")
        wanted = desired.get("modules")
        if not wanted and "schemaVersion" not in desired:
            self.status = {"code": 417, "description": "This device has an empty configuration for the edge agent. "
                                                       "Please set a deployment manifest."}
        elif str(desired.get("schemaVersion", "")) not in ("1.0", "1.1"):
            self.status = {"code": 412, "description": f"Invalid desired properties schema version {desired.get('schemaVersion')}"}
        else:
            try:
                plan = {n: (e, json.loads(join_chunks((e or {}).get("settings") or {}))) for n, e in (wanted or {}).items()}
            except ValueError:
                self.status = {"code": 400, "description": "Agent configuration format is invalid."}
            else:
                self.status = self._reconcile(plan)
                self.applied_version = version
        self._report(desired)

    def _reconcile(self, plan: dict[str, tuple[dict, dict]]) -> dict:
        errors = []
        for name in set(self.modules.names()) - set(plan):
            self.modules.remove(name)
        for name, (entry, options) in sorted(plan.items(), key=lambda kv: (kv[1][0].get("startupOrder", 2**32 - 1), kv[0])):
            image = entry["settings"]["image"]
            if self.modules.image(name) == image:
                continue
            try:
                self.modules.pull(image)
            except PullError:
                errors.append(f"Error calling Create module {name}: registry operation error: pull image \"{image}\"")
                continue
            self.modules.run(name, image, entry, options)
        if errors:
            return {"code": 500, "description": f"One or more errors occurred. ({') ('.join(errors)})"}
        return {"code": 200, "description": ""}

    def _report(self, desired: dict) -> None:
        modules: dict[str, Any] = {}
        for name in self.modules.names():
            entry = ((desired.get("modules") or {}).get(name)) or {}
            state = self.modules.state(name)
            settings = {k: v for k, v in (entry.get("settings") or {}).items()}
            settings.update(image=self.modules.image(name), imageHash=state.get("imageHash", ""))
            modules[name] = {**{k: v for k, v in entry.items() if k != "settings"}, "settings": settings,
                             "runtimeStatus": state["runtimeStatus"], "exitCode": state.get("exitCode", 0),
                             "statusDescription": state.get("statusDescription", ""),
                             "lastStartTimeUtc": state.get("started", "0001-01-01T00:00:00Z")}
        doc = {
            "schemaVersion": "1.0", "version": {"version": "1.5.21", "build": "emulated", "commit": "emulated"},
            "lastDesiredVersion": self.applied_version, "lastDesiredStatus": self.status,
            "runtime": {"type": "docker", "platform": {"os": "Linux", "architecture": self.arch, "version": "1.5.21"}},
            "systemModules": {"edgeAgent": {"runtimeStatus": "running", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}},
                              "edgeHub": {"runtimeStatus": "running", "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5"}}},
            "modules": modules,
        }
        if doc == self.last:
            return  # edgeAgent sends a patch only when something changed
        patch = dict(doc)
        if self.last:
            patch["modules"] = {**{n: None for n in self.last["modules"] if n not in modules}, **modules}
        self.link.report(self.device_id, patch)
        self.last = doc


class AgentThread:
    """Step emulators (one or hundreds) in one thread until stopped."""

    def __init__(self, agents: list[EdgeAgentEmulator], interval: float = 0.2) -> None:
        self.agents, self.interval = agents, interval
        self._stop = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name="edge-agents")

    def start(self) -> "AgentThread":
        for agent in self.agents:
            agent.link.connect(agent.device_id)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for agent in self.agents:
                try:
                    agent.step()
                except Exception as exc:  # noqa: BLE001 - a throttled read is retried next round
                    self.errors.append(f"{agent.device_id}: {type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
