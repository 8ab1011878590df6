"""Ctrl-C on a foreground `rollout start` (issue 25.5): the engine stops, the exit says how to
continue, the rollout reads "engine stopped" (status, console), `doctor` warns about a rollout
no engine runs, and `rollout resume` finishes it exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rollout_env import FAST_SPEED, GROUP, SLOW_SPEED, make_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)
ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_on_a_foreground_start_leaves_a_resumable_rollout_and_says_so(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 12, repo_name)
    journal = env.journal()
    fleet = env.fleet(speed=SLOW_SPEED)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "fleet_tui.cli", "-c", str(env.config_path), "rollout", "start",
                                 env.v2, "--group", GROUP, "--waves", "1,100%"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        rid = wait_for(lambda: next((r.id for r in journal.list_rollouts()), None), 30, "the rollout journalled")
        wait_for(lambda: journal.waves(rid)[0].started, 30, "wave 1 started")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert f"rollout resume {rid}`" in lines[0] and "-c " in lines[0] and "engine of rollout" in lines[0]
        assert not journal.engine_lock(rid).held_elsewhere()

        status = env.cli_json("rollout", "status", rid)
        assert status["state"] == "running" and status["engine"] == "stopped"
        code, text = env.cli("rollout", "status", rid)
        assert "engine stopped — `fleet-tui -c " in text and f"rollout resume {rid}` continues it" in text
        doctor = env.cli_proc("doctor", "--json")
        journal_check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "journal")
        assert journal_check["status"] == "warn" and f"rollout resume {rid}" in journal_check["detail"], journal_check

        fleet.set_speed(FAST_SPEED)
        resumed = env.cli_proc("rollout", "resume", rid)
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 60, "the resumed rollout to succeed")
        targets = [e for e in journal.events(rid, "target") if e.phase == "intent"]
        told = [d for e in targets for d in e.data["devices"]]
        assert sorted(told) == sorted(env.device_ids)  # every device told exactly once across both engines
    finally:
        fleet.stop()
        env.kill_engines()
        journal.close()
