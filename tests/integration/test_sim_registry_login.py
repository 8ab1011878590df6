"""`fleet-tui sim up` against a registry that needs a login (a second real `docker-registry`
with htpasswd basic auth): the simulated devices pull with the config's
`[registry.auth."HOST"]` credentials, exactly like the sync client, report `running`, and
the password is written to no file of the state dir — not the hub, not `sim.json`, not
the sim log — in clear or as the base64 of a basic-auth header.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet_tui.config import parse_config
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import files_layer
from fleet_tui.oci.registry import RegistryClient
from tests.support.registry import RegistryServer, make_htpasswd

pytestmark = pytest.mark.integration
USER, PASSWORD, ENV = "simfleet", "Sim-l0gin-pw-Kq8v!", "FLEET_TEST_SIM_REG_PW"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("authreg-sim")
    server = RegistryServer(root, htpasswd=make_htpasswd(root / "htpasswd", USER, PASSWORD)).start()
    yield server
    server.stop()


def cli(config: Path, *args: str, password: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if password is not None:
        env[ENV] = password  # inherited by the detached fleet, like an operator's shell
    return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def write_config(tmp_path: Path, host: str, image: str) -> Path:
    state = tmp_path / "state"
    path = tmp_path / "fleet.toml"
    path.write_text(f"""
state_dir = "{state}"
[hub]
path = "{state / 'hub.sqlite'}"
[registry.auth."{host}"]
username = "{USER}"
password_env = "{ENV}"
[sim]
image = "{image}"
seed = 5
speed = 20.0
poll_seconds = 0.2
[sim.links.cellular]
bandwidth_kbps = 4000
latency_ms = 50
[sim.groups.vans]
devices = 5
link = "cellular"
""")
    return path


def needles() -> list[bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), token, token.rstrip(b"=")[:-2], PASSWORD.encode("utf-16-le")]


def push_pair(host: str) -> tuple[str, str]:
    """v1 (the fleet's starting image, already on the devices) and v2 (must be pulled)."""
    client = RegistryClient(host, parse_config({"registry": {"auth": {host: {"username": USER, "password_env": ENV}}}}))
    refs = []
    for tag, fill in (("1", b"v"), ("2", b"w")):
        b = ImageBuilder().add_layer(files_layer({"app/model.pkl": fill * 300_000}), "COPY model")
        refs.append(f"{host}/secure/sim@{b.push(client, 'secure/sim', tag)}")
    client.close()
    return refs[0], refs[1]


def test_sim_devices_pull_through_the_registry_login(tmp_path, auth_registry, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)
    v1, v2 = push_pair(auth_registry.host)
    config, state = write_config(tmp_path, auth_registry.host, v1), tmp_path / "state"
    v2_digest = v2.split("@", 1)[1]

    up = cli(config, "sim", "up", password=PASSWORD)
    try:
        assert up.returncode == 0, up.stderr
        hub = LocalHub(state / "hub.sqlite")
        hub.create_deployment(Deployment("release-2", "tags.fleetGroup = 'vans'", 10, {"scoring": ModuleSpec("scoring", v2)}))
        deadline = time.time() + 30
        while time.time() < deadline:
            twins = list(hub.iter_devices())
            if len(twins) == 5 and all(t.state("scoring") == "running" and t.digest("scoring") == v2_digest for t in twins):
                break
            time.sleep(0.2)
        twins = list(hub.iter_devices())
        assert [t.state("scoring") for t in twins] == ["running"] * 5, [t.reported for t in twins]
        assert {t.digest("scoring") for t in twins} == {v2_digest}  # every device pulled v2's layer
        hub.close()
    finally:
        down = cli(config, "sim", "down", password=None)
    assert down.returncode == 0, down.stderr
    log = state / "sim.log"
    assert "simulated fleet up" in log.read_text()  # the fleet did log, through the login
    files = sorted(p for p in state.rglob("*") if p.is_file())
    assert log in files and state / "hub.sqlite" in files
    assert [f"{p}: {n!r}" for p in files for n in needles() if n in p.read_bytes()] == []
    assert not any(n.decode("latin-1") in up.stdout + up.stderr for n in needles()[:3])


def test_sim_without_the_password_fails_at_start_in_one_line(tmp_path, auth_registry):
    image = f"{auth_registry.host}/secure/sim@sha256:{'a' * 64}"
    config = write_config(tmp_path, auth_registry.host, image)
    up = cli(config, "sim", "up", password=None)
    assert up.returncode != 0 and up.stderr.count("\n") == 1, up.stderr
    assert ENV in up.stderr and "Traceback" not in up.stderr
    assert not (tmp_path / "state" / "sim.pid").exists()
