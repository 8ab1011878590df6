"""`fleet-tui log`: who did what across the fleet, newest first — image builds, registry and
deployment prunes, and every rollout's operator actions — each with the OS user (and SSH
client address), the time and what it touched. Read-only; `--json` for scripts."""

from __future__ import annotations

import argparse
import time
from typing import Any

from fleet_tui.commands.output import add_json_flag, print_json
from fleet_tui.errors import UsageError
from fleet_tui.rollout.audit import trail
from fleet_tui.rollout.journal import Journal


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("log", help="who did what: builds, prunes and every rollout's operator actions, newest first")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="show the newest N entries (default 50)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_log)


def cmd_log(args: argparse.Namespace, ctx: Any) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    journal = Journal.for_config(ctx.config)
    try:
        entries = trail(journal, args.limit)
    finally:
        journal.close()
    if args.json:
        print_json({"entries": entries})
        return 0
    if not entries:
        print("nothing done yet: no builds, prunes or rollout actions in the journal")
    for e in entries:
        detail = ", ".join(f"{k} {v}" for k, v in e["detail"].items())
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(e['ts']))}  {e['by']:<20} {e['action']:<18} "
              f"{e['subject']}" + (f"  ({detail})" if detail else ""))
    return 0
