"""`RegistryAuth`, the I/O-free auth state shared by the sync registry client and the
simulated devices' async blob source: challenge, Basic header, Bearer tokens per scope."""

from __future__ import annotations

import httpx
import pytest

from fleet_tui.config import Config, parse_config
from fleet_tui.errors import AuthError
from fleet_tui.oci.auth import RegistryAuth
from fleet_tui.secrets import redact

HOST = "registry.example:5000"
BEARER = 'Bearer realm="https://auth.example/token",service="reg.example"'


def test_no_challenge_means_anonymous():
    assert RegistryAuth(HOST, Config()).header("repository:a:pull") == {}


def test_basic_challenge_without_credentials_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    auth = RegistryAuth(HOST, Config())
    assert auth.learn('Basic realm="x"') and not auth.learn('Negotiate x')
    with pytest.raises(AuthError, match="needs a login"):
        auth.header("repository:a:pull")


def test_bearer_token_is_fetched_once_per_scope_and_renewed_when_rejected(monkeypatch):
    monkeypatch.setenv("FLEET_TEST_AUTH_STATE_PW", "state-pw-991")
    config = parse_config({"registry": {"auth": {HOST: {"username": "u", "password_env": "FLEET_TEST_AUTH_STATE_PW"}}}})
    auth, scope = RegistryAuth(HOST, config), "repository:a:pull"
    assert auth.learn(BEARER)
    assert auth.header(scope) is None  # nothing cached: fetch first
    req = auth.token_request(scope)
    assert req.url == "https://auth.example/token"
    assert req.params == [("service", "reg.example"), ("scope", scope)]
    assert req.headers["Authorization"].startswith("Basic ")
    header = auth.accept_token(scope, httpx.Response(200, json={"token": "tok-abc-123"}))
    assert header == {"Authorization": "Bearer tok-abc-123"} == auth.header(scope)
    assert auth.header("repository:b:pull") is None
    assert auth.header(scope, rejected=header) is None and auth.header(scope, refresh=True) is None
    assert "tok-abc-123" not in redact("token tok-abc-123")
    with pytest.raises(AuthError, match="refused the credentials"):
        auth.accept_token(scope, httpx.Response(401))
