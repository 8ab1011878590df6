"""fleet_tui.rollout.inventory: reported caches are taken as said; IoT Edge caches are
modelled from the journal and aziot-edged's image garbage collection threshold."""

from __future__ import annotations

import time

from fleet_tui.config import parse_config
from fleet_tui.hub.protocol import DeviceTwin, ModuleReport
from fleet_tui.rollout.inventory import inventory, modelled_cache
from fleet_tui.rollout.journal import Assignment, Journal

V1 = "reg/app@sha256:" + "1" * 64
V0 = "reg/app@sha256:" + "0" * 64
DAY = 86400.0


def _ended(journal: Journal, rid: str, group: str, finals: dict[str, str], ended: float, prev: str = V1) -> None:
    journal.create(rid, {"group": group}, [len(finals)], [Assignment(d, 0, "full", prev, prev[-71:], 10) for d in finals])
    journal.set_finals(rid, {d: (state, 10) for d, state in finals.items()})
    journal.record(rid, "finish", "done", state="succeeded")
    with journal.tx() as conn:  # the rollout ended `ended` seconds ago
        conn.execute("UPDATE rollouts SET updated = ? WHERE id = ?", (time.time() - ended, rid))


def test_an_image_a_rollout_replaced_is_held_until_garbage_collection(tmp_path, open_journal):
    journal = open_journal()
    _ended(journal, "r-old", "a", {"d1": "running", "d2": "running"}, 9 * DAY, prev=V0)  # collected by now
    _ended(journal, "r-new", "b", {"d1": "running", "d2": "failed", "d3": "running"}, 2 * DAY)
    held = modelled_cache(journal, ["d1", "d2", "d3", "d4"], 7 * DAY)
    assert held == {"d1": (V1,), "d3": (V1,)}  # d2 failed: it still runs V1; d4 was never touched
    assert modelled_cache(journal, ["d1"], 0) == {}  # image_age_cleanup_threshold = 0: nothing kept
    assert modelled_cache(journal, ["d1"], 10 * DAY) == {"d1": (V1, V0)}  # newest first


def test_hubs_that_report_caches_are_believed_and_azure_is_modelled(tmp_path, open_journal):
    twin = DeviceTwin("d1", reported={"scoring": ModuleReport("scoring", V1, V1[-71:], "running", cached=(V0,))})
    assert twin.cached("scoring") == (V0,)

    class Local:
        pass

    class Azure:
        reports_cache = False

    config = parse_config({"state_dir": str(tmp_path), "hub": {"image_gc_threshold": "3d"}})
    assert inventory(config, Local(), [twin.device_id]) == (None, True)
    journal = open_journal()
    _ended(journal, "r1", "g", {"d1": "running"}, 1 * DAY, prev=V0)
    assert inventory(config, Azure(), [twin.device_id], journal) == ({"d1": (V0,)}, True)
    off = parse_config({"state_dir": str(tmp_path), "hub": {"image_gc_threshold": 0}})
    assert inventory(off, Azure(), [twin.device_id], journal) == ({}, False)
