"""`fleet-tui doctor` against real parts and each failure mode: one line per check, exit 1 on
a failure, later checks still run, no secret in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_tui.config import parse_config
from fleet_tui.oci.registry import RegistryClient
from tests.support.images import ml_pair
from tests.support.registry import RegistryServer, make_htpasswd

pytestmark = pytest.mark.integration

PASSWORD = "doctor-s3cret-Xy7"


def doctor(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "fleet_tui.cli", "-c", str(config), "doctor", *extra], capture_output=True, text=True,
        timeout=120, env={**os.environ, **(env or {})})
    text, data = run(), run("--json")
    assert text.returncode == data.returncode and text.stderr == ""
    return text.returncode, json.loads(data.stdout), text.stdout


def status(data: dict, name: str) -> tuple[str, str]:
    check = next(c for c in data["checks"] if c["name"] == name)
    return check["status"], check["detail"]


def test_a_ready_machine_passes_every_check(tmp_path, registry):
    client = RegistryClient(registry.host, parse_config({}))
    pair = ml_pair(client, "doctor/app")
    client.close()
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[registry]\ndefault = "{registry.host}/doctor/app"\n'
                      f'[hub]\npath = "{tmp_path / "hub.sqlite"}"\n')
    assert subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(config), "hub", "seed", "--devices", "5",
                           "--groups", "vans", "--image", f"{registry.host}/doctor/app@{pair.v1}"],
                          capture_output=True, timeout=60).returncode == 0
    code, data, text = doctor(config)
    assert code == 0 and data["ok"], text
    assert status(data, f"registry {registry.host}") == ("ok", "reachable, credentials accepted (doctor/app: 2 tags)")
    assert status(data, "hub (local)")[0] == "ok" and "5 devices" in status(data, "hub (local)")[1]
    assert len(text.splitlines()) == len(data["checks"]) and all(line.startswith("OK") for line in text.splitlines())


def test_each_failure_is_one_line_and_the_other_checks_still_run(tmp_path):
    root = tmp_path / "authreg"
    root.mkdir()
    server = RegistryServer(root, htpasswd=make_htpasswd(root / "htpasswd", "fleet", PASSWORD)).start()
    try:
        corrupt = tmp_path / "hub.sqlite"
        corrupt.write_bytes(b"this is not a database" * 100)
        config = tmp_path / "c.toml"
        config.write_text(
            f'state_dir = "/proc/fleet-doctor/state"\n'  # cannot be created
            f'[registry]\nrepositories = ["127.0.0.1:1/nowhere/app", "{server.host}/secure/app"]\n'
            f'[registry.auth."{server.host}"]\nusername = "fleet"\npassword_env = "FLEET_DOCTOR_PW"\n'
            f'[hub]\npath = "{corrupt}"\n')
        code, data, text = doctor(config, {"FLEET_DOCTOR_PW": "wrong-" + PASSWORD})
    finally:
        server.stop()
    assert code == 1 and not data["ok"]
    assert status(data, "state dir")[0] == "fail" and "state_dir" in status(data, "state dir")[1]
    assert status(data, "registry 127.0.0.1:1") == (
        "fail", "cannot connect to registry 127.0.0.1:1: connection refused; is it running on that port?")
    refused = status(data, f"registry {server.host}")
    assert refused[0] == "fail" and "denied" in refused[1] and "[registry.auth]" in refused[1]
    assert status(data, "hub (local)")[0] == "fail"
    assert PASSWORD not in text and PASSWORD not in json.dumps(data)
    assert len(text.splitlines()) == len(data["checks"]) >= 5  # one line each, none skipped


def test_missing_hub_credentials_fail_in_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[hub]\nkind = "azure"\nconnection_string_env = "FLEET_DOCTOR_HUB"\n')
    code, data, _ = doctor(config, {"FLEET_DOCTOR_HUB": ""})
    assert code == 1
    assert status(data, "hub (azure)") == (
        "fail", "IoT Hub connection string: environment variable FLEET_DOCTOR_HUB is not set; export it before running "
        "fleet-tui")
