"""Local hub at fleet scale: 100,000 devices in one SQLite file.

Seeds N devices (several groups, a few images, a handful of deployments) into a
temporary local hub and times what the console and the rollout engine do most:
- list groups with device counts, online/offline and current images (`group_summaries`),
  against a naive baseline measured in the same run: read every twin and count in Python;
- widen a rollout wave by tagging 10,000 devices in one `bulk_update_tags` (which also
  re-materialises their desired modules), against one `update_tags` per device; then the
  same for 10,000 contiguous devices (the scattered wave rewrites rows all over the file);
- poll desired state for 10,000 simulated devices with `desired_for_many`, against one
  `desired_for` per device; and report their state with `report_many`.

Usage: python bench/hub_scale.py [--devices 100000] [--wave 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleReport, ModuleSpec

GROUPS = ["vans-west", "vans-east", "trucks", "drones", "factory-a", "factory-b", "buses", "boats"]
DIGESTS = ["sha256:" + c * 64 for c in "abc"]


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall time of `repeat` runs (seconds) and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def naive_group_scan(hub: LocalHub, module: str) -> dict[str, dict]:
    """Baseline: every twin into Python, parse its JSON, count per group and digest."""
    cutoff = time.time() - hub.stale_after
    groups: dict[str, dict] = {}
    rows = hub.store.conn.execute("SELECT tags, reported, connected, last_seen FROM devices").fetchall()
    for tags, reported, connected, last_seen in rows:
        name = json.loads(tags).get(hub.group_tag, "")
        digest = json.loads(reported).get(module, {}).get("digest", "")
        g = groups.setdefault(name, {"devices": 0, "online": 0, "images": {}})
        g["devices"] += 1
        g["online"] += bool(connected) and last_seen >= cutoff
        if digest:
            g["images"][digest] = g["images"].get(digest, 0) + 1
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--wave", type=int, default=10_000)
    ap.add_argument("--naive-sample", type=int, default=1_000, help="devices for the one-call-per-device baselines")
    args = ap.parse_args()
    n, wave = args.devices, args.wave
    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    hub = LocalHub(tmp / "hub.sqlite")
    ids = [f"dev-{i:06d}" for i in range(n)]

    t_register, _ = timed(lambda: hub.register_devices(
        (d, {"fleetGroup": GROUPS[i % len(GROUPS)], "wave": i % 4}) for i, d in enumerate(ids)))
    reports = [
        (d, {"scoring": ModuleReport("scoring", f"reg/ml/scoring@{DIGESTS[i % 7 % 3]}", DIGESTS[i % 7 % 3], "running")},
         i % 50 != 0)
        for i, d in enumerate(ids)
    ]
    t_report_all, _ = timed(lambda: hub.report_many(reports))
    spec = lambda dg: {"scoring": ModuleSpec("scoring", f"reg/ml/scoring@{dg}")}  # noqa: E731
    t_deploy, _ = timed(lambda: [
        hub.create_deployment(Deployment("base", "*", 1, spec(DIGESTS[0]))),
        hub.create_deployment(Deployment("vans", "tags.fleetGroup IN ['vans-west', 'vans-east']", 5, spec(DIGESTS[1]))),
        hub.create_deployment(Deployment("r42", "tags.rollout.r42 = 'on'", 10, spec(DIGESTS[2]))),
    ])
    print(f"devices: {n:,}   hub file: {(tmp / 'hub.sqlite').stat().st_size / 1e6:.1f} MB (+ WAL)")
    print(f"seed: register {t_register:.2f} s, report all {t_report_all:.2f} s, "
          f"3 deployments materialised over all devices {t_deploy:.2f} s")

    t_sum, summary = timed(lambda: hub.group_summaries("scoring"), repeat=5)
    t_naive, naive = timed(lambda: naive_group_scan(hub, "scoring"), repeat=3)
    assert {g.name: g.images for g in summary} == {k: v["images"] for k, v in naive.items()}, "summaries disagree"
    assert {g.name: g.online for g in summary} == {k: v["online"] for k, v in naive.items()}
    print(f"list groups with counts, online/offline and images: {t_sum * 1000:.1f} ms "
          f"(naive full scan in Python: {t_naive * 1000:.0f} ms, {t_naive / t_sum:.0f}x faster)")

    wave_ids = ids[::max(1, n // wave)][:wave]
    t_bulk, count = timed(lambda: hub.bulk_update_tags(wave_ids, {"rollout": {"r42": "on"}}))
    assert count == len(wave_ids) and hub.desired_for(wave_ids[-1])[0] == "r42"
    sample = ids[1::max(1, n // args.naive_sample)][: args.naive_sample]
    t_one, _ = timed(lambda: [hub.update_tags(d, {"rollout": {"r42": "on"}}) for d in sample])
    per_device = t_one / len(sample)
    print(f"bulk_update_tags on {len(wave_ids):,} devices (+ re-materialise desired): {t_bulk * 1000:.0f} ms "
          f"(one update_tags per device: {per_device * 1000:.2f} ms each, measured on {len(sample):,} → "
          f"{per_device * len(wave_ids):.1f} s for the wave, {per_device * len(wave_ids) / t_bulk:.0f}x)")
    block = ids[-len(wave_ids):]
    t_block, count = timed(lambda: hub.bulk_update_tags(block, {"rollout": {"r42": "on"}}))
    assert count == len(block)
    print(f"bulk_update_tags on {len(block):,} contiguous devices (+ re-materialise desired): {t_block * 1000:.0f} ms")

    poll_ids = ids[: wave]
    t_many, desired = timed(lambda: hub.desired_for_many(poll_ids), repeat=3)
    assert len(desired) == len(poll_ids)
    t_each, _ = timed(lambda: [hub.desired_for(d) for d in poll_ids])
    print(f"desired_for_many for {len(poll_ids):,} devices: {t_many * 1000:.0f} ms "
          f"(one desired_for per device: {t_each * 1000:.0f} ms, {t_each / t_many:.1f}x)")
    t_rep, _ = timed(lambda: hub.report_many(reports[: wave]), repeat=3)
    print(f"report_many for {wave:,} devices: {t_rep * 1000:.0f} ms")

    t_page, twins = timed(lambda: sum(1 for _ in hub.iter_devices("tags.fleetGroup = 'trucks'")))
    print(f"iter_devices over one group ({twins:,} twins, pages of 1,000): {t_page * 1000:.0f} ms")
    hub.close()


if __name__ == "__main__":
    main()
