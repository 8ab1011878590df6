"""A rollout from a registry that needs a login never writes the password anywhere.

The registry is a second real `docker-registry` with htpasswd basic auth; the config names
the password by environment variable (`[registry.auth."HOST"] password_env`). A detached
engine (its own log file), the simulated fleet (its devices log in with the same config), `rollout status` and `rollout list` all
run; afterwards every byte of every file the rollout left (journal, WAL files, engine log,
the hub's SQLite with its deployments, the config) and every output is searched for the
password, in clear and in the base64 of a basic-auth header.
"""

from __future__ import annotations

import base64
import json
import os
import signal
from pathlib import Path

import pytest

from tests.support.registry import RegistryServer, make_htpasswd
from tests.support.rollout_env import GROUP, make_env, pid_alive, wait_for

pytestmark = pytest.mark.integration
USER, PASSWORD, ENV = "fleet", "Roll0ut-pw-7fQx2!", "FLEET_TEST_ROLLOUT_REG_PW"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("authreg-rollout")
    server = RegistryServer(root, htpasswd=make_htpasswd(root / "htpasswd", USER, PASSWORD)).start()
    yield server
    server.stop()


def needles() -> list[bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), token, token.rstrip(b"=")[:-2], PASSWORD.encode("utf-16-le")]


def leaks(root: Path) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {n!r}" for n in needles() if n in data]
    return found


def test_rollout_with_registry_credentials_never_writes_the_password(tmp_path, auth_registry, repo_name, monkeypatch):
    monkeypatch.setenv(ENV, PASSWORD)  # inherited by the detached engine, like an operator's shell
    auth = f'[registry.auth."{auth_registry.host}"]\nusername = "{USER}"\npassword_env = "{ENV}"\n'
    env = make_env(tmp_path, auth_registry, 5, repo_name, extra=auth)
    fleet = env.fleet()  # devices pull with the config's registry login, like the engine
    outputs: list[str] = []
    pid = 0
    try:
        proc = env.cli_proc("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%",
                            "--auto-rebase", "--detach", "--json")
        outputs += [proc.stdout, proc.stderr]
        assert proc.returncode == 0, proc.stderr
        started = json.loads(proc.stdout)
        rid, pid = started["id"], started["pid"]
        journal = env.journal()
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 60, "the rollout to succeed")
        journal.close()
        wait_for(lambda: not pid_alive(pid), 10, "the engine to exit")
        for args in (("rollout", "status", rid, "--json"), ("rollout", "status", rid, "--devices"),
                     ("rollout", "list", "--json")):
            proc = env.cli_proc(*args)
            assert proc.returncode == 0, proc.stderr
            outputs += [proc.stdout, proc.stderr]
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        fleet.stop()

    status = json.loads(outputs[2])
    assert status["state"] == "succeeded"
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    assert {d["variant"] for d in status["devices"].values()} == {"d0"}  # pulled through the login
    log = Path(started["log"])
    assert log.is_file() and "rollout" in log.read_text()  # the engine did write its log
    assert (tmp_path / "state" / "rollouts.sqlite").is_file()
    assert leaks(tmp_path) == []
    for text in outputs:
        assert not any(n.decode("latin-1") in text for n in needles()[:3])
