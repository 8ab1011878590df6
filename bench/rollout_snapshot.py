"""Benchmark: one rollout snapshot (`SnapshotReader.take`) on 10,000 devices, all targeted.

Prints the time per snapshot with the SQL fast path for the local hub, and the baseline:
the same snapshot through the FleetHub protocol (whole twins parsed), measured in this run.
Run: python bench/rollout_snapshot.py [DEVICES]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.rollout.journal import Assignment, Journal
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.snapshot import SnapshotReader


class ProtocolOnly:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub

    def iter_devices(self, condition=None):
        return self.hub.iter_devices(condition)


def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    hub = LocalHub(root / "hub.sqlite")
    ids = [f"dev-{i:06d}" for i in range(n)]
    hub.register_devices((d, {"fleetGroup": "g"}) for d in ids)
    new = "sha256:" + "b" * 64
    hub.report_many((d, {"scoring": ModuleReport("scoring", "r@" + new, new, "downloading", 1000 + i)}, True)
                    for i, d in enumerate(ids))
    hub.bulk_update_tags(ids, {"rollout_rb": "full"})
    journal = Journal(root / "rollouts.sqlite")
    spec = {"policy": Policy().to_dict(), "variants": {"full": {"digest": new}}, "group": "g", "target": "r",
            "module": "scoring"}
    sizes = Policy().wave_sizes(n)
    assignments, start = [], 0
    for w, size in enumerate(sizes):
        assignments += [Assignment(d, w, "full", "", "", 2000) for d in ids[start:start + size]]
        start += size
    journal.create("rb", spec, sizes, assignments)
    for w in range(len(sizes)):
        journal.record("rb", "target", "intent", w, wave_set={"state": "running", "started": 0.0})
    for label, h in (("sql fast path", hub), ("protocol (baseline)", ProtocolOnly(hub))):
        reader = SnapshotReader(journal, h, "rb", 400.0)
        reader.take()
        rounds = 5
        t0 = time.perf_counter()
        for _ in range(rounds):
            snap = reader.take()
        per = (time.perf_counter() - t0) / rounds
        print(f"{label:22s} {n} devices: {per * 1000:7.1f} ms per snapshot (bytes_total {snap.bytes_total})")
        if label.startswith("sql"):
            fast = per
    print(f"ratio baseline/fast: {per / fast:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
