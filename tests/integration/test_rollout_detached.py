"""Detached engines as real subprocesses: SIGKILL and resume, pause, abort.

`rollout start --detach` and `rollout resume` run as separate `fleet-tui` processes, so the
engine they start is nobody's child here (as after an SSH session drops).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from fleet_tui.rollout.fold import image_key
from tests.support.rollout_env import FAST_SPEED, GROUP, SLOW_SPEED, make_env, pid_alive, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)


@pytest.fixture
def engines():
    """Pids of engines a test started; killed at teardown if still alive."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def start_detached(env, engines, *flags: str) -> str:
    proc = env.cli_proc("rollout", "start", env.v2, "--group", GROUP, "--detach", "--json", *flags)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    engines.append(out["pid"])
    return out["id"]


def test_sigkill_in_wave_three_then_resume_finishes_exactly(tmp_path, registry, repo_name, engines, capsys):
    env = make_env(tmp_path, registry, 100, repo_name)
    journal = env.journal()
    fleet = env.fleet()
    rng = random.Random(6)
    t0 = time.monotonic()
    kills = 0
    try:
        rid = start_detached(env, engines)
        wait_for(lambda: journal.waves(rid)[1].judged, 30, "wave 2 to be judged")
        fleet.set_speed(SLOW_SPEED)  # a device now needs ~10 s: time to kill the engine in wave 3
        wait_for(lambda: journal.waves(rid)[2].started, 30, "wave 3 to start")
        for _ in range(3):
            pid = wait_for(lambda: journal.rollout(rid).pid if journal.engine_lock(rid).held_elsewhere() else 0,
                           20, "an engine to run")
            time.sleep(rng.uniform(0.0, 0.6))
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_for(lambda: not pid_alive(pid), 10, "the engine to die")
            assert journal.waves(rid)[3].started is None, "wave 4 started: the kill was not in wave 3"
            proc = env.cli_proc("rollout", "resume", rid, "--json")
            assert proc.returncode == 0, proc.stderr
            engines.append(journal.rollout(rid).pid)
        fleet.set_speed(FAST_SPEED)
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 60, "the rollout to succeed")
        elapsed = time.monotonic() - t0
        wait_for(lambda: any(e.phase == "done" for e in journal.events(rid, "fold")), 30, "the rollout to be folded")
        status = env.cli_json("rollout", "status", rid)  # before the fleet goes offline
    finally:
        fleet.stop()
    events = journal.events(rid)
    for wave in range(4):
        assert [e.kind for e in events if e.wave == wave and e.kind in ("target", "judge")].count("judge") == 1
        assert len([e for e in events if e.kind == "target" and e.phase == "intent" and e.wave == wave]) == 1
    assert len([e for e in events if e.kind == "engine"]) == 1 + kills
    hub = env.hub()
    twins = list(hub.iter_devices())
    # every device tagged into the rollout exactly once, then pinned by image and untagged by the fold: 3 writes
    assert {t.etag for t in twins} == {"4"}
    assert {t.digest("scoring") for t in twins} == {env.v2_digest}
    hub.close()
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    with capsys.disabled():
        print(f"\n[rollout-kill-resume] {kills} SIGKILLs in wave 3, {elapsed:.2f}s, {status['bytes_total']} bytes")


def test_pause_holds_the_next_wave(tmp_path, registry, repo_name, engines):
    env = make_env(tmp_path, registry, 30, repo_name)
    journal = env.journal()
    fleet = env.fleet()
    try:
        rid = start_detached(env, engines, "--waves", "1,100%", "--bake", "0.5")
        env.cli("rollout", "pause", rid)
        wait_for(lambda: journal.rollout(rid).state == "paused", 10, "paused")
        wait_for(lambda: journal.waves(rid)[0].state == "passed", 20, "the canary to pass")
        time.sleep(1.0)
        assert journal.waves(rid)[1].state == "pending"
        hub = env.hub()
        assert len(list(hub.iter_devices(f"tags.rollout_{rid} != ''"))) == 1
        hub.close()
        code, _ = env.cli("rollout", "resume", rid)
        assert code == 0
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 30, "the rollout to succeed")
    finally:
        fleet.stop()
    assert [e.kind for e in journal.events(rid) if e.kind in ("pause", "resume")] == ["pause", "resume"]


def test_abort_stops_with_devices_consistent(tmp_path, registry, repo_name, engines):
    env = make_env(tmp_path, registry, 40, repo_name)
    journal = env.journal()
    fleet = env.fleet(speed=SLOW_SPEED)
    try:
        rid = start_detached(env, engines, "--waves", "1,50%,100%")
        wait_for(lambda: journal.waves(rid)[1].started, 30, "wave 2 to start")
        code, _ = env.cli("rollout", "abort", rid)
        assert code == 0
        wait_for(lambda: journal.rollout(rid).state == "aborted", 10, "aborted")
        wait_for(lambda: not journal.engine_lock(rid).held_elsewhere(), 10, "the engine to exit")
        fleet.set_speed(FAST_SPEED)
        targeted = {a.device_id for a in journal.assignments(rid) if a.wave < 2}
        hub = env.hub()

        def settled() -> bool:
            return all(t.digest("scoring") == (env.v2_digest if t.device_id in targeted else env.v1_digest)
                       and t.state("scoring") == "running" for t in hub.iter_devices())

        wait_for(settled, 20, "targeted devices on v2, the rest untouched on v1")
        v2_key = image_key(env.v2)
        for t in hub.iter_devices():  # folded: the rollout tag is gone, targeted devices are pinned by image
            assert f"rollout_{rid}" not in t.tags
            assert (t.tags.get("fleetTuiImage") == v2_key) == (t.device_id in targeted)
            assert t.etag == ("4" if t.device_id in targeted else "1")  # tagged, image-tagged, untagged: 3 writes
        groups = [d for d in hub.list_deployments() if d.labels.get("fleet-tui.kind") == "group"]
        assert [d.modules["scoring"].image for d in groups] == [env.v2]  # the release became the group's deployment
        assert not [d for d in hub.list_deployments() if d.labels.get("rollout") == rid and d not in groups]
        hub.close()
    finally:
        fleet.stop()
    assert journal.waves(rid)[2].state == "pending"
    events = journal.events(rid)
    abort_seq = next(e.seq for e in events if e.kind == "abort")
    assert not [e for e in events if e.kind in ("target", "judge") and e.seq > abort_seq and e.wave == 2]


def test_concurrent_resumes_start_one_engine_and_both_succeed(tmp_path, registry, repo_name, engines):
    env = make_env(tmp_path, registry, 20, repo_name)
    journal = env.journal()
    fleet = env.fleet(speed=SLOW_SPEED)
    try:
        rid = start_detached(env, engines)
        wait_for(lambda: journal.waves(rid)[0].started, 30, "the canary to start")
        pid = journal.rollout(rid).pid
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "the engine to die")
        import subprocess
        import sys

        argv = [sys.executable, "-m", "fleet_tui.cli", "-c", str(env.config_path), "rollout", "resume", rid]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
        assert [code for code, _, _ in results] == [0, 0], results
        engines.append(journal.rollout(rid).pid)
        assert sum("engine restarted" in out for _, out, _ in results) == 1, results
        again = env.cli_proc("rollout", "resume", rid)
        assert again.returncode == 0 and "already running (engine pid" in again.stdout, again.stdout + again.stderr
        assert journal.engine_lock(rid).held_elsewhere()
    finally:
        fleet.stop()
