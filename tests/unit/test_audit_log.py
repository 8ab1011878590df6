"""`fleet-tui log`: builds, prunes and rollout actions in one trail, newest first, with who
(OS user, and the SSH client's address) — never a secret in the detail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.config import load_config
from fleet_tui.rollout.audit import record, trail
from fleet_tui.rollout.journal import Assignment, Journal


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    return path


def test_trail_merges_builds_prunes_and_rollout_actions(cfg: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SSH_CLIENT", "10.0.0.5 51000 22")
    journal = Journal.for_config(load_config(cfg))
    record(journal, "build", "reg/ml/scoring@sha256:" + "a" * 64, {"new": "reg/ml/scoring:2", "password": "hunter2"})
    journal.create("r-1", {"group": "vans", "variants": {}}, [1], [Assignment("van-1", 0, "full", "", "", 1)])
    journal.add_command("r-1", "pause")
    journal.record("r-1", "pause", "done", data={"by": "alice from 10.0.0.9"}, state="paused")
    record(journal, "prune", "reg/ml/scoring", {"deleted": 3})
    journal.record("r-1", "retry", "done", 0, {"by": "", "why": "automatic"})  # the engine's own: nobody acted
    journal.record("r-1", "halt", "done", 0, {"reason": 'device said "by" in its error'})
    got = trail(journal)
    journal.close()
    assert [e["action"] for e in got] == ["prune", "rollout pause", "rollout created", "build"]
    assert got[0]["by"].endswith("from 10.0.0.5") and got[1]["by"] == "alice from 10.0.0.9"
    assert got[3]["detail"] == {"new": "reg/ml/scoring:2"}  # a key naming a secret is dropped
    assert main(["-c", str(cfg), "log", "--json"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and [e["action"] for e in json.loads(out)["entries"]][:2] == ["prune", "rollout pause"]
    assert main(["-c", str(cfg), "log", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "prune" in lines[0] and "reg/ml/scoring" in lines[0] and "deleted 3" in lines[0]


def test_empty_log_and_bad_limit(cfg: Path, capsys) -> None:
    assert main(["-c", str(cfg), "log"]) == 0
    assert "nothing done yet" in capsys.readouterr().out
    assert main(["-c", str(cfg), "log", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_unknown_action_is_refused(cfg: Path) -> None:
    journal = Journal.for_config(load_config(cfg))
    try:
        with pytest.raises(ValueError):
            record(journal, "delete-everything", "x")
    finally:
        journal.close()
