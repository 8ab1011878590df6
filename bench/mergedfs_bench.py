"""Merged-filesystem model: time to apply a layer's entries (the CPU part of every rebase and
verify after the bytes are read), against a plain dict of paths (the lower bound: what any
model must at least do) in the same run.

A site-packages-like layer: 20,000 files under 50 packages × 7 subpackages, every parent
directory with its own entry (as `docker build` layers have).

Run: python bench/mergedfs_bench.py [--files 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_tui.rebase.mergedfs import MergedFS  # noqa: E402
from fleet_tui.rebase.tarscan import Member  # noqa: E402


def layer(files: int) -> list[Member]:
    members, dirs = [], set()
    for i in range(files):
        path = f"usr/local/lib/python3.11/site-packages/pkg{i % 50}/sub{i % 7}/mod{i}.py"
        parts = path.split("/")
        for j in range(1, len(parts)):
            d = "/".join(parts[:j])
            if d not in dirs:
                dirs.add(d)
                members.append(Member(d + "/", b"5", 0o755, 0, 0, 0, "", 0, 0))
        members.append(Member(path, b"0", 0o644, 0, 0, 10, "", 0, 0, "ab"))
    return members


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    members = layer(args.files)
    model = timed(lambda: MergedFS().apply_layer(0, members), args.runs)
    floor = timed(lambda: {m.name.rstrip("/"): (m.type, m.mode, m.uid, m.sha256) for m in members}, args.runs)
    n = len(members)
    print(f"{n:,} entries: model {model:.3f} s ({model / n * 1e6:.1f} µs/entry), "
          f"plain dict {floor:.3f} s ({floor / n * 1e6:.1f} µs/entry), ratio {model / floor:.1f}x (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
