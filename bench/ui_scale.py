"""Console at scale: prints figures (and ratios against baselines measured in the same run).

1. First paint of a 100,000-device group (Fleet → enter → Devices drawn), headless;
   baseline: Textual's DataTable filling 10,000 rows (`add_rows`) in the same run.
2. Applying a snapshot in which 10,000 devices changed to the virtual table (set_rows +
   the redraw it causes).
3. Bytes written to the terminal per second while a 1,000-device rollout runs on the
   Rollout screen: the real app in a pseudo-terminal (80×24 and 160×48), its output
   counted for N seconds after the first paint. Target < 50 KB/s (an SSH link is slow).

Run: `python bench/ui_scale.py` (add `--seconds 10`). `--child COLS ROWS HZ` is internal: the app
on a 1,000-device fake rollout, run inside the pty.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import signal
import struct
import sys
import termios
import fcntl
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet_tui.ui.app import FleetApp  # noqa: E402
from fleet_tui.ui.fake_data import FakeConsoleData  # noqa: E402


async def wait(pred, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.005)


async def first_paint(n: int) -> tuple[float, float, float]:
    """(seconds to build the fake rows, seconds from enter to painted table, apply 10k changes)."""
    data = FakeConsoleData(groups={"huge": n}, with_rollout=False)
    t = time.perf_counter()
    rows = data.devices("huge")  # the data side (a hub query) is not the UI's cost: built up front
    build = time.perf_counter() - t
    app = FleetApp(data, clock=data.clock, sample_hz=20)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait(lambda: getattr(app.screen, "loaded", False))
        t = time.perf_counter()
        await pilot.press("enter")
        await wait(lambda: type(app.screen).__name__ == "DevicesScreen" and app.screen.loaded)
        await pilot.pause()
        app.screen._compositor.render_update(full=True)  # noqa: SLF001 - force one full frame
        paint = time.perf_counter() - t
        table = app.screen.table
        changed = list(rows)
        for i in range(0, n, max(1, n // 10_000)):
            changed[i] = replace(changed[i], state="downloading")
        t = time.perf_counter()
        table.set_rows(changed)
        await pilot.pause()
        apply = time.perf_counter() - t
    return build, paint, apply


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
        app.screen._compositor.render_update(full=True)  # noqa: SLF001
        return time.perf_counter() - t


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
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), int(args.child[1]), float(args.child[2]))
        return
    build, paint, apply = asyncio.run(first_paint(args.devices))
    base = asyncio.run(datatable_baseline(10_000))
    print(f"first paint of a {args.devices:,}-device group (virtual table, 160x48): {paint * 1000:.0f} ms"
          f"  (fake rows built beforehand in {build * 1000:.0f} ms)")
    print(f"baseline: Textual DataTable with 10,000 rows: {base * 1000:.0f} ms"
          f"  → virtual table with {args.devices // 10_000}x the rows is {base / paint:.1f}x faster")
    print(f"apply a snapshot with 10,000 of {args.devices:,} devices changed: {apply * 1000:.0f} ms")
    for cols, rows in ((80, 24), (160, 48)):
        for hz in (4.0,):
            rate, first = terminal_bytes(cols, rows, args.seconds, hz)
            print(f"terminal output, 1,000-device rollout, Rollout screen {cols}x{rows} at {hz:g} Hz: "
                  f"{rate / 1000:.1f} KB/s over {args.seconds:g} s (first paint {first / 1000:.1f} KB)")


if __name__ == "__main__":
    main()
