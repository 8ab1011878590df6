"""A year of releases: the image devices run, per release, appended vs. rebased onto the seam.

Each release is a naive rebuild (tests/support/releases.py): same base, the dependency layer
rebuilt with new timestamps (`--deps-mb`), a new model (`--model-mb`). Each is rebased with
`--paths /var/azureml-app` onto what devices run, on a real loopback docker-registry, twice:
with `--append` (every release on top of the last: the behaviour before the seam) and with the
default seam choice. Printed per release: layers of the image devices run, bytes an old holder
pulls (and its ratio to the floor: gzip of the changed files + manifest + config), bytes a
device installed at that release pulls (and its ratio to the naive image).

Run: python bench/release_series.py [--releases 12] [--deps-mb 60] [--model-mb 2] [--show 2,6,12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_tui.config import Config  # noqa: E402
from fleet_tui.oci.registry import RegistryClient  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402
from tests.support.releases import run_series  # noqa: E402

MB = 1_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=12)
    ap.add_argument("--deps-mb", type=float, default=60.0)
    ap.add_argument("--model-mb", type=float, default=2.0)
    ap.add_argument("--show", default="2,6,12", help="releases to print (all with 'all')")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-release-bench-"))
    registry = RegistryServer(work / "registry").start()
    try:
        config = Config(state_dir=str(work / "state"))
        client = RegistryClient(registry.host, config)
        rows = {}
        for mode, append in (("append", True), ("seam", False)):
            t0 = time.monotonic()
            rows[mode] = run_series(client, registry.host, f"bench/{mode}", config, args.releases,
                                    int(args.deps_mb * MB), int(args.model_mb * MB), append=append)
            print(f"{mode}: {args.releases} releases rebased in {time.monotonic() - t0:.1f}s "
                  f"({(time.monotonic() - t0) / max(1, args.releases - 1):.2f}s each, pushes included)")
        show = set(range(2, args.releases + 1)) if args.show == "all" else {int(x) for x in args.show.split(",")}
        print(f"\n{'release':>7} | {'mode':<6} | {'layers':>6} | {'old holder':>12} {'÷ floor':>8} | "
              f"{'fresh device':>13} {'÷ naive':>8} | {'naive':>10}")
        for mode in ("append", "seam"):
            for m in rows[mode]:
                if m.index in show:
                    print(f"{m.index:>7} | {mode:<6} | {m.layers:>6} | {m.old_holder:>12,} {m.old_holder / m.floor:>8.3f} | "
                          f"{m.fresh:>13,} {m.fresh / m.naive:>8.3f} | {m.naive:>10,}")
        worst_old = max(m.old_holder / m.floor for m in rows["seam"])
        last = rows["seam"][-1]
        print(f"\nseam: max layers {max(m.layers for m in rows['seam'])}, worst old-holder ratio to floor "
              f"{worst_old:.3f}, release {last.index} fresh/naive {last.fresh / last.naive:.3f} "
              f"(append: {rows['append'][-1].fresh / rows['append'][-1].naive:.3f}, "
              f"{rows['append'][-1].layers} layers)")
        client.close()
    finally:
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
