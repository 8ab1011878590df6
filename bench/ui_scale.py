"""Console at scale: prints figures (and ratios against baselines measured in the same run).

0. Opening a group on a real local hub (SQLite, seeded with 100,000 and 1,000,000 devices in
   one group), as the operator waits for it: from `enter` on the Fleet screen to the first
   rows drawn, and to a fully usable list (total known, `G` pressed at once shows the last
   rows, devices per state counted); the console's peak RSS. Each size runs in its own
   process (`--open HUB`). Baseline in the same run: reading the whole group as the console
   did before (`LiveConsoleData.devices`: every twin of the group).
1. Second line, the table alone: first paint of a 100,000-device group whose rows are built
   beforehand in memory (fake data), headless; baseline: Textual's DataTable filling 10,000
   rows (`add_rows`) in the same run.
2. Bytes written to the terminal per second while a 1,000-device rollout runs on the
   Rollout screen: the real app in a pseudo-terminal (80×24 and 160×48), its output
   counted for N seconds after the first paint. Target < 50 KB/s (an SSH link is slow).

Run: `python bench/ui_scale.py` (add `--seconds 10`; `--sizes 100000` for one hub; hubs are
seeded once into `--hub-dir`, default /tmp/fleet-tui-ui-scale). `--child COLS ROWS HZ` is internal: the app
on a 1,000-device fake rollout, run inside the pty.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_tui.demo.fake_console import FakeConsoleData
from fleet_tui.ui.app import FleetApp


async def wait(pred, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.002)


async def first_paint(n: int) -> tuple[float, float]:
    """(seconds to build the fake rows, seconds from enter to painted table)."""
    data = FakeConsoleData(groups={"huge": n}, with_rollout=False)
    t = time.perf_counter()
    data.devices("huge")  # the data side (a hub query) is not the UI's cost: built up front
    build = time.perf_counter() - t
    app = FleetApp(data, clock=data.clock, sample_hz=20)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait(lambda: getattr(app.screen, "loaded", False))
        t = time.perf_counter()
        await pilot.press("enter")
        await wait(lambda: type(app.screen).__name__ == "DevicesScreen" and app.screen.loaded)
        await pilot.pause()
        app.screen._compositor.render_update(full=True)
        paint = time.perf_counter() - t
    return build, paint


async def datatable_baseline(n: int) -> float:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class T(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    data = FakeConsoleData(groups={"g": n}, with_rollout=False).devices("g")
    app = T()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(DataTable)
        t = time.perf_counter()
        table.add_columns("DEVICE", "STATE", "IMAGE", "DIGEST", "LINK", "LAST SEEN")
        table.add_rows([(d.id, d.state, d.image, d.digest[:19], d.link, str(d.last_seen)) for d in data])
        await pilot.pause()
        app.screen._compositor.render_update(full=True)
        return time.perf_counter() - t


def seed(path: Path, n: int) -> None:
    from fleet_tui.hub.local import LocalHub
    from fleet_tui.hub.protocol import ModuleReport

    if path.exists():
        return
    tmp = path.with_suffix(".seeding")
    hub = LocalHub(tmp)
    digest = "sha256:" + "ab" * 32
    report = {"scoring": ModuleReport("scoring", f"127.0.0.1:5000/ml/scoring@{digest}", digest, "running")}
    for start in range(0, n, 100_000):
        ids = [f"dev-{i:07d}" for i in range(start, min(n, start + 100_000))]
        hub.register_devices((d, {"fleetGroup": "vans"}) for d in ids)
        hub.report_many((d, report, True) for d in ids)
    hub.close()
    tmp.rename(path)


async def stamp(pred, app) -> float:
    """The time `pred` first holds (polled every 2 ms), after painting that frame."""
    await wait(pred, 120)
    app.screen._compositor.render_update(full=True)
    return time.perf_counter()


async def open_group(hub_path: str) -> dict:
    """In this process: the console on the hub; times from `enter` (seconds) and peak RSS."""
    import resource

    from fleet_tui.config import Config, HubConfig
    from fleet_tui.ui.live_data import LiveConsoleData

    config = Config(hub=HubConfig(path=hub_path), state_dir=str(Path(hub_path).parent / "state"))
    data = LiveConsoleData(config, read_only=True)
    app = FleetApp(data)
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await wait(lambda: getattr(app.screen, "loaded", False))
        # watchers poll from before the key is sent: Pilot.press returns only once the app is
        # idle, which a screen still loading its counts is not (that would add its wait here)
        first = asyncio.create_task(stamp(lambda: type(app.screen).__name__ == "DevicesScreen"
                                          and app.screen.paged.loaded and app.screen.table.view[0] is not None, app))
        t = time.perf_counter()
        await pilot.press("enter")
        out["first_rows"] = await first - t
        screen = app.screen
        usable = asyncio.create_task(stamp(lambda: screen.paged.counts is not None and screen.table.cursor > 0
                                           and screen.table.cursor == len(screen.paged) - 1
                                           and screen.table.view[screen.table.cursor] is not None, app))
        await pilot.press("G")
        out["usable"] = await usable - t
        out["devices"] = len(screen.paged)
        out["held_rows"] = len(screen.paged.rows)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def whole_group_baseline(hub_path: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) to read every twin of the group as the console used to."""
    import resource

    from fleet_tui.config import Config, HubConfig
    from fleet_tui.ui.live_data import LiveConsoleData

    data = LiveConsoleData(Config(hub=HubConfig(path=hub_path)), read_only=True)
    t = time.perf_counter()
    assert data.devices("vans")
    return time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str) -> dict:
    import json
    import subprocess

    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(cols: int, rows: int, hz: float) -> None:
    data = FakeConsoleData(groups={"fleet-1k": 1000}, with_rollout=False)
    rid = data.start_rollout("127.0.0.1:5000/ml/scoring:2", "fleet-1k")
    data.rollouts[rid].control("approve", data.clock())
    start, frozen = time.time(), data.clock() + 60  # a minute in: wave 2 downloading
    data.clock = lambda: frozen + (time.time() - start) * 3  # 3× speed: plenty of change on screen
    FleetApp(data, clock=data.clock, sample_hz=hz, rollout_id=rid, start="rollout").run()


def terminal_bytes(cols: int, rows: int, seconds: float, hz: float) -> tuple[float, int]:
    """(bytes/s after the first paint, bytes of the first paint)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLORTERM="truecolor")
        os.execv(sys.executable, [sys.executable, __file__, "--child", str(cols), str(rows), str(hz)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    total, first, t0 = 0, 0, time.monotonic()
    measuring_from = None
    try:
        while True:
            now = time.monotonic()
            if measuring_from is None and now - t0 > 4.0:  # startup + first paint done
                measuring_from, first, total = now, total, 0
            if measuring_from is not None and now - measuring_from >= seconds:
                break
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    total += len(os.read(fd, 65536))
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    return total / seconds, first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=3, metavar=("COLS", "ROWS", "HZ"))
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--hub-dir", default="/tmp/fleet-tui-ui-scale")
    parser.add_argument("--open", metavar="HUB")
    parser.add_argument("--baseline", metavar="HUB")
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), int(args.child[1]), float(args.child[2]))
        return
    if args.open or args.baseline:
        import json

        if args.open:
            print(json.dumps(asyncio.run(open_group(args.open))))
        else:
            seconds, rss = whole_group_baseline(args.baseline)
            print(json.dumps({"seconds": seconds, "peak_rss_mb": rss}))
        return
    hub_dir = Path(args.hub_dir)
    hub_dir.mkdir(parents=True, exist_ok=True)
    for n in (int(x) for x in args.sizes.split(",") if x):
        path = hub_dir / f"hub-{n}.sqlite"
        seed(path, n)
        got = run_child("--open", str(path))
        print(f"open a {n:,}-device group on a real local hub (120x40), from enter: first rows "
              f"{got['first_rows'] * 1000:.0f} ms, fully usable (count, states, last row after G) "
              f"{got['usable'] * 1000:.0f} ms; console peak RSS {got['peak_rss_mb']:.0f} MB, "
              f"rows held {got['held_rows']}")
        if n <= 100_000:
            base = run_child("--baseline", str(path))
            print(f"baseline: reading every twin of the group (the console before): {base['seconds'] * 1000:.0f} ms, "
                  f"peak RSS {base['peak_rss_mb']:.0f} MB → first rows {base['seconds'] / got['first_rows']:.0f}x sooner")
    build, paint = asyncio.run(first_paint(args.devices))
    base = asyncio.run(datatable_baseline(10_000))
    print(f"table alone: first paint of a {args.devices:,}-device group, rows built beforehand in memory "
          f"(160x48): {paint * 1000:.0f} ms  (building the fake rows: {build * 1000:.0f} ms)")
    print(f"baseline: Textual DataTable with 10,000 rows: {base * 1000:.0f} ms"
          f"  → virtual table with {args.devices // 10_000}x the rows is {base / paint:.1f}x faster")
    for cols, rows in ((80, 24), (160, 48)):
        for hz in (4.0,):
            rate, first = terminal_bytes(cols, rows, args.seconds, hz)
            print(f"terminal output, 1,000-device rollout, Rollout screen {cols}x{rows} at {hz:g} Hz: "
                  f"{rate / 1000:.1f} KB/s over {args.seconds:g} s (first paint {first / 1000:.1f} KB)")


if __name__ == "__main__":
    main()
