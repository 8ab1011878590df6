"""`fleet-tui sim up|down|status`: the simulated fleet of the config's `[sim]` section.

`sim up` starts it detached — `sim up --foreground` in its own session, output appended to
`<state dir>/sim.log`, its pid in `<state dir>/sim.pid` — and returns once the child has
registered its devices in the local hub and written `<state dir>/sim.json`; it prints
where the log is. `sim down` stops the process named by the pidfile (after checking it
is a fleet-tui process, so a recycled pid is never signalled) and says so plainly when
none runs. Invariants: at most one simulated fleet per state dir; the pidfile and status
file are removed when the fleet stops, whoever stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fleet_tui.commands.output import add_json_flag, command, print_json
from fleet_tui.detach import alive, cli_argv, forget, launch, running_pid
from fleet_tui.devices.simconfig import (
    SimSpec,
    available_memory,
    check_memory,
    parse_sim,
)
from fleet_tui.devices.simfleet import SimFleet
from fleet_tui.errors import Conflict, FleetError, UsageError
from fleet_tui.hub.local import LocalHub
from fleet_tui.units import plural

READY_TIMEOUT = 120.0
STATUS_EVERY = 10.0


def register(subparsers: Any) -> None:
    sim = subparsers.add_parser("sim", help="start / stop the simulated fleet described in the config's [sim]")
    sub = sim.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    p = sub.add_parser("up", help="start the simulated fleet in the background (registered in the local hub)")
    p.add_argument("--devices", type=int, metavar="N", help="total devices (groups keep their proportions)")
    p.add_argument("--foreground", action="store_true", help="run in this process until SIGTERM / Ctrl-C")
    add_json_flag(p)
    p.set_defaults(handler=cmd_up)
    p = sub.add_parser("down", help="stop the simulated fleet")
    add_json_flag(p)
    p.set_defaults(handler=cmd_down)
    p = sub.add_parser("status", help="is a simulated fleet running, and its devices' states")
    add_json_flag(p)
    p.set_defaults(handler=cmd_status)


def paths(config: Any) -> tuple[Path, Path, Path]:
    state = config.state_path()
    return state / "sim.pid", state / "sim.log", state / "sim.json"


def load_spec(args: argparse.Namespace, config: Any) -> SimSpec:
    if config.hub.kind != "local":
        raise UsageError('simulated devices report to the embedded local hub: set hub.kind = "local" in the config')
    spec = parse_sim(config.sim)
    spec = spec.scaled(args.devices) if args.devices is not None else spec
    check_memory(spec.total, available_memory())
    return spec


def cmd_up(args: argparse.Namespace, ctx: Any) -> int:
    if ctx.read_only:
        raise UsageError("sim up starts devices that change the hub; drop --read-only to run it")
    spec = load_spec(args, ctx.config)
    pidfile, logfile, statusfile = paths(ctx.config)
    pid = running_pid(pidfile)
    if pid is not None and pid != os.getpid():
        raise Conflict(f"a simulated fleet already runs (pid {pid}, log {logfile}); stop it with "
                       f"{command(ctx.config, 'sim', 'down')}")
    if args.foreground:
        return run_foreground(spec, ctx.config, pidfile, statusfile)
    forget(statusfile)
    child = launch(cli_argv(ctx.config, "sim", "up", "--foreground", "--devices", str(spec.total)), logfile)
    pidfile.write_text(f"{child.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while not statusfile.exists():
        if child.poll() is not None:
            forget(pidfile)
            raise FleetError(f"simulated fleet exited at start: {_last_line(logfile)} (log: {logfile})")
        if time.monotonic() > deadline:
            raise FleetError(f"simulated fleet (pid {child.pid}) not ready after {READY_TIMEOUT:g}s; see {logfile}")
        time.sleep(0.1)
    if args.json:
        print_json({"pid": child.pid, "devices": spec.total, "log": str(logfile)})
    else:
        print(f"simulated fleet of {plural(spec.total, 'device')} started (pid {child.pid}); log: {logfile}")
        print(f"stop it with: {command(ctx.config, 'sim', 'down')}")
    return 0


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run_foreground(spec: SimSpec, config: Any, pidfile: Path, statusfile: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would flood the log
    log = logging.getLogger("fleet_tui.sim")
    pidfile.write_text(f"{os.getpid()}\n")
    hub = LocalHub.from_config(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=_wait_for_stop, args=(loop, stop, log), daemon=True, name="signals").start()
        fleet = SimFleet(spec, hub, config, module=config.hub.module, group_tag=config.hub.group_tag)
        await fleet.start()
        try:
            while not stop.is_set():
                status = {"pid": os.getpid(), "devices": len(fleet.devices), "states": fleet.counts(),
                          "hub": str(hub.path), "updated": time.time()}
                statusfile.write_text(json.dumps(status))
                log.info("devices by state: %s", status["states"])
                try:
                    await asyncio.wait_for(stop.wait(), STATUS_EVERY)
                except asyncio.TimeoutError:
                    pass
        finally:
            log.info("stopping: reporting %d devices offline", len(fleet.devices))
            await fleet.stop()

    # Block the stop signals in every thread (workers inherit the mask) and take them in one
    # thread with sigwaitinfo, so the log can say which process asked the fleet to stop.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        asyncio.run(main())
    finally:
        hub.close()
        if running_pid(pidfile) in (os.getpid(), None):
            forget(pidfile, statusfile)
    log.info("simulated fleet stopped")
    return 0


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _wait_for_stop(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, log: logging.Logger) -> None:
    info = signal.sigwaitinfo(STOP_SIGNALS)
    log.info("%s from pid %d: stopping", signal.Signals(info.si_signo).name, info.si_pid)
    loop.call_soon_threadsafe(stop.set)


def cmd_down(args: argparse.Namespace, ctx: Any) -> int:
    pidfile, logfile, statusfile = paths(ctx.config)
    pid = running_pid(pidfile)
    if pid is None:
        forget(pidfile, statusfile)
        if args.json:
            print_json({"stopped": False, "pid": None})
        else:
            print(f"no simulated fleet is running (no live pidfile in {pidfile.parent})")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        raise FleetError(f"simulated fleet (pid {pid}) did not stop within 30s; see {logfile}")
    forget(pidfile, statusfile)
    if args.json:
        print_json({"stopped": True, "pid": pid})
    else:
        print(f"stopped the simulated fleet (pid {pid}); its devices now show offline")
    return 0


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    pidfile, logfile, statusfile = paths(ctx.config)
    pid = running_pid(pidfile)
    status: dict[str, Any] = {}
    if pid is not None and statusfile.exists():
        try:
            status = json.loads(statusfile.read_text())
        except ValueError:
            status = {}
    out = {"running": pid is not None, "pid": pid, "log": str(logfile),
           "devices": status.get("devices", 0), "states": status.get("states", {})}
    if args.json:
        print_json(out)
    elif pid is None:
        print("no simulated fleet is running; start one with fleet-tui sim up")
    else:
        states = ", ".join(f"{k} {v}" for k, v in sorted(out["states"].items())) or "starting"
        print(f"simulated fleet running (pid {pid}): {out['devices']} devices — {states}; log: {logfile}")
    return 0
