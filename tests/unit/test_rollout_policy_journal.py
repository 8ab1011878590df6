"""Rollout policy arithmetic, journal write-ahead recovery and the engine lock (no registry)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fleet_tui.errors import Conflict, UsageError
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.rollout.gate import _read_local, read_devices, tag_name
from fleet_tui.rollout.journal import Assignment, EngineLock, Journal
from fleet_tui.rollout.policy import Policy, order_devices


def test_waves_are_cumulative_and_drop_empty_ones():
    p = Policy()
    assert p.wave_sizes(300) == [1, 29, 120, 150]
    assert p.wave_sizes(3) == [1, 1, 1]
    assert Policy(waves=("2", "50%", "100%")).wave_sizes(10) == [2, 3, 5]
    assert Policy.from_config({"waves": "1,100%"}).waves == ("1", "100%")


def test_bad_policy_values_are_one_line_errors():
    for bad in ({"waves": "1,abc"}, {"on_failure": "panic"}, {"max_failed": "-3"}, {"bogus": 1}):
        with pytest.raises(UsageError):
            Policy.from_config(bad)


def test_failure_threshold_waits_for_enough_finished_devices():
    p = Policy(max_failed="10%", min_finished=10)
    assert not p.failure_exceeded(failed=3, finished=5, wave_size=100)  # too few finished yet
    assert p.failure_exceeded(failed=3, finished=10, wave_size=100)
    assert p.failure_exceeded(failed=1, finished=1, wave_size=1)  # canary: the cap is the wave
    assert not Policy(max_failed="2").failure_exceeded(2, 50, 100)


def test_selection_is_stable_and_never_picks_an_offline_canary():
    ids = [f"d{i}" for i in range(50)]
    first = order_devices(ids, set(), seed=3)
    assert order_devices(reversed(ids), set(), seed=3) == first
    assert order_devices(ids, {first[0]}, seed=3)[0] != first[0]
    assert order_devices(ids, set(ids[1:]), seed=3)[0] == ids[0]


def test_engine_lock_is_released_when_its_process_is_killed(tmp_path):
    journal = Journal(tmp_path / "rollouts.sqlite")
    code = ("import sys, time; from pathlib import Path; from fleet_tui.rollout.journal import EngineLock;"
            f"EngineLock(Path({str(journal.path)!r}), 'rx').acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        lock = EngineLock(journal.path, "rx")
        assert lock.held_elsewhere()
        with pytest.raises(Conflict):
            lock.acquire(wait=0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not lock.held_elsewhere()
        lock.acquire(wait=0).release()
    finally:
        proc.kill()


def test_local_fast_path_matches_the_protocol_path(tmp_path):
    hub = LocalHub(tmp_path / "hub.sqlite", stale_after=300)
    hub.register_devices([(f"d{i}", {"fleetGroup": "g"}) for i in range(6)])
    hub.bulk_update_tags(["d0", "d1", "d2"], {tag_name("rq"): "full"})
    hub.report_many([("d0", {"scoring": ModuleReport("scoring", "r@sha256:" + "a" * 64, "sha256:" + "a" * 64,
                                                      "downloading", 1234)}, True),
                     ("d1", {"scoring": ModuleReport("scoring", state="running")}, False)])
    fast = _read_local(hub, "rq", "scoring")

    class ProtocolOnly:  # what any FleetHub offers: no SQLite store to read directly
        def iter_devices(self, condition=None):
            return hub.iter_devices(condition)

    slow = read_devices(ProtocolOnly(), "rq", "scoring")
    assert fast is not None and set(fast) == {"d0", "d1", "d2"}
    assert {k: (v.tag, v.state, v.digest, v.bytes, v.connected) for k, v in fast.items()} == \
           {k: (v.tag, v.state, v.digest, v.bytes, v.connected) for k, v in slow.items()}


def test_an_open_intent_is_found_and_its_devices_are_fixed(tmp_path, open_journal):
    journal = open_journal()
    journal.create("rz", {"policy": Policy().to_dict()}, [1, 2],
                   [Assignment("a", 0, "full", "", "", 10), Assignment("b", 1, "full", "", "", 10),
                    Assignment("c", 1, "full", "", "", 10)])
    seq = journal.record("rz", "target", "intent", 1, {"started": time.time()}, wave_set={"state": "targeting"})
    events = journal.events("rz")
    assert [e.kind for e in events] == ["created", "target"] and events[-1].seq == seq
    assert [a.device_id for a in journal.assignments("rz", wave=1)] == ["b", "c"]
    assert journal.waves("rz")[1].state == "targeting"


@pytest.mark.parametrize("waves", ["50%,10%", "100%,50%", "1,1,1", "10,5,100%", "1,10%,10%,100%"])
def test_waves_that_do_not_grow_are_refused_naming_the_wave(waves):
    with pytest.raises(UsageError, match=r"rollout waves .* must grow: wave \d") as err:
        Policy().with_overrides(waves=waves)
    assert "\n" not in str(err.value)


def test_mixed_waves_are_checked_against_the_group_and_must_reach_all_of_it():
    assert Policy(waves=("5", "10%", "100%")).wave_sizes(100) == [5, 5, 90]
    with pytest.raises(UsageError, match=r"wave 2 \(10% is 2 of 20 devices, fewer than the 5 before it\)"):
        Policy(waves=("5", "10%", "100%")).wave_sizes(20)
    with pytest.raises(UsageError, match="reach 25 of the group's 50 devices; end with 100% or pass --partial to leave 25"):
        Policy(waves=("1", "50%")).wave_sizes(50)
    assert Policy(waves=("1", "50%"), partial=True).wave_sizes(50) == [1, 24]
    assert Policy(waves=("1", "10", "100%")).wave_sizes(4) == [1, 3]  # the whole group reached early: fine


def test_the_journal_refuses_a_second_live_rollout_in_a_group(tmp_path, open_journal):
    journal = open_journal()
    spec = {"group": "vans", "policy": Policy().to_dict()}
    journal.create("r1", spec, [1], [Assignment("a", 0, "full", "", "", 10)])
    with pytest.raises(Conflict, match="rollout r1 is already pending in group 'vans'"):
        journal.create("r2", spec, [1], [Assignment("a", 0, "full", "", "", 10)])
    journal.create("r3", {**spec, "group": "trucks"}, [1], [Assignment("b", 0, "full", "", "", 10)])
    journal.record("r1", "abort", "done", state="aborted")
    journal.create("r2", spec, [1], [Assignment("a", 0, "full", "", "", 10)])  # r1 ended: the group is free
    assert {r.id for r in journal.list_rollouts()} == {"r1", "r2", "r3"}
