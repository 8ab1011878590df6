"""A test bed for rollouts on "Azure": the strict fake IoT Hub, a registry holding v1/v2 of
a runnable module (and a sibling), IoT Edge devices emulated on real dockerds and light ones,
an operator's base deployment, and `fleet-tui` run as a user runs it (subprocesses, detached
engines, the connection string in an environment variable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fleet_tui.config import Config
from fleet_tui.hub.shards import shard_of
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from tests.support.dockerd import DockerDaemon
from tests.support.edge_device import AgentThread, EdgeAgentEmulator, HubLink
from tests.support.edge_runtimes import DockerModules, LightModules
from tests.support.edge_twins import deploy
from tests.support.fake_iothub import FakeIotHub
from tests.support.images import Entry, noise, push_layers

GROUP = "vans"
BUSYBOX = Path("/bin/busybox")
CREATE_OPTIONS = json.dumps({"HostConfig": {"Binds": [f"/var/lib/scoring/{i}:/data/{i}" for i in range(36)],
                                            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}}}})
ROOT = Path(__file__).resolve().parents[2]


def _chunks(text: str) -> dict[str, str]:
    return {("createOptions" if i == 0 else f"createOptions{i:02d}"): text[i * 512:(i + 1) * 512]
            for i in range((len(text) + 511) // 512)}


def _layers(release: int) -> list[list[Entry]]:
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox is missing: apt-get install -y busybox-static (.ci/run does it)")
    base = [Entry("bin", kind="dir", mode=0o755), Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)]
    deps = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
            Entry("usr/lib/libdeps.so", data=noise(400_000, 5), mode=0o755)]
    app = [Entry("app", kind="dir", mode=0o755), Entry("app/model.bin", data=f"model v{release}\n".encode())]
    return [base, deps, app]


class AzureBed:
    def __init__(self, root: Path, registry: Any, real: int, light: int, crash_v2: bool = False, policy: str = "",
                 slow_jobs: bool = False, units: int = 2, tick: float = 0.3, shards: bool = False) -> None:
        """`tick`: how often agents reconcile and the engine polls (the hub evaluates at 2/3 of it);
        `shards`: the devices were enrolled with their stable shard tag (hub/shards.py)."""
        self.tick = tick
        self.root, self.registry = root, registry
        repo = f"azure-bed/{root.name.lower()}"[:60]
        client = RegistryClient(registry.host, Config())
        sleep = ["/bin/busybox", "sleep", "3600"]
        digests = {r: push_layers(client, repo, str(r), _layers(r), cmd=sleep, mtime=1_700_000_000 + r) for r in (1, 2)}
        side = push_layers(client, "azure-bed/sidecar", "1", [_layers(1)[0]], cmd=sleep)
        client.close()
        self.v1_tag, self.v2_tag = f"{registry.host}/{repo}:1", f"{registry.host}/{repo}:2"
        self.v1 = load_image(self.v1_tag, Config()).deploy_ref
        self.crash = frozenset({digests[2]} if crash_v2 else set())
        self.fake = FakeIotHub(root, tier="S3", units=units, evaluation_delay=tick * 2 / 3)
        if slow_jobs:
            self.fake.throttle.rates["job_device"] = 10  # S1's pace: a tagging job takes a while
        self.real_ids = [f"edge-real-{i}" for i in range(real)]
        self.light_ids = [f"edge-{i:04d}" for i in range(light)]
        self.all_ids = self.real_ids + self.light_ids
        for device_id in self.all_ids:
            tags = {"fleetGroup": GROUP, **({"fleetShard": shard_of(device_id)} if shards else {})}
            self.fake.add_device(device_id, tags, connected=False)
        scoring = {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "on-failure",
                   "imagePullPolicy": "on-create", "startupOrder": 1, "env": {"MODE": {"value": "edge"}},
                   "settings": {"image": self.v1, **_chunks(CREATE_OPTIONS)}}
        self.sidecar_entry = {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                              "settings": {"image": f"{registry.host}/azure-bed/sidecar@{side}", "createOptions": "{}"}}
        deploy(self.fake, "base", f"tags.fleetGroup = '{GROUP}'", 1, {"scoring": scoring, "sidecar": self.sidecar_entry})
        self.config = root / "fleet.toml"
        self.config.write_text(
            f'state_dir = "{root / "state"}"\n[hub]\nkind = "azure"\nconnection_string_env = "FLEET_TEST_HUB"\n'
            f'tier = "S3"\nunits = {units}\nmodule = "scoring"\ngroup_tag = "fleetGroup"\nmetrics_poll = {tick}\n'
            f'[rollout]\npoll = {tick}\ngate_timeout = 180\nmin_finished = 1\n{policy}\n')
        self.env = {**os.environ, "FLEET_TEST_HUB": "", "REQUESTS_CA_BUNDLE": ""}
        self.daemons: list[DockerDaemon] = []
        self.threads: list[AgentThread] = []

    def start(self) -> "AzureBed":
        self.fake.start()
        self.env.update(FLEET_TEST_HUB=self.fake.connection_string, REQUESTS_CA_BUNDLE=str(self.fake.cert))
        link = lambda: HubLink(self.fake.host, self.fake.key_b64, str(self.fake.cert))  # noqa: E731
        for device_id in self.real_ids:
            daemon = DockerDaemon(self.root / device_id, insecure=[self.registry.host]).start()
            self.daemons.append(daemon)
            agent = EdgeAgentEmulator(device_id, link(), DockerModules(daemon.base_url, device_id))
            self.threads.append(AgentThread([agent], interval=self.tick).start())
        if self.light_ids:
            modules = [LightModules(Config(), crash=self.crash) for _ in self.light_ids]
            light = [EdgeAgentEmulator(d, link(), m) for d, m in zip(self.light_ids, modules)]
            self.threads.append(AgentThread(light, interval=self.tick).start())
        return self

    def stop(self) -> None:
        for thread in self.threads:
            thread.stop()
        for daemon in self.daemons:
            daemon.stop()
        self.fake.stop()

    def agent_errors(self) -> list[str]:
        return [e for t in self.threads for e in t.errors if "429" not in e]

    # --- waiting on the devices -------------------------------------------------------
    def running(self) -> dict[str, str]:
        with self.fake.lock:
            out = {}
            for device_id in self.all_ids:
                mods = ((self.fake.modules[(device_id, "$edgeAgent")].get("properties") or {}).get("reported") or {}).get("modules") or {}
                scoring = mods.get("scoring") or {}
                if scoring.get("runtimeStatus") == "running":
                    out[device_id] = (scoring.get("settings") or {}).get("image", "")
            return out

    def wait_all_running(self, image: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.running()
            if len(running) == len(self.all_ids) and set(running.values()) == {image}:
                return
            time.sleep(0.5)
        raise AssertionError(f"devices not all running {image}: {self.running()} {self.agent_errors()[-3:]}")

    # --- fleet-tui as the operator runs it ---------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(self.config), *args],
                              capture_output=True, text=True, env=self.env, timeout=timeout, cwd=str(ROOT))

    def start_rollout(self, target: str, *flags: str, detach: bool = True) -> str:
        done = self.cli("rollout", "start", target, "--group", GROUP, *flags, *(["--detach"] if detach else []), "--json")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip(), done.stderr
        return json.loads(done.stdout)["id"]

    def status(self, rid: str) -> dict:
        done = self.cli("rollout", "status", rid, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def wait_terminal(self, rid: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(rid)
            if status["state"] in ("succeeded", "aborted", "rolled_back", "halted") and not status.get("engine_pid"):
                return status  # ended, and its engine has exited (an ended rollout folds first)
            time.sleep(1.0)
        raise AssertionError(f"rollout {rid} did not end: {self.status(rid)}")

    def wait_wave_started(self, rid: str, wave: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(rid)["waves"][wave]["state"] != "pending":
                return
            time.sleep(0.2)
        raise AssertionError(f"wave {wave} of {rid} did not start")

    def engine_pid(self, rid: str) -> int:
        return int(self.status(rid).get("engine_pid") or 0)

    def rollout_jobs(self, rid: str) -> list[dict]:
        """Every twin-update job that wrote this rollout's tag (any value)."""
        with self.fake.lock:
            return [j for j in self.fake.jobs.values()
                    if f"rollout_{rid}" in ((j.get("updateTwin") or {}).get("tags") or {})]

    def tagging_counts(self, rid: str) -> dict[str, int]:
        """How often each device was tagged into this rollout (twin-update jobs the hub ran)."""
        counts: dict[str, int] = {}
        with self.fake.lock:
            for job in self.fake.jobs.values():
                value = ((job.get("updateTwin") or {}).get("tags") or {}).get(f"rollout_{rid}")
                if value and not value.startswith("back"):
                    for device_id in job["_targets"]:
                        counts[device_id] = counts.get(device_id, 0) + 1
        return counts
