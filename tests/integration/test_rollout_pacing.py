"""Rollout pacing on real parts (registry, local hub, simulated fleet): budget, rate, windows,
continue-anyway, and a SIGKILL while a paced wave is being told.

Budget figures are in bytes (the plan of one device is known exactly), so "spend never
exceeds the budget" is checked against what devices really downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import time

import pytest

from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rollout.policy import order_devices
from fleet_tui.rollout.tagging import WaveTagging
from tests.support.rollout_env import GROUP, make_env, pid_alive, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)


def tag_batches(journal, rid: str) -> list[tuple[float, list[str]]]:
    return [(e.ts, e.data["devices"]) for e in journal.events(rid, "target")
            if e.phase == "intent" and isinstance(e.data.get("devices"), list)]


def test_budget_halts_before_the_wave_that_would_cross_it_and_continue_spends_past_it(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 20, repo_name)
    per_device = plan_pull(env.images[env.v2], [env.images[env.v1]]).total_bytes
    budget = 7 * per_device  # waves 1, 4, 5, 10 devices: waves 1-2 (5 devices) fit, wave 3 (10) does not
    flags = ("--waves", "1,5,10,100%", "--budget", str(budget))
    journal = env.journal()
    fleet = env.fleet()
    try:
        code, _ = env.cli("rollout", "start", env.v2, "--group", GROUP, *flags)
        assert code == 2 and journal.list_rollouts() == []  # over budget, not confirmed: nothing journalled
        preview = env.cli_json("preview", env.v2, "--group", GROUP, *flags)
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, *flags, "--over-budget", codes=(1,))
        rid = out["id"]
        status = env.cli_json("rollout", "status", rid)
        assert out["state"] == "halted" and status["reason"].startswith("budget: wave 3 would bring spend to")
        assert [w["state"] for w in status["waves"]] == ["passed", "passed", "pending", "pending"]
        assert status["bytes_total"] <= budget and status["budget"] == {"bytes": budget, "text": str(budget)}
        assert sum(len(d) for _, d in tag_batches(journal, rid)) == 5
        planned = [sum(a.planned_bytes for a in journal.assignments(rid, w)) for w in range(4)]
        assert [w["bytes"] for w in preview["waves"]] == planned  # the preview priced the rollout's own waves
        assert [w["within_budget"] for w in preview["waves"]] == [True, True, False, False]

        code, text = env.cli("rollout", "continue", rid, "--yes", rid)
        assert code == 0, text
        wait_for(lambda: journal.rollout(rid).state == "halted" and journal.waves(rid)[2].state == "passed", 30,
                 "wave 3 to pass and the budget to stop wave 4")
        status = env.cli_json("rollout", "status", rid)
    finally:
        fleet.stop()
        env.kill_engines()
    assert status["reason"].startswith("budget: wave 4 would bring spend to")
    assert status["bytes_total"] == 10 * per_device
    events = journal.events(rid, "continue")
    assert len(events) == 1 and events[0].data.get("budget") and events[0].data.get("by")


def test_over_budget_is_refused_in_one_line_naming_both_figures(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 4, repo_name, rollout='budget = "$0.01"')
    fleet = env.fleet()
    try:
        proc = env.cli_proc("rollout", "start", env.v2, "--group", GROUP)
    finally:
        fleet.stop()
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "over the $0.01 budget" in proc.stderr and "--over-budget" in proc.stderr


def test_rate_keeps_tagging_within_n_per_minute(tmp_path, registry, repo_name, capsys):
    env = make_env(tmp_path, registry, 40, repo_name)
    rate = 120.0  # 2 devices a second
    fleet = env.fleet()
    try:
        t0 = time.monotonic()
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "100%", "--rate", str(rate))
        elapsed = time.monotonic() - t0
    finally:
        fleet.stop()
    assert out["state"] == "succeeded"
    batches = tag_batches(env.journal(), out["id"])
    first = batches[0][0]
    told = 0
    for ts, devices in batches:
        told += len(devices)
        assert told <= max(1, rate // 60) + rate * (ts - first) / 60 + 1e-6, (told, ts - first)  # one second's worth, then the rate
        assert sum(len(d) for t, d in batches if ts - 60 < t <= ts) <= rate
    assert told == 40 and len({d for _, ds in batches for d in ds}) == 40
    assert batches[-1][0] - first >= (40 - rate // 60) / (rate / 60) - 0.5
    with capsys.disabled():
        print(f"\n[pacing-rate] 40 devices at {rate:g}/min: told over {batches[-1][0] - first:.1f}s in "
              f"{len(batches)} batches, rollout {elapsed:.1f}s")


class Clock:
    """The engine's wall clock for windows, moved by the test (real time plus an offset)."""

    def __init__(self, start: dt.datetime) -> None:
        self.offset = start.timestamp() - time.time()

    def now(self) -> float:
        return time.time() + self.offset

    def jump_to(self, when: dt.datetime) -> None:
        self.offset = when.timestamp() - time.time()


def test_window_opening_closing_and_reopening_mid_wave(tmp_path, registry, repo_name, monkeypatch):
    env = make_env(tmp_path, registry, 20, repo_name)
    day = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    clock = Clock(day.replace(hour=11, minute=59, second=58))
    monkeypatch.setattr(WaveTagging, "wall_clock", staticmethod(clock.now))
    journal = env.journal()
    fleet = env.fleet()
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(out=env.cli_json(
        "rollout", "start", env.v2, "--group", GROUP, "--waves", "100%", "--rate", "60",
        "--window", "12:00-12:01", "--window", "12:03-12:10")))
    try:
        runner.start()
        rid = wait_for(lambda: journal.list_rollouts() and journal.list_rollouts()[0].id, 20, "the rollout")
        wait_for(lambda: journal.events(rid, "wait"), 10, "waiting for the window")
        assert tag_batches(journal, rid) == []
        wait_for(lambda: sum(len(d) for _, d in tag_batches(journal, rid)) >= 3, 15, "the window to open")
        clock.jump_to(day.replace(hour=12, minute=1, second=30))  # closed mid-wave
        time.sleep(0.3)
        told = sum(len(d) for _, d in tag_batches(journal, rid))
        time.sleep(2.0)
        assert sum(len(d) for _, d in tag_batches(journal, rid)) == told < 20
        assert len(journal.events(rid, "wait")) == 2
        clock.jump_to(day.replace(hour=12, minute=3))  # opens again
        runner.join(60)
    finally:
        fleet.stop()
    assert result["out"]["state"] == "succeeded"  # type: ignore[index]
    assert len({d for _, ds in tag_batches(journal, rid) for d in ds}) == 20


def test_continue_anyway_after_a_failed_canary_finishes_the_rollout(tmp_path, registry, repo_name, monkeypatch):
    env = make_env(tmp_path, registry, 12, repo_name)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest)
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", codes=(1,))
        rid = out["id"]
        assert out["state"] == "halted"
        proc = env.cli_proc("rollout", "continue", rid)  # no terminal, no --yes: refused
        assert proc.returncode == 2 and f"--yes {rid}" in proc.stderr
        monkeypatch.setenv("SSH_CLIENT", "10.1.2.3 50022 22")  # the operator came over SSH
        code, text = env.cli("rollout", "continue", rid, "--yes", rid)
        assert code == 0, text
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 30, "the rollout to finish")
        status = env.cli_json("rollout", "status", rid)
        log = env.cli_json("rollout", "log", rid)
    finally:
        fleet.stop()
        env.kill_engines()
    states = [d["state"] for d in status["devices"].values()]
    assert states.count("running") == 11 and states.count("failed") == 1
    (event,) = journal.events(rid, "continue")
    assert event.data.get("gate") and event.data["by"].endswith(" from 10.1.2.3")
    assert [a["action"] for a in status["actions"]] == ["created", "continue"] == [a["action"] for a in log["actions"]]
    assert any(t["text"] == f"wave 1: continued past its failed gate by {event.data['by']}" for t in log["events"])


def test_sigkill_while_a_paced_wave_is_told_resumes_without_telling_anyone_twice(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 30, repo_name)
    journal = env.journal()
    fleet = env.fleet()
    pids: list[int] = []
    try:
        proc = env.cli_proc("rollout", "start", env.v2, "--group", GROUP, "--waves", "100%", "--rate", "90",
                            "--detach", "--json")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        rid = out["id"]
        pids.append(out["pid"])
        for _ in range(2):
            wait_for(lambda: len(tag_batches(journal, rid)) >= 3 + 5 * len(pids), 30, "more batches")
            pid = journal.rollout(rid).pid
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 10, "the engine to die")
            resumed = env.cli_proc("rollout", "resume", rid, "--json")
            assert resumed.returncode == 0, resumed.stderr
            pids.append(journal.rollout(rid).pid)
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 60, "the rollout to succeed")
        wait_for(lambda: any(e.phase == "done" for e in journal.events(rid, "fold")), 30, "the fold")
    finally:
        fleet.stop()
        for pid in pids:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    told = [d for _, ds in tag_batches(journal, rid) for d in ds]
    assert len(told) == len(set(told)) == 30
    hub = env.hub()
    twins = list(hub.iter_devices())
    hub.close()
    assert {t.etag for t in twins} == {"4"}  # tagged once, pinned, untagged: no device written twice
    assert {t.digest("scoring") for t in twins} == {env.v2_digest}


def test_link_aware_rollout_goes_cheap_links_first_and_holds_metered_ones_for_their_window(
        tmp_path, registry, repo_name, monkeypatch):
    from fleet_tui.devices.linkmodel import LinkProfile
    from fleet_tui.devices.simconfig import GroupSpec, SimSpec
    from tests.support.rollout_env import FAST_SPEED, LINK
    from tests.support.sim_thread import SimFleetThread

    env = make_env(tmp_path, registry, 6, repo_name)
    wifi = LinkProfile("wifi", bandwidth=5_000_000, latency=0.001)
    spec = SimSpec(env.v1, (GroupSpec(GROUP, 6, LINK.name), GroupSpec("depot", 4, "wifi")),
                   links={LINK.name: LINK, "wifi": wifi}, seed=6, speed=FAST_SPEED, prefix="sim-", poll_seconds=0.05,
                   report_hz=20.0, apply_seconds=0.05, chunk_bytes=256 * 1024, connections=32)
    day = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    clock = Clock(day.replace(hour=12))  # the metered window (01:00-05:00) is closed
    monkeypatch.setattr(WaveTagging, "wall_clock", staticmethod(clock.now))
    fleet = SimFleetThread(spec, env.config.hub_path(), env.config).start()
    depot = [f"sim-depot-{i:05d}" for i in range(4)]
    hub = env.hub()
    hub.bulk_update_tags(depot, {"fleetGroup": GROUP})  # four wifi devices join the cellular group
    hub.close()
    journal = env.journal()
    result: dict[str, object] = {}
    runner = threading.Thread(target=lambda: result.update(out=env.cli_json(
        "rollout", "start", env.v2, "--group", GROUP, "--waves", "2,100%", "--unmetered-link", "wifi",
        "--metered-window", "01:00-05:00")))
    try:
        runner.start()
        rid = wait_for(lambda: journal.list_rollouts() and journal.list_rollouts()[0].id, 20, "the rollout")
        wait = wait_for(lambda: [e for e in journal.events(rid, "wait") if e.data.get("metered")], 20,
                        "metered devices to wait for their window")
        assert wait[0].data["metered"] == 6
        told = [d for _, ds in tag_batches(journal, rid) for d in ds]
        assert sorted(told) == sorted(depot)  # the canary wave and the rest of wave 2's cheap devices only
        assert set(journal.assignments(rid, 0)[i].device_id for i in range(2)) <= set(depot)
        time.sleep(1.0)
        assert len([d for _, ds in tag_batches(journal, rid) for d in ds]) == 4  # still held
        clock.jump_to(day.replace(hour=1, minute=0, second=1) + dt.timedelta(days=1))
        runner.join(60)
    finally:
        fleet.stop()
    assert result["out"]["state"] == "succeeded"  # type: ignore[index]
    assert len({d for _, ds in tag_batches(journal, rid) for d in ds}) == 10


def test_pre_staged_rollout_switches_every_device_at_once_with_no_layer_bytes(tmp_path, registry, repo_name, capsys):
    env = make_env(tmp_path, registry, 12, repo_name)
    journal = env.journal()
    fleet = env.fleet()
    try:
        t0 = time.monotonic()
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,50%,100%", "--pre-stage")
        elapsed = time.monotonic() - t0
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    rid = out["id"]
    assert out["state"] == "succeeded", status["reason"]
    assert [w["size"] for w in status["waves"]] == [1, 5, 6, 12]  # three staging waves, then the switch
    staged = journal.staged_bytes(rid)
    per_device = plan_pull(env.images[env.v2], [env.images[env.v1]]).total_bytes
    assert sorted(staged.values()) == [per_device] * 12  # every byte moved while staging ...
    assert {d["bytes"] for d in status["devices"].values()} == {per_device}  # ... and none at the switch
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    switch = [e for e in journal.events(rid, "judge") if e.wave == 3]
    assert len(switch) == 1 and switch[0].data["passed"] and switch[0].data["running"] == 12  # one judgement
    switch_batches = [ds for ts, ds in tag_batches(journal, rid)
                      if any(e.wave == 3 and e.data.get("devices") == ds for e in journal.events(rid, "target"))]
    assert len(switch_batches) == 1 and len(switch_batches[0]) == 12  # everyone switched at once
    hub = env.hub()
    twins = list(hub.iter_devices())
    leftovers = [d.id for d in hub.list_deployments() if "-s" in d.id.rsplit(rid, 1)[-1]]
    hub.close()
    assert {t.digest("scoring") for t in twins} == {env.v2_digest}
    assert not any("scoring-stage" in t.desired for t in twins) and leftovers == []
    with capsys.disabled():
        print(f"\n[pacing-prestage] 12 devices staged in 3 waves ({per_device} B each), switched in one wave: "
              f"0 B at the switch, {elapsed:.1f}s")


def test_report_numbers_are_the_status_numbers_and_the_rebase_saving_is_priced(tmp_path, registry, repo_name):
    import csv
    import io

    env = make_env(tmp_path, registry, 10, repo_name)
    fleet = env.fleet()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", "--auto-rebase")
        rid = out["id"]
        status = env.cli_json("rollout", "status", rid)
        report = json.loads(env.cli("rollout", "report", rid, "--format", "json")[1])
        md = env.cli("rollout", "report", rid)[1]
        rows = list(csv.DictReader(io.StringIO(env.cli("rollout", "report", rid, "--format", "csv")[1])))
    finally:
        fleet.stop()
    for key in ("bytes_total", "bytes_planned", "cost", "state", "target", "group"):
        assert report[key] == status[key], key
    assert {d: (v["state"], v["bytes"]) for d, v in report["per_device"].items()} == \
        {d: (v["state"], v["bytes"]) for d, v in status["devices"].items()}
    naive = plan_pull(env.images[env.v2], [env.images[env.v1]]).total_bytes
    assert report["naive_bytes"] == 10 * naive and report["bytes_planned"] < naive  # rebased: a few KB per device
    assert report["cost_avoided"] == round((10 * naive - report["bytes_planned"]) / 1e9 * 400.0, 2)
    assert [w["state"] for w in report["waves"]] == ["passed", "passed"] and all(w["took_s"] >= 0 for w in report["waves"])
    assert report["timeline"][-1]["bytes"] == report["bytes_total"]
    assert len(rows) == 10 and sum(int(r["bytes"]) for r in rows) == report["bytes_total"]
    assert md.startswith(f"# Rollout {rid}:") and "<svg" in md and "naive cost avoided" in md


def test_sigkill_while_staging_and_at_the_switch_resumes_without_moving_bytes_twice(tmp_path, registry, repo_name):
    from tests.support.rollout_env import FAST_SPEED, SLOW_SPEED

    env = make_env(tmp_path, registry, 20, repo_name)
    journal = env.journal()
    fleet = env.fleet(speed=SLOW_SPEED)  # a device needs ~10 s to stage: time to kill the engine in a staging wave
    pids: list[int] = []

    def kill_and_resume(rid: str) -> None:
        pid = wait_for(lambda: journal.rollout(rid).pid if journal.engine_lock(rid).held_elsewhere() else 0,
                       20, "an engine to run")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "the engine to die")
        resumed = env.cli_proc("rollout", "resume", rid, "--json")
        assert resumed.returncode == 0, resumed.stderr
        pids.append(journal.rollout(rid).pid)

    try:
        proc = env.cli_proc("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", "--pre-stage",
                            "--detach", "--json")
        assert proc.returncode == 0, proc.stderr
        rid = json.loads(proc.stdout)["id"]
        pids.append(json.loads(proc.stdout)["pid"])
        wait_for(lambda: journal.waves(rid)[1].started, 30, "the second staging wave to start")
        kill_and_resume(rid)  # mid-staging
        fleet.set_speed(FAST_SPEED)
        wait_for(lambda: journal.waves(rid)[2].started, 60, "the switch to start")
        kill_and_resume(rid)  # at the switch
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 60, "the rollout to succeed")
        status = env.cli_json("rollout", "status", rid)
    finally:
        fleet.stop()
        for pid in pids:
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    per_device = plan_pull(env.images[env.v2], [env.images[env.v1]]).total_bytes
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    assert {d["bytes"] for d in status["devices"].values()} == {per_device}  # staged once, nothing at the switch
    for wave in range(3):  # each device told once per phase, whatever the kills
        told = [d for e in journal.events(rid, "target") if e.phase == "intent" and e.wave == wave
                for d in (e.data["devices"] if isinstance(e.data.get("devices"), list) else [])]
        assert len(told) == len(set(told)) == (20 if wave == 2 else journal.waves(rid)[wave].size)
