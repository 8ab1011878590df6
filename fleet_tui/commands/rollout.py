"""`fleet-tui rollout …`: start, status, list, pause/resume/abort/rollback/approve, run.

`start` journals the whole plan (waves, devices, variants, bytes) and then runs the engine
in this terminal, or with `--detach` in a background process of its own session that
survives the terminal. `run ID` is what a detached engine executes (also usable by hand
to drive a rollout in the foreground). Every other subcommand only reads the journal and
the hub, or writes a command row (see fleet_tui.rollout.control). JSON keys follow docs/cli.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from fleet_tui.commands.output import add_json_flag, command, duration_arg, print_json, table
from fleet_tui.commands.rollout_args import policy_from_args, require_writable
from fleet_tui.commands.rollout_views import cmd_log, cmd_rehearse, cmd_report
from fleet_tui.errors import Interrupted, UsageError
from fleet_tui.hub import open_hub
from fleet_tui.rollout.control import (
    engine_pid,
    log_path,
    send_command,
    stop_signal_safe,
)
from fleet_tui.rollout.engine import Engine
from fleet_tui.rollout.journal import COMMANDS, TERMINAL, Journal
from fleet_tui.rollout.notify import Notifier
from fleet_tui.rollout.policy import ON_FAILURE
from fleet_tui.rollout.site_progress import cost_with_sites
from fleet_tui.rollout.snapshot import SnapshotReader
from fleet_tui.services.rollout_start import start_rollout
from fleet_tui.units import money, plural, size


def register(subparsers: Any) -> None:
    root = subparsers.add_parser("rollout", help="staged rollouts that keep running when the terminal goes away")
    sub = root.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)

    p = sub.add_parser("start", help="start a staged rollout of TARGET to a group; prints its id")
    p.add_argument("target", metavar="TARGET", help="image reference (tag or digest)")
    p.add_argument("--group", required=True, metavar="G", help="device group to roll out to (see fleet-tui groups)")
    p.add_argument("--waves", metavar="LIST", help="cumulative wave sizes, counts or %%, growing (default 1,10%%,50%%,100%%)")
    p.add_argument("--partial", action="store_true", default=None,
                   help="allow waves that end short of the whole group (the rest is left untouched)")
    p.add_argument("--detach", action="store_true", help="run the engine in the background and return")
    p.add_argument("--rehearse", action="store_true",
                   help="touch nothing: forecast the rollout wave by wave (duration, bytes, cost, gates at risk) "
                        "on the simulated fleet's model of the group")
    rebase = p.add_mutually_exclusive_group()
    rebase.add_argument("--rebase-onto", metavar="REF", help="ship TARGET's changes as one layer on top of REF")
    rebase.add_argument("--auto-rebase", action="store_true", help="rebase onto each image the group runs")
    p.add_argument("--gate-timeout", type=duration_arg, metavar="DURATION", help="time a wave has to pass its gate (e.g. 10m, 600)")
    p.add_argument("--success", metavar="P%", help="share of a wave that must run the new image (default 95%%)")
    p.add_argument("--max-failed", metavar="N|P%", help="failures tolerated among finished devices")
    p.add_argument("--min-finished", type=int, metavar="N", help="finished devices before --max-failed applies")
    p.add_argument("--bake", type=duration_arg, metavar="DURATION", help="wait after a passed gate (e.g. 5m, 30)")
    p.add_argument("--on-failure", choices=ON_FAILURE, help="what a failed gate does (default halt)")
    p.add_argument("--approve-each", action="store_true", default=None, help="wait for `rollout approve` between waves")
    p.add_argument("--seed", type=int, help="device selection seed")
    p.add_argument("--poll", type=duration_arg, metavar="DURATION", help="engine poll interval (e.g. 1s)")
    pace = p.add_argument_group("pacing (defaults from [rollout] in the config)")
    pace.add_argument("--budget", metavar="MONEY|SIZE",
                      help="most the rollout may spend, e.g. '$50' or '5 GB'; the rollout halts before a wave that would cross it")
    pace.add_argument("--over-budget", action="store_true",
                      help="start even though the plan costs more than the budget (it halts before the crossing wave)")
    pace.add_argument("--rate", type=float, metavar="N", help="devices told to update per minute at most (0: no limit)")
    pace.add_argument("--rate-factor", type=float, metavar="F", help="exponential rate: multiply the rate by F ...")
    pace.add_argument("--rate-every", type=int, metavar="N", help="... each time N more devices succeeded")
    pace.add_argument("--max-downloading", type=int, metavar="N", help="devices updating at once across the group")
    pace.add_argument("--window", action="append", metavar="HH:MM-HH:MM",
                      help="maintenance window (repeatable, e.g. 22:00-05:00): devices are told to update only inside one")
    pace.add_argument("--timezone", metavar="ZONE", help="IANA time zone of the windows (default: the group's, or UTC)")
    pace.add_argument("--pre-stage", action="store_true", default=None,
                      help="waves only download the new image (pull ahead); then every staged device switches at once")
    pace.add_argument("--unmetered-link", action="append", metavar="NAME",
                      help="a link not paid by the byte (repeatable, e.g. wifi): devices reporting it go first")
    pace.add_argument("--metered-window", action="append", metavar="HH:MM-HH:MM",
                      help="devices on other links are told only inside this window (repeatable)")
    pace.add_argument("--retries-download", type=int, metavar="N", help="retry a device whose download failed N times")
    pace.add_argument("--retries-start", type=int, metavar="N", help="retry a device whose module exited on start N times")
    pace.add_argument("--retry-backoff", type=duration_arg, metavar="DURATION", help="wait before the first retry (doubles)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_start)

    p = sub.add_parser("status", help="state of a rollout: waves, devices, bytes, cost")
    p.add_argument("id", metavar="ID", help="rollout id (see rollout list)")
    p.add_argument("--devices", action="store_true", help="list every device")
    add_json_flag(p)
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("log", help="a rollout's whole history: every decision and who took each operator action")
    p.add_argument("id", metavar="ID", help="rollout id (see rollout list)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_log)

    p = sub.add_parser("report", help="the end-of-rollout report: bytes, costs, durations, naive cost avoided, chart")
    p.add_argument("id", metavar="ID", help="rollout id (see rollout list)")
    p.add_argument("--format", choices=("md", "csv", "json"), default="md",
                   help="md: summary, waves, problem devices and an SVG chart; csv: one row per device; json: all")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("list", help="rollouts in the journal, newest first")
    add_json_flag(p)
    p.set_defaults(handler=cmd_list)

    for kind in COMMANDS:
        if kind == "continue":
            p = sub.add_parser(kind, help="continue a halted rollout anyway: past its failed gate or its budget "
                                          "(asks you to type the rollout id)")
            p.add_argument("--yes", metavar="ID", help="confirm without asking by giving the rollout id again")
        elif kind == "rollback":
            p = sub.add_parser(kind, help="put every device the rollout reached back on the image it ran (also after "
                                          "an abort or a halt; asks you to type the rollout id)")
            p.add_argument("--yes", metavar="ID", help="confirm without asking by giving the rollout id again")
        elif kind == "approve":
            p = sub.add_parser(kind, help="start the wave that waits for approval (approve-each rollouts)")
            p.add_argument("--ahead", action="store_true",
                           help="approve the next wave before it waits, so it starts without asking")
        elif kind == "retry":
            p = sub.add_parser(kind, help="try the failed devices of a halted rollout's failed wave again, and reopen its gate")
        else:
            p = sub.add_parser(kind, help=f"{kind} a rollout (works from any terminal)")
        p.add_argument("id", metavar="ID", help="rollout id (see rollout list)")
        add_json_flag(p)
        p.set_defaults(handler=cmd_command, command_kind=kind)

    p = sub.add_parser("run", help="run a rollout's engine in this terminal (what --detach starts)")
    p.add_argument("id", metavar="ID", help="rollout id (see rollout list)")
    p.set_defaults(handler=cmd_run)


def _confirm_over_budget(args: argparse.Namespace) -> Any:
    """--over-budget, or the group's name typed at a terminal."""
    def confirm(why: str) -> bool:
        if args.over_budget:
            return True
        if not sys.stdin.isatty():
            return False
        print(f"{why}.", file=sys.stderr)
        return input(f"type the group name ({args.group}) to start anyway: ").strip() == args.group

    return confirm


CONFIRMED = {"continue": "continuing rollout {id} past a halt", "rollback": "rolling rollout {id} back"}


def _confirm(args: argparse.Namespace) -> None:
    """`continue` and `rollback` move devices: the rollout id typed at a terminal, or `--yes ID`."""
    what = CONFIRMED.get(args.command_kind)
    if what is None or args.yes == args.id:
        return
    if args.yes is not None:
        raise UsageError(f"--yes {args.yes!r} does not name rollout {args.id}; give its id to confirm")
    if not sys.stdin.isatty():
        raise UsageError(f"{what.format(id=args.id)} needs confirmation: add --yes {args.id}")
    if input(f"{what.format(id=args.id)}; type its id to confirm: ").strip() != args.id:
        raise UsageError("not confirmed; nothing changed")


def cmd_start(args: argparse.Namespace, ctx: Any) -> int:
    if args.rehearse:
        return cmd_rehearse(args, ctx)
    require_writable(ctx, "start")
    policy = policy_from_args(args, ctx.config)
    journal = Journal.for_config(ctx.config)
    hub = open_hub(ctx.config)
    try:
        started = start_rollout(ctx.config, hub, journal, args.target, args.group, policy,
                                rebase_onto=args.rebase_onto, auto_rebase=args.auto_rebase,
                                confirm_over_budget=_confirm_over_budget(args), detach=args.detach)
        rid = started.id
        if args.detach:
            if args.json:
                print_json({"id": rid, "pid": started.pid, "log": str(log_path(journal, rid))})
            else:
                print(rid)
            return 0
        if not args.json:
            print(rid, flush=True)
        log = (lambda line: None) if args.json else _echo
        try:
            state = Engine(journal, hub, rid, log=log, notifier=Notifier.from_config(ctx.config, log)).run()
        except KeyboardInterrupt:  # the journal keeps every decision: the rollout waits, nothing is lost
            row = journal.rollout(rid)
            raise Interrupted(f"interrupted: the engine of rollout {rid} stopped with the rollout {row.state}; "
                              f"`{command(ctx.config, 'rollout', 'resume', rid)}` continues it in the background "
                              f"(`rollout start --detach` runs it there from the start)") from None
    finally:
        hub.close()
        journal.close()
    if args.json:
        print_json({"id": rid, "state": state})
    return 0 if state == "succeeded" else 1


def holder_text(holder: dict[str, Any]) -> str:
    """`vm-ops-2 pid 4121 since 14:02`: the engine holding a rollout of a team's journal."""
    return f"{holder['host']} pid {holder['pid']} since {time.strftime('%H:%M', time.localtime(holder['since']))}"


def _echo(line: str) -> None:
    print(line, flush=True)


def cmd_run(args: argparse.Namespace, ctx: Any) -> int:
    stop_signal_safe()
    journal = Journal.for_config(ctx.config)
    hub = open_hub(ctx.config)
    try:
        state = Engine(journal, hub, args.id, notifier=Notifier.from_config(ctx.config, print)).run()
    finally:
        hub.close()
        journal.close()
    return 0 if state in ("succeeded", "paused") else 1


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    journal = Journal.for_config(ctx.config)
    hub = open_hub(ctx.config)
    try:
        snap = SnapshotReader(journal, hub, args.id, ctx.config.cost.per_gb).take()
        pid = engine_pid(journal, args.id)
        actions = journal.actions(args.id)
        holder = journal.holder(args.id)  # a team's journal: which host's engine holds it, since when
    finally:
        hub.close()
        journal.close()
    if args.json:
        print_json({**snap.to_json(), "engine_pid": pid, "actions": actions, "holder": holder})
        return 0
    print(f"rollout {snap.id}: {snap.state}{' — ' + snap.reason if snap.reason else ''}")
    engine = f"pid {pid}" if pid else (f"stopped — `{command(ctx.config, 'rollout', 'resume', snap.id)}` continues it"
                                       if snap.engine == "stopped" else "not running")
    if holder:
        engine = f"on {holder_text(holder)}"
    print(f"  {snap.target} → group {snap.group}; engine {engine}")
    table(["WAVE", "SIZE", "STATE", "RUNNING", "FAILED", "GATE"],
          [[w.index + 1, w.size, w.state, w.done, w.failed, w.verdict] for w in snap.waves], right=(0, 1, 3, 4))
    counts: dict[str, int] = {}
    for d in snap.devices:
        counts[d.state] = counts.get(d.state, 0) + 1
    print("devices: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    per_gb, cur = ctx.config.cost.per_gb, ctx.config.cost.currency
    spent = cost_with_sites(snap.devices, snap.sites, per_gb)
    print(f"bytes: {size(snap.bytes_total)} of {size(snap.bytes_planned)} planned; cost so far {cur}{spent:,.2f}"
          + (" (sites by their uplinks)" if snap.sites else ""))
    for p in snap.sites:
        uplink = f"{size(p.uplink_bytes)} of {size(p.uplink_planned)} over its uplink ({cur}{p.uplink_cost:,.2f})"
        print(f"site {p.site}: cache {p.state}, {p.items_done}/{p.items} items, {uplink}; "
              f"{p.running}/{p.devices} devices running, {size(p.lan_bytes)} over the LAN"
              + (f" — {p.reason}" if p.reason else ""))
    if snap.state == "rolled_back":
        back = snap.count("rolled_back")
        print(f"rolled back: {plural(back, 'device')} back on the image {'it' if back == 1 else 'they'} ran before")
    elif snap.rollback_bytes >= 0:
        print(f"rolling back would cost {size(snap.rollback_bytes)} ({money(snap.rollback_bytes, per_gb, cur)}): "
              + ("devices keep the image they ran" if snap.rollback_bytes == 0 else "devices do not keep what they ran"))
    if snap.budget_bytes >= 0:
        print(f"budget {snap.budget_text}: {money(snap.budget_bytes, per_gb, cur)} ({size(snap.budget_bytes)}); "
              f"planned {money(snap.bytes_planned, per_gb, cur)}, spent so far {money(snap.bytes_total, per_gb, cur)}")
    if snap.pacing:
        print(snap.pacing)
    if args.devices:
        table(["DEVICE", "WAVE", "STATE", "BYTES", "PLANNED", "IMAGE"],
              [[d.id, d.wave + 1, d.state, d.bytes, d.total, "rebased" if d.variant != "full" else "full"] for d in snap.devices],
              right=(1, 3, 4))
    return 0


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    journal = Journal.for_config(ctx.config)
    try:
        rows = journal.list_rollouts()
        waves = {r.id: journal.waves(r.id) for r in rows}
        holders = {r.id: journal.holder(r.id) for r in rows if r.state not in TERMINAL} if journal.shared else {}
    finally:
        journal.close()
    if args.json:
        print_json({"rollouts": [
            {"id": r.id, "state": r.state, "group": r.spec["group"], "target": r.spec["target"], "created": r.created,
             "waves": [{"size": w.size, "state": w.state} for w in waves[r.id]], "holder": holders.get(r.id)}
            for r in rows
        ]})
        return 0
    if not rows:
        print("no rollouts yet (fleet-tui rollout start TARGET --group G)")
        return 0
    heads = ["ID", "STATE", "GROUP", "WAVES PASSED", "TARGET"] + (["ENGINE"] if holders else [])
    table(heads, [[r.id, r.state, r.spec["group"], f"{sum(w.state == 'passed' for w in waves[r.id])}/{len(waves[r.id])}",
                   r.spec["target"]] + ([holder_text(holders[r.id]) if holders.get(r.id) else "-"] if holders else [])
                  for r in rows])
    return 0


def cmd_command(args: argparse.Namespace, ctx: Any) -> int:
    require_writable(ctx, args.command_kind)
    _confirm(args)
    journal = Journal.for_config(ctx.config)
    hub = open_hub(ctx.config)
    try:
        message = send_command(ctx.config, journal, hub, args.id, args.command_kind,
                               ahead=bool(getattr(args, "ahead", False)))
        state = journal.rollout(args.id).state
    finally:
        hub.close()
        journal.close()
    if args.json:
        print_json({"id": args.id, "command": args.command_kind, "state": state, "message": message})
    else:
        print(message)
    return 0
