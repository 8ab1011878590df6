"""Rehearsal speed: `rollout start --rehearse` on a local hub of N devices, from the call to
the forecast (the user's wait), with the demo's image store and fleet model.

For each N: a fresh local hub whose N devices run the demo's v1 and report the demo's
`cellular` link; the timed call is `rehearse(...)` — group read, the rollout's full plan
(per-device pull plans) and the forecast. The baseline, measured in the same run, is the
plan alone (`plan_rollout`, what every `rollout start` does before touching anything), so the
ratio is what the forecast adds.

Run: python bench/rehearsal.py [--devices 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet_tui.config import load_config
from fleet_tui.demo.setup import prepare_demo
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.rollout.create import plan_rollout
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.rehearsal import rehearse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="1000,10000,100000")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-rehearsal-"))
    demo = prepare_demo(root / "demo")
    print(f"demo store {demo.store}; target {demo.v2.rsplit('@', 1)[1][:19]}")
    for n in [int(x) for x in args.devices.split(",")]:
        path = root / f"hub-{n}.sqlite"
        config_path = root / f"c-{n}.toml"
        config_path.write_text(demo.config_path.read_text().replace(str(root / "demo" / "hub.sqlite"), str(path)))
        config = load_config(config_path)
        hub = LocalHub(path, module="scoring")
        ids = [f"dev-{i:06d}" for i in range(n)]
        hub.register_devices((d, {"fleetGroup": "vans"}) for d in ids)
        report = {"scoring": ModuleReport("scoring", demo.v1, demo.v1.rsplit("@", 1)[1], "running", link="cellular")}
        hub.report_many((d, report, True) for d in ids)
        journal = Journal(root / f"journal-{n}.sqlite")
        policy = Policy.from_config(config.rollout)
        t0 = time.perf_counter()
        plan_rollout(config, hub, journal, demo.v2, "vans", policy, confirm_over_budget=lambda _w: True)
        planned_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = rehearse(config, hub, journal, demo.v2, "vans", policy)
        rehearsed_s = time.perf_counter() - t0
        paced = replace(policy, rate=max(60.0, n / 20), rate_factor=2.0, rate_every=max(1, n // 20),
                        max_downloading=max(10, n // 10), pre_stage=True)
        t0 = time.perf_counter()
        p = rehearse(config, hub, journal, demo.v2, "vans", paced)
        paced_s = time.perf_counter() - t0
        hub.close()
        journal.close()
        print(f"{n:>7,} devices: rehearse {rehearsed_s:6.2f} s (plan alone {planned_s:6.2f} s, ratio "
              f"{rehearsed_s / planned_s:4.2f}); forecast {r.seconds:,.0f} s, {r.bytes:,} B, "
              f"{[w.verdict for w in r.waves]}")
        print(f"{'':>7}  paced (rate {paced.rate:g}/min ×2 every {paced.rate_every}, ≤ {paced.max_downloading} at once, "
              f"pre-stage): rehearse {paced_s:6.2f} s; forecast {p.seconds:,.0f} s, {len(p.waves)} waves, "
              f"{[w.verdict for w in p.waves]}")


if __name__ == "__main__":
    main()
