"""`fleet-tui demo`: the whole story on an embedded fleet — no cloud account, no Docker.

Builds the demo image set into the embedded OCI store (once), writes the demo config,
starts the simulated fleet (a few hundred devices in 4 groups, one on a flaky link)
detached, registers it in the local hub, then opens the console on it. The fleet keeps
running after the console closes only with `--keep-running` (rollouts started from the
console run detached and need it); otherwise it is stopped on exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from fleet_tui.commands import sim
from fleet_tui.commands.output import add_json_flag, print_json
from fleet_tui.config import load_config
from fleet_tui.demo.setup import prepare_demo
from fleet_tui.detach import running_pid
from fleet_tui.errors import UsageError
from fleet_tui.ui.live_data import LiveConsoleData
from fleet_tui.units import plural

STEPS = """\
  1  Fleet: the groups and the image they run (v1)           enter: devices of a group
  2  Images: pick tag 2 as the target (a naive rebuild)      p: preview for a group
  3  Preview: naive 72 MB per device vs rebased ~7 kB        b: build the rebased image
     (priced at $720/GB — $0.72/MB, a pay-as-you-go IoT cellular rate)
  4  R: roll it out in waves (canary first) and watch bytes per device"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="the whole story on an embedded fleet (no cloud, no Docker)",
        description="Build a demo image set into the embedded OCI store, start a simulated fleet of a few hundred "
        "devices in 4 groups (one flaky), and open the console on it.",
        epilog="example:\n  fleet-tui demo                 open the console on the demo fleet\n"
        "  fleet-tui demo --no-console    prepare and start the fleet, print where things are",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dir", metavar="DIR", help="where the demo lives (default: <state dir>/demo)")
    p.add_argument("--devices", type=int, metavar="N", help="fleet size (default 400)")
    p.add_argument("--speed", type=float, default=4.0, help="simulated seconds per real second (default %(default)s)")
    p.add_argument("--no-console", action="store_true", help="prepare and start the fleet, do not open the console")
    p.add_argument("--keep-running", action="store_true", help="leave the simulated fleet running after the console closes")
    add_json_flag(p)
    p.set_defaults(handler=cmd_demo)


def _progress(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace, ctx: Any) -> int:
    if args.devices is not None and not 1 <= args.devices <= 100_000:
        raise UsageError(f"--devices must be between 1 and 100000, not {args.devices}")
    if not 0.1 <= args.speed <= 1000:
        raise UsageError(f"--speed must be between 0.1 and 1000, not {args.speed:g}")
    root = Path(args.dir).expanduser().resolve() if args.dir else ctx.config.state_path() / "demo"
    started = time.monotonic()
    demo = prepare_demo(root, _progress, devices=args.devices, speed=args.speed)
    config = load_config(demo.config_path)
    pidfile, logfile, _ = sim.paths(config)
    started_fleet = False
    if running_pid(pidfile) is None:
        _progress(f"starting {demo.devices} simulated devices (log: {logfile})")
        sim_args = argparse.Namespace(devices=None, foreground=False, json=False)
        sim_ctx = type(ctx)(config=config, read_only=False)
        _quiet(lambda: sim.cmd_up(sim_args, sim_ctx))
        started_fleet = True
    info = {"dir": str(root), "config": str(demo.config_path), "store": str(demo.store), "devices": demo.devices,
            "images": {"1": demo.v1, "2": demo.v2, "3": demo.v3}, "sim_log": str(logfile),
            "seconds": round(time.monotonic() - started, 1)}
    if args.no_console:
        if args.json:
            print_json(info)
        else:
            print(f"demo ready in {info['seconds']} s: {plural(demo.devices, 'device')}, store {demo.store}")
            print(f"use it: fleet-tui -c {demo.config_path} groups   (stop the fleet: fleet-tui -c {demo.config_path} sim down)")
        return 0
    _progress("opening the console — what to try:\n" + STEPS)
    from fleet_tui.commands.console import open_console

    data = LiveConsoleData(config, read_only=ctx.read_only)
    try:
        return open_console(data, target=f"oci:{demo.store}:2", group=None, rollout_id=None, start="fleet", sample_hz=4.0)
    finally:
        if started_fleet and not args.keep_running:
            _quiet(lambda: sim.cmd_down(argparse.Namespace(json=False), type(ctx)(config=config, read_only=False)))
            print(f"demo: simulated fleet stopped; `fleet-tui demo` starts it again ({demo.root})", file=sys.stderr)


def _quiet(fn: Any) -> Any:
    """Run a sim command with its stdout folded into the demo's progress lines."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn()
    for line in buffer.getvalue().splitlines():
        _progress(line)
    return result
