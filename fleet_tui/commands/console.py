"""`fleet-tui console` (also what `fleet-tui` with no subcommand runs): opens the Textual
console on the configured hub and registry, or on seeded fake data (`--fake-data`, no hub
needed: for a first look and for screenshots).

Textual is imported only when the console opens, so headless subcommands never pay for it.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleet_tui.demo.fake_console import FakeConsoleData
from fleet_tui.errors import UsageError
from fleet_tui.ui.live_data import LiveConsoleData

START_SCREENS = ("fleet", "images", "preview", "rollout")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("console", help="open the console (the default with no subcommand)",
                              description="Open the terminal console: fleet, images, preview, rollout.")
    add_console_flags(p)
    p.set_defaults(handler=run_console)


def add_console_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rollout", metavar="ID", help="attach to this rollout (it may run detached)")
    p.add_argument("--target", metavar="REF", help="preselect the target image")
    p.add_argument("--group", metavar="G", help="preselect the device group")
    p.add_argument("--screen", choices=START_SCREENS, default=None, help="screen to open first")
    p.add_argument("--fake-data", action="store_true", help="seeded fake fleet instead of the hub (no hub needed)")
    p.add_argument("--sample-hz", type=float, default=4.0, metavar="HZ", help="screen refreshes per second (default 4)")


def run_console(args: argparse.Namespace, ctx: Any) -> int:
    read_only = bool(getattr(args, "read_only", False) or ctx.read_only)
    sample_hz = float(getattr(args, "sample_hz", 4.0) or 4.0)
    if not 0.2 <= sample_hz <= 30:
        raise UsageError(f"--sample-hz must be between 0.2 and 30, not {sample_hz:g}")
    if getattr(args, "fake_data", False):

        data: Any = FakeConsoleData(read_only=read_only)
        data.clock = _live_clock(data)
    else:

        data = LiveConsoleData(ctx.config, read_only=read_only)
    rollout = getattr(args, "rollout", None)
    screen = getattr(args, "screen", None) or ("rollout" if rollout else "fleet")
    return open_console(data, target=getattr(args, "target", None), group=getattr(args, "group", None),
                        rollout_id=rollout, start=screen, sample_hz=sample_hz)


def open_console(data: Any, **kwargs: Any) -> int:
    """Run the console on `data` until the operator quits (also used by `fleet-tui demo`)."""
    import time

    from fleet_tui.ui.app import FleetApp

    FleetApp(data, clock=getattr(data, "clock", time.time), **kwargs).run()
    return 0


def _live_clock(data: Any) -> Any:
    """Fake data on a real clock: its rollout moves while you watch."""
    import time

    start, frozen = time.time(), data.clock()
    return lambda: frozen + (time.time() - start)
