"""Preview and rehearsal of a whole group at 10k / 100k / 1M devices, as a user runs them.

Each figure is one `fleet-tui` process started the way an operator starts it, timed from the
spawn to its exit (the user's wait: interpreter start, hub read, planning, output), with the
process's own peak RSS (wait4). Output goes to a pipe this script drains in 1 MiB reads, as a
terminal or `| jq` would; its size is printed.

The fleet is a realistic mix, seeded once per size into `--dir` (a local hub, SQLite) from a
seeded RNG: one group `vans`; 60% run release 1, 25% already run 2, 10% run the older 0, 4%
run 0 and still cache 1, 1% report nothing; 30% are arm64 (the images are amd64+arm64
indexes); devices on 1 cache 0 in half the cases; 3% are offline; links are lte or wifi.
Images live in an embedded OCI store (no registry): 0, 1, 2 and `2-rebased` (2's app layer
on 1's blobs, built by `fleet-tui rebase`).

Commands timed per size:
- `preview oci:STORE:2 --group vans --compare oci:STORE:2-rebased --json` (per device)
- `preview … --by state --json` (one line per distinct state)
- `rollout start oci:STORE:2 --group vans --rehearse --json`
With `--baseline REV`, the preview is also run on that git revision of fleet-tui (a worktree,
same interpreter) at the sizes it can do within `--baseline-max`, and the ratio is printed.

Run: python bench/fleet_scale.py [--devices 10000,100000,1000000] [--baseline 05aa0ad]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_tui.hub.local import LocalHub  # noqa: E402
from fleet_tui.hub.protocol import ModuleReport  # noqa: E402
from fleet_tui.oci import mediatypes as mt  # noqa: E402
from fleet_tui.oci.build import ImageBuilder, push_index  # noqa: E402
from fleet_tui.oci.layer import files_layer  # noqa: E402
from fleet_tui.oci.layout import LayoutStore  # noqa: E402

MODULE = "scoring"
PLATFORMS = ("linux/amd64", "linux/arm64")


def build_store(root: Path) -> dict[str, str]:
    """Tags 0, 1, 2 as amd64+arm64 indexes: base, deps (new blob each release), app; their index digests."""
    digests_file = root / "digests.json"
    if digests_file.exists():
        return json.loads(digests_file.read_text())
    store = LayoutStore(root, create=True)
    digests = {}
    for release in ("0", "1", "2"):
        entries = []
        for platform in PLATFORMS:
            arch = platform.split("/")[1]
            b = ImageBuilder(family=mt.OCI, architecture=arch, created=f"2026-0{int(release) + 1}-01T00:00:00Z")
            b.add_layer(files_layer({f"etc/{arch}-base": arch * 1000}), "ADD base")
            deps = random.Random(arch).randbytes(300_000)  # same packages, rebuilt: a new blob each release
            b.add_layer(files_layer({"usr/lib/deps.so": deps, "usr/lib/BUILD": release}), "RUN pip install")
            b.add_layer(files_layer({"app/model.pkl": f"model {release} {arch}" * 100}), "COPY app")
            manifest, _ = b.manifest()
            digest = b.push(store, "", f"{release}-{arch}")
            entries.append((digest, len(manifest.to_bytes()), manifest.media_type, platform))
        digests[release] = push_index(store, "", release, entries, family=mt.OCI)
    digests_file.write_text(json.dumps(digests))
    return digests


def seed_hub(path: Path, n: int, store: Path, digests: dict[str, str]) -> None:
    if path.exists():
        return
    rng = random.Random(n)
    tmp = path.with_suffix(".seeding")
    tmp.unlink(missing_ok=True)
    hub = LocalHub(tmp, module=MODULE)
    ref = {tag: f"oci:{store}@{d}" for tag, d in digests.items()}
    for start in range(0, n, 100_000):
        ids = [f"dev-{i:07d}" for i in range(start, min(n, start + 100_000))]
        hub.register_devices((d, {"fleetGroup": "vans"}) for d in ids)
        reports = []
        for d in ids:
            roll = rng.random()
            platform = PLATFORMS[rng.random() < 0.3]
            link = "wifi" if rng.random() < 0.2 else "lte"
            if roll < 0.01:
                modules = {}
            else:
                runs, held = ("1", ("0",) if rng.random() < 0.5 else ()) if roll < 0.61 else \
                    ("2", ("1",)) if roll < 0.86 else ("0", ()) if roll < 0.96 else ("0", ("1",))
                modules = {MODULE: ModuleReport(MODULE, ref[runs], digests[runs], "running", platform=platform,
                                                cached=tuple(ref[h] for h in held), link=link)}
            reports.append((d, modules, rng.random() >= 0.03))
        hub.report_many(reports)
    hub.close()
    tmp.rename(path)


def run(argv: list[str], src: Path) -> tuple[float, int, int, int]:
    """(wall seconds, peak RSS MB, bytes written to stdout, exit status) of one process running
    the fleet-tui of `src` (`python -m` puts its working directory first on sys.path)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=src)
    out = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        out += len(chunk)
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(f"    exit {proc.returncode}: {err.strip()[-300:]}")
    return wall, usage.ru_maxrss // 1024, out, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="10000,100000,1000000")
    parser.add_argument("--dir", default="/tmp/fleet-tui-fleet-scale")
    parser.add_argument("--baseline", metavar="REV", help="also time the preview on this git revision")
    parser.add_argument("--baseline-max", type=int, default=100_000, help="largest size the baseline runs at")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    store = root / "store"
    digests = build_store(store)
    if not (store / "2-rebased.done").exists():
        subprocess.run([sys.executable, "-m", "fleet_tui.cli", "rebase", f"oci:{store}:2", "--onto", f"oci:{store}:1",
                        "--paths", "/app", "--tag", "2-rebased"], check=True, stdout=subprocess.DEVNULL)
        (store / "2-rebased.done").write_text("ok\n")
    baseline_src = None
    if args.baseline:
        baseline_src = root / f"baseline-{args.baseline}"
        if not baseline_src.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline_src), args.baseline],
                           check=True, capture_output=True)
    print(f"store {store}; python {sys.version.split()[0]}; {os.cpu_count()} cores")
    for n in [int(x) for x in args.devices.split(",")]:
        hub_path = root / f"hub-{n}.sqlite"
        t0 = time.perf_counter()
        seed_hub(hub_path, n, store, digests)
        seeded = time.perf_counter() - t0
        config = root / f"fleet-{n}.toml"
        config.write_text(f'state_dir = "{root / f"state-{n}"}"\n[hub]\npath = "{hub_path}"\nmodule = "{MODULE}"\n'
                          '[cost]\nper_gb = 400.0\n')
        cli = [sys.executable, "-m", "fleet_tui.cli", "-c", str(config)]
        preview = ["preview", f"oci:{store}:2", "--group", "vans", "--compare", f"oci:{store}:2-rebased", "--json"]
        print(f"\n{n:,} devices (hub {hub_path.stat().st_size / 1e6:.0f} MB{', seeded in %.0f s' % seeded if seeded > 1 else ''})")
        rows = {
            "preview --json": cli + preview,
            "preview --by state --json": cli + preview + ["--by", "state"],
            "rollout start --rehearse --json": cli + ["rollout", "start", f"oci:{store}:2", "--group", "vans",
                                                     "--rehearse", "--json"],
        }
        timed = {}
        for name, argv in rows.items():
            wall, rss, out, _ = run(argv, ROOT)
            timed[name] = wall
            print(f"  {name:<34} {wall:7.2f} s   peak {rss:6,} MB   stdout {out / 1e6:8.1f} MB")
        if baseline_src is not None and n <= args.baseline_max:
            wall, rss, out, _ = run(cli + preview, baseline_src)
            print(f"  {'baseline ' + args.baseline + ' preview --json':<34} {wall:7.2f} s   peak {rss:6,} MB   "
                  f"stdout {out / 1e6:8.1f} MB   ({wall / timed['preview --json']:.1f}x the time)")


if __name__ == "__main__":
    main()
