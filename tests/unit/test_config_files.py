"""Every way a config file can be unreadable gets one line naming the file and the problem
(issue 25.2) — never `unexpected UnicodeDecodeError` — and `config check` names every bad key,
not only the first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.config import load_config
from fleet_tui.errors import UsageError

CASES = {
    "utf16": ("[hub]\nkind = \"local\"\n".encode("utf-16"), "is UTF-16 text"),
    "utf32": ("[hub]\n".encode("utf-32"), "is UTF-32 text"),
    "latin1": ('x = "\xe9t\xe9"\n'.encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 5)"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00\xd0\xff" * 20, "is a binary file"),
    "nul": (b'state_dir = "x"\n\x00\n', "is a binary file (a NUL byte"),
    "empty": (b"", "is empty"),
    "blank": (b"  \n\n", "is empty"),
    "not toml": (b"[hub\nkind = 1\n", "is not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unreadable_config_is_one_line_naming_the_file(tmp_path, capsys, case):
    data, words = CASES[case]
    path = tmp_path / "fleet.toml"
    path.write_bytes(data)
    with pytest.raises(UsageError) as err:
        load_config(path, environ={})
    assert str(path) in str(err.value) and words in str(err.value) and "\n" not in str(err.value)
    assert main(["-c", str(path), "groups"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleet-tui: error: config file") and "unexpected" not in lines[0]


def test_a_directory_and_an_unreadable_file(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match=r"is a directory; give the path of a TOML file"):
        load_config(tmp_path, environ={})
    path = tmp_path / "fleet.toml"
    path.write_text("[hub]\n")

    def denied(self: Path) -> bytes:  # root reads any mode: refuse as the kernel would for another user
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UsageError, match=r"fleet.toml cannot be read: permission denied; check its owner and mode"):
        load_config(path, environ={})


def test_config_check_names_every_bad_key_and_commands_say_how_many_more(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[hub]\nkindd = 1\n[rollout]\nwaves = "x"\nrate = -1\n[cost]\nper_gb = "a"\n')
    with pytest.raises(UsageError, match=r"\(and 3 more problems: `fleet-tui config check .*bad.toml` lists them all\)"):
        load_config(path, environ={})
    proc = subprocess.run([sys.executable, "-m", "fleet_tui.cli", "config", "check", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False and len(doc["problems"]) == 4
    for key in ("hub.kindd", "rollout.waves", "rollout.rate", "cost.per_gb"):
        assert sum(key in p for p in doc["problems"]) == 1, key
    assert len(proc.stderr.strip().splitlines()) == 4
