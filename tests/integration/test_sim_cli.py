"""`fleet-tui sim up|status|down` as an operator runs them, in a temp state dir, against
the real registry; the fleet runs detached and registers its devices in the local hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet_tui.config import Config
from fleet_tui.detach import alive
from fleet_tui.hub.local import LocalHub
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import files_layer
from fleet_tui.oci.registry import RegistryClient


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def sim_config(registry, tmp_path) -> Path:
    client = RegistryClient(registry.host, Config())
    b = ImageBuilder().add_layer(files_layer({"app/model.pkl": b"m" * 500}), "COPY model")
    image = f"{registry.host}/test/sim-cli@{b.push(client, 'test/sim-cli', '1')}"
    client.close()
    state = tmp_path / "state"
    path = tmp_path / "fleet.toml"
    path.write_text(f"""
state_dir = "{state}"
[hub]
path = "{state / 'hub.sqlite'}"
[sim]
image = "{image}"
seed = 3
speed = 20.0
poll_seconds = 0.2
[sim.links.cellular]
bandwidth_kbps = 4000
latency_ms = 50
[sim.groups.vans]
devices = 6
link = "cellular"
[sim.groups.trucks]
devices = 2
link = "cellular"
""")
    return path


def test_sim_up_status_down(sim_config, tmp_path):
    state = tmp_path / "state"
    up = cli(sim_config, "sim", "up", "--devices", "12")
    try:
        assert up.returncode == 0, up.stderr
        log = state / "sim.log"
        assert str(log) in up.stdout and "12 devices" in up.stdout
        pid = int((state / "sim.pid").read_text())
        assert Path(f"/proc/{pid}").exists()

        hub = LocalHub(state / "hub.sqlite")
        deadline = time.time() + 20
        while time.time() < deadline:
            twins = list(hub.iter_devices())
            if len(twins) == 12 and all(t.state("scoring") == "running" for t in twins):
                break
            time.sleep(0.2)
        groups = {g.name: g.devices for g in hub.group_summaries("scoring")}
        assert groups == {"vans": 9, "trucks": 3}
        assert all(t.state("scoring") == "running" and t.connected for t in hub.iter_devices())

        status = cli(sim_config, "sim", "status", "--json")
        assert status.returncode == 0
        body = json.loads(status.stdout)
        assert body["running"] is True and body["pid"] == pid and body["devices"] == 12

        again = cli(sim_config, "sim", "up")
        assert again.returncode != 0
        assert again.stderr.count("\n") == 1 and "already runs" in again.stderr and "sim down" in again.stderr
    finally:
        down = cli(sim_config, "sim", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not alive(pid)
    assert not (state / "sim.pid").exists()
    assert all(t.state("scoring") == "offline" for t in hub.iter_devices())
    hub.close()

    none = cli(sim_config, "sim", "down")
    assert none.returncode == 0 and "no simulated fleet is running" in none.stdout
    assert json.loads(cli(sim_config, "sim", "status", "--json").stdout)["running"] is False


def test_sim_up_without_a_sim_section_is_one_line(tmp_path):
    config = tmp_path / "fleet.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n')
    result = cli(config, "sim", "up")
    assert result.returncode == 2
    assert result.stderr.startswith("fleet-tui: error: config has no [sim] section") and result.stderr.count("\n") == 1


def test_sim_up_reports_a_child_that_fails_at_start(sim_config, tmp_path, registry):
    text = sim_config.read_text().replace("test/sim-cli@", "test/missing@")
    sim_config.write_text(text)
    result = cli(sim_config, "sim", "up")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "exited at start" in result.stderr and "not found" in result.stderr
    assert not (tmp_path / "state" / "sim.pid").exists()


def test_sim_up_from_a_relative_config_path(sim_config, tmp_path):
    """The detached fleet gets the config by absolute path and the caller's directory."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))}

    def rel(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", sim_config.name, *args],
                              capture_output=True, text=True, timeout=120, cwd=sim_config.parent, env=env)

    up = rel("sim", "up", "--devices", "4")
    try:
        assert up.returncode == 0, up.stderr
        status = json.loads(rel("sim", "status", "--json").stdout)
        assert status["running"] is True and status["devices"] == 4
    finally:
        down = rel("sim", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
