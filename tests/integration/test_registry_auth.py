"""Basic auth (htpasswd) against a second real registry; passwords never leak."""

from __future__ import annotations

import pytest

from fleet_tui.cli import main
from fleet_tui.config import parse_config
from fleet_tui.errors import AuthError
from fleet_tui.oci.registry import RegistryClient
from tests.support.images import ml_pair
from tests.support.registry import RegistryServer, make_htpasswd

PASSWORD = "s3cret-pass-Zq9"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("authreg")
    server = RegistryServer(root, htpasswd=make_htpasswd(root / "htpasswd", "fleet", PASSWORD)).start()
    yield server
    server.stop()


def auth_config(host: str, env: str = "FLEET_TEST_REG_PW"):
    return parse_config({"registry": {"auth": {host: {"username": "fleet", "password_env": env}}}})


def test_basic_auth_round_trip(auth_registry, monkeypatch):
    monkeypatch.setenv("FLEET_TEST_REG_PW", PASSWORD)
    client = RegistryClient(auth_registry.host, auth_config(auth_registry.host))
    ml_pair(client, "secure/app")
    assert sorted(client.list_tags("secure/app")) == ["1", "2"]


def test_missing_credentials_is_one_line(auth_registry, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no docker credential store either
    from fleet_tui.config import Config

    with pytest.raises(AuthError, match="needs a login"):
        RegistryClient(auth_registry.host, Config()).list_tags("secure/app")


def test_wrong_password_is_refused_without_leaking(auth_registry, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FLEET_TEST_REG_PW", "wrong-password-123")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[registry.auth."{auth_registry.host}"]\nusername = "fleet"\npassword_env = "FLEET_TEST_REG_PW"\n')
    assert main(["-c", str(cfg), "tags", f"{auth_registry.host}/secure/app"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "denied" in err and "401" in err
    assert "wrong-password-123" not in err and "Traceback" not in err


def test_docker_credential_store_is_used(auth_registry, monkeypatch, tmp_path):
    import base64
    import json

    token = base64.b64encode(f"fleet:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    from fleet_tui.config import Config

    client = RegistryClient(auth_registry.host, Config())
    ml_pair(client, "secure/fromstore")
    assert sorted(client.list_tags("secure/fromstore")) == ["1", "2"]
