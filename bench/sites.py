"""Sites: what crosses each site's uplink, measured, against the plan and against the per-device
model — for the naive image and the rebased one.

Real parts on loopback: the upstream registry (docker-registry), three sites each behind a
docker-registry pull-through cache reached over a metered uplink (a relay carrying
`--uplink-mbps` and counting every byte it delivered to the cache), 3 x 20 site devices and
10 devices of no site in the simulated fleet, all running v1. v2 is a naive rebuild (its
`--deps-mb` dependency layer re-created with new timestamps, a new model); the rebased v2 is
`fleet-tui rebase v2 --onto v1 --paths /var/azureml-app`. For each, a fresh fleet and fresh
caches: `preview --json` (the plan), then `rollout start` (warm-up, canary per site, waves).

Per site it prints: devices, the unique blobs once, the planned uplink (with the warm-up's own
overhead), the measured uplink, their ratios, what the per-device model would have charged
(every device over its own link), LAN bytes, and the warm-up's wall time (from the warm-up's
start in the journal to the site's `ready`). The wall time of the rollout starts at the
command (`rollout start`), as an operator waits for it.

Run: python bench/sites.py [--deps-mb 20] [--uplink-mbps 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.rollout_env import GROUP  # noqa: E402
from tests.support.sites import SITES, make_site_env, tag_sites  # noqa: E402


def run_case(work: Path, registry: RegistryServer, rebased: bool, deps: int, rate: float) -> list[dict]:
    env, sites = make_site_env(work, registry, f"bench/sites-{'rebased' if rebased else 'naive'}", deps, rate)
    fleet = env.fleet()
    try:
        tag_sites(env, sites)
        target = env.v2
        if rebased:
            target = env.cli_json("rebase", env.v2, "--onto", env.v1, "--paths", "/var/azureml-app",
                                  "--tag", "2-rebased")["ref"]
        plan = {p["site"]: p for p in env.cli_json("preview", target, "--group", GROUP)["sites"]}
        t0 = time.monotonic()
        out = env.cli_json("rollout", "start", target, "--group", GROUP)
        wall = time.monotonic() - t0
        journal = env.journal()
        events = journal.events(out["id"])
        journal.close()
    finally:
        fleet.stop()
        sites.stop()
    if out["state"] != "succeeded":
        raise SystemExit(f"rollout {out['id']} ended {out['state']}: {out.get('reason', '')}")
    rows = []
    for s in SITES:
        p = plan[s]
        marks = {k: next((e.ts for e in events if e.kind == "site" and e.data.get("site") == s and e.data.get(k)), None)
                 for k in ("warming", "ready")}
        measured = sites.uplinks[s].down
        rows.append({
            "image": "rebased" if rebased else "naive", "site": s, "devices": p["devices"], "blob_bytes": p["blob_bytes"],
            "uplink_planned": p["uplink_bytes"], "uplink_measured": measured,
            "measured_vs_planned": round(measured / p["uplink_bytes"], 4) if p["uplink_bytes"] else None,
            "measured_vs_blobs_once": round(measured / p["blob_bytes"], 4) if p["blob_bytes"] else None,
            "per_device_model_bytes": p["lan_bytes"], "lan_bytes": p["lan_bytes"],
            "warmup_s": round(marks["ready"] - marks["warming"], 2) if all(marks.values()) else None,
            "rollout_wall_s": round(wall, 2),
        })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deps-mb", type=float, default=20.0, help="size of the dependency layer (MB)")
    ap.add_argument("--uplink-mbps", type=float, default=8.0, help="each uplink's rate, MB/s")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-sites-") as tmp:
        work = Path(tmp)
        registry = RegistryServer(work / "upstream").start()
        try:
            for rebased in (False, True):
                (work / str(rebased)).mkdir()
                rows += run_case(work / str(rebased), registry, rebased, int(args.deps_mb * 1e6), args.uplink_mbps * 1e6)
        finally:
            registry.stop()
    if args.json:
        print(json.dumps({"deps_bytes": int(args.deps_mb * 1e6), "uplink_rate": args.uplink_mbps * 1e6, "sites": rows}))
        return 0
    print(f"{'IMAGE':8} {'SITE':8} {'DEV':>3} {'BLOBS ONCE':>11} {'PLANNED':>11} {'MEASURED':>11} {'M/P':>6} "
          f"{'M/ONCE':>6} {'PER-DEVICE':>12} {'WARM-UP':>8} {'ROLLOUT':>8}")
    for r in rows:
        print(f"{r['image']:8} {r['site']:8} {r['devices']:>3} {r['blob_bytes']:>11,} {r['uplink_planned']:>11,} "
              f"{r['uplink_measured']:>11,} {r['measured_vs_planned']:>6.3f} {r['measured_vs_blobs_once']:>6.3f} "
              f"{r['per_device_model_bytes']:>12,} {r['warmup_s']:>7.2f}s {r['rollout_wall_s']:>7.2f}s")
    for image in ("naive", "rebased"):
        site_rows = [r for r in rows if r["image"] == image]
        per_device = sum(r["per_device_model_bytes"] for r in site_rows)
        measured = sum(r["uplink_measured"] for r in site_rows)
        print(f"{image}: the 3 uplinks carried {measured:,} B; the per-device model would charge {per_device:,} B "
              f"({per_device / max(1, measured):.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
