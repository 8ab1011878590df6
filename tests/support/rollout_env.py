"""A rollout test bed: a real registry holding v1/v2, a local hub with a group running v1 under
a base deployment, a config file pointing at both, and helpers to drive the CLI.

`cli()` runs `fleet-tui` in this process (engine in the foreground, fleet in a thread);
`cli_proc()` runs it as a real subprocess (detached engines, SIGKILL tests).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fleet_tui.cli import main
from fleet_tui.config import Config, load_config
from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.devices.simconfig import FailureRule, GroupSpec, SimSpec
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.rollout.journal import Journal
from tests.support.images import ml_pair
from tests.support.sim_thread import SimFleetThread

MODULE = "scoring"
GROUP = "vans"
LINK = LinkProfile("cell", bandwidth=500_000, latency=0.002)  # a device pulls ~305 KB in ~0.6 device-s
FAST_SPEED, SLOW_SPEED = 1000.0, 0.06  # device seconds per real second


@dataclass
class RolloutEnv:
    root: Path
    config_path: Path
    config: Config
    v1: str  # pinned refs
    v2: str
    v1_digest: str
    v2_digest: str
    images: dict[str, Any]
    device_ids: list[str]

    def hub(self) -> LocalHub:
        return LocalHub(self.config.hub_path(), module=MODULE)

    def journal(self) -> Journal:
        return Journal.for_config(self.config)

    def kill_engines(self) -> None:
        """SIGKILL every detached engine still alive — only those this env's journal recorded."""
        journal = self.journal()
        try:
            for row in journal.list_rollouts():
                if row.pid and row.pid != os.getpid() and pid_alive(row.pid):  # a foreground engine ran here
                    os.kill(row.pid, signal.SIGKILL)
        finally:
            journal.close()

    def fleet(self, speed: float = FAST_SPEED, fail: tuple[str, ...] = (), fail_image: str = "", fail_kind: str = "start",
              fail_attempts: int = 0) -> SimFleetThread:
        """The real simulated fleet (fleet_tui.devices) on the env's hub, in a thread; `fail`
        devices fail `fail_image` (on start or download; the first `fail_attempts` tries, 0 = all)."""
        failures = (FailureRule(fail_image, 0.0, fail, fail_kind, fail_attempts),) if fail else ()
        spec = SimSpec(self.v1, (GroupSpec(GROUP, len(self.device_ids), LINK.name),), links={LINK.name: LINK},
                       failures=failures, seed=6, speed=speed, prefix="sim-", poll_seconds=0.05, report_hz=20.0,
                       apply_seconds=0.05, chunk_bytes=256 * 1024, connections=32)
        return SimFleetThread(spec, self.config.hub_path(), self.config).start()

    def cli(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["-c", str(self.config_path), *args])
        return code, out.getvalue()

    def cli_json(self, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
        code, text = self.cli(*args, "--json")
        assert code in codes, text
        return json.loads(text)

    def cli_proc(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fleet_tui.cli", "-c", str(self.config_path), *args],
            capture_output=True, text=True, timeout=timeout, cwd=str(Path(__file__).resolve().parents[2]),
        )


def make_env(tmp_path: Path, registry: Any, n: int, repo: str, rollout: str = "", extra: str = "",
             deps_size: int = 300_000) -> RolloutEnv:
    """`rollout` is added to the [rollout] table; `extra` (whole TOML tables) after it."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[hub]\npath = "{tmp_path / "hub.sqlite"}"\nmodule = "{MODULE}"\n'
        f"[rollout]\npoll = 0.05\ngate_timeout = 30\n{rollout}\n{extra}\n"
    )
    config = load_config(config_path)
    client = RegistryClient(registry.host, config)
    pair = ml_pair(client, repo, deps_size)
    client.close()
    v1 = load_image(f"{registry.host}/{repo}@{pair.v1}", config)
    v2 = load_image(f"{registry.host}/{repo}@{pair.v2}", config)
    hub = LocalHub(config.hub_path(), module=MODULE)
    ids = [f"sim-{GROUP}-{i:05d}" for i in range(n)]  # the ids SimFleet registers
    hub.create_deployment(Deployment("base-vans", f"tags.fleetGroup = '{GROUP}'", 1,
                                     {MODULE: ModuleSpec(MODULE, v1.pinned)}))
    hub.close()
    return RolloutEnv(tmp_path, config_path, config, v1.pinned, v2.pinned, v1.digest, v2.digest,
                      {v1.pinned: v1, v2.pinned: v2}, ids)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
