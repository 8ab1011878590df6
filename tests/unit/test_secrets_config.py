"""Secrets stay masked; config loads typed, rejects unknown keys with one line."""

from __future__ import annotations

import pytest

from fleet_tui.cli import main
from fleet_tui.config import load_config, parse_config
from fleet_tui.errors import UsageError
from fleet_tui.secrets import Secret, SecretRef, redact


def test_secret_never_prints():
    s = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert redact("password was hunter2-very-secret!") == "password was ****!"


def test_connection_string_shapes_are_masked():
    text = "HostName=x.azure-devices.net;SharedAccessKeyName=owner;SharedAccessKey=abc123XYZ=="
    assert "abc123XYZ" not in redact(text)
    assert "QmFzZTY0" not in redact("Authorization: Basic QmFzZTY0")


def test_secret_ref_from_env(monkeypatch):
    monkeypatch.setenv("FT_PW", "pw-from-env")
    assert SecretRef(env="FT_PW").resolve("registry x").reveal() == "pw-from-env"
    monkeypatch.delenv("FT_PW")
    with pytest.raises(UsageError, match="FT_PW is not set"):
        SecretRef(env="FT_PW").resolve("registry x")


def test_config_loads_and_rejects_typos(tmp_path):
    good = tmp_path / "c.toml"
    good.write_text('[hub]\nkind = "local"\ngroup_tag = "grp"\n[cost]\nper_gb = 250\n[registry]\ninsecure = ["r:5000"]\n')
    cfg = load_config(good)
    assert cfg.hub.group_tag == "grp" and cfg.cost.per_gb == 250 and cfg.registry.insecure == ("r:5000",)
    with pytest.raises(UsageError, match="unknown key hub.grup_tag"):
        parse_config({"hub": {"grup_tag": "x"}})


def test_bad_config_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[hub\nkind=")
    assert main(["-c", str(bad), "tags", "127.0.0.1:1/a/b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fleet-tui: error: config file") and err.count("\n") == 1
    assert main(["-c", str(tmp_path / "missing.toml"), "tags", "x"]) == 2
