"""Abort, then roll back (issue 25.1), on detached engines and the real simulated fleet.

An operator who stops a bad release wants the devices that already took it back on the old
image. For an abort in each state a wave can be in — being told (paced), gate open, baking,
waiting for approval — then `rollout rollback`: every device the rollout told ends on v1 and
reads `rolled_back`, devices never told (later waves, the rest of a wave being told) were never
written to and read `pending`, and
after the abort the journal holds no device write but the rollback's (no target, no retry).
"""

from __future__ import annotations

import pytest

from tests.integration.test_rollout_detached import engines, start_detached  # noqa: F401 (fixture)
from tests.support.rollout_env import FAST_SPEED, SLOW_SPEED, make_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)

CASES = {  # abort when wave 2 (index 1) is in this state: (flags, fleet speed)
    "targeting": (("--rate", "4", "--bake", "0"), FAST_SPEED),
    "running": ((), SLOW_SPEED),
    "baking": (("--bake", "300"), FAST_SPEED),
    "pending": (("--approve-each",), FAST_SPEED),
}


@pytest.mark.parametrize("when", sorted(CASES))
def test_abort_in_any_wave_state_then_rollback_returns_every_reached_device(tmp_path, registry, repo_name, engines,
                                                                            when):
    flags, speed = CASES[when]
    env = make_env(tmp_path, registry, 24, repo_name)
    journal = env.journal()
    fleet = env.fleet(speed=speed)
    try:
        rid = start_detached(env, engines, "--waves", "1,50%,100%", *flags)
        wave = 0 if when in ("baking", "pending") else 1
        target = {"targeting": "targeting", "running": "running", "baking": "baking", "pending": "passed"}[when]
        wait_for(lambda: journal.waves(rid)[wave].state == target, 60, f"wave {wave + 1} {target}")
        if when == "pending":
            wait_for(lambda: journal.waves(rid)[1].state == "pending", 5, "wave 2 waiting for approval")
        code, out = env.cli("rollout", "abort", rid)
        assert code == 0, out
        wait_for(lambda: journal.rollout(rid).state == "aborted", 20, "aborted")
        wait_for(lambda: not journal.engine_lock(rid).held_elsewhere(), 20, "the engine to exit")
        abort_seq = max(e.seq for e in journal.events(rid) if e.kind == "abort")
        # the devices the engine told before it stopped: an abort while a wave is being told stops
        # telling, so the rest of that wave is never written to and stays `pending`
        by_wave = {}
        for a in journal.assignments(rid):
            by_wave.setdefault(a.wave, []).append(a.device_id)
        moved = set()
        for e in journal.events(rid, "target"):
            if e.phase == "intent":
                named = e.data.get("devices")
                moved.update(named if isinstance(named, list) else by_wave[e.wave])
        assert moved, "the abort came before any device was told"
        if when == "targeting":  # 4 a minute: the abort lands while wave 2 is being told
            assert set(by_wave[1]) - moved, "every device of wave 2 was told before the abort"

        code, out = env.cli("rollout", "rollback", rid, "--yes", rid)
        assert code == 0, out
        fleet.set_speed(FAST_SPEED)
        hub = env.hub()
        wait_for(lambda: all(hub.get_device(d).digest("scoring") == env.v1_digest for d in moved), 60,
                 "every reached device back on v1")
        back = max(e.seq for e in journal.events(rid, "rollback") if e.phase == "done")
        wait_for(lambda: any(e.phase == "done" and e.seq > back for e in journal.events(rid, "fold")), 60,
                 "the rolled-back rollout folded once its devices were back")
        status = env.cli_json("rollout", "status", rid)
        assert status["state"] == "rolled_back"
        for device_id, d in status["devices"].items():
            assert d["state"] == ("rolled_back" if device_id in moved else "pending"), (device_id, d)
        code, text = env.cli("rollout", "status", rid)
        assert f"rolled back: {len(moved)} device" in text and "rolling back would cost" not in text
        code, csv = env.cli("rollout", "report", rid, "--format", "csv")
        rows = [line.split(",") for line in csv.strip().splitlines()[1:]]
        assert {r[0] for r in rows if r[3] == "rolled_back"} == moved
        deployments = env.cli_json("deployments")["deployments"]
        used = {d["image"] for d in deployments if d["in_use"]}
        assert env.v1 in used and env.v2 not in used, deployments  # what devices run, nothing they left
        for twin in hub.iter_devices():
            assert twin.digest("scoring") == env.v1_digest and f"rollout_{rid}" not in twin.tags
            if twin.device_id not in moved:
                assert twin.etag == "1"  # never written to
        hub.close()
        after = [e for e in journal.events(rid) if e.seq > abort_seq]
        assert not [e for e in after if e.kind in ("target", "retry", "wave")], [(e.kind, e.phase) for e in after]
        assert [e.kind for e in after if e.kind == "rollback"] == ["rollback", "rollback"]  # intent, done
        code, _ = env.cli("rollout", "rollback", rid, "--yes", rid)
        assert code == 2  # already rolled back: refused
    finally:
        fleet.stop()
        env.kill_engines()
        journal.close()
