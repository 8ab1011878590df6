"""`fleet-tui hub shards`: how many devices carry their stable shard, and the one-time backfill.

Without `--backfill` it only reads (one projection query per 1000 devices on Azure) and says
what a backfill would write and how long the hub would take for it at its tier's job rate.
`--backfill` writes the missing and wrong shard tags shard by shard, printing progress and an
ETA to stderr; it is resumable: run it again after an interruption and it writes only what is
still missing (hub/shards.py). Refused under `--read-only`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet_tui.commands.output import add_json_flag, print_json
from fleet_tui.errors import UsageError
from fleet_tui.hub import open_hub
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.hub.shards import SHARDS, backfill, census, current_shards
from fleet_tui.units import clock, plural


def register(hub_sub: Any) -> None:
    p = hub_sub.add_parser(
        "shards", help="devices carrying their stable shard tag; --backfill writes the missing ones (once)",
        description="Big rollouts widen one deployment's target condition over shards (00-99, a hash of the "
                    "device id) instead of tagging every device per wave. This shows how many devices carry "
                    "their shard; --backfill writes the missing ones, resumably, at the hub's job rate.")
    p.add_argument("--group", metavar="G", help="only devices of this group")
    p.add_argument("--backfill", action="store_true", help="write the missing or wrong shard tags")
    add_json_flag(p)
    p.set_defaults(handler=cmd_shards)


def _ops_rate(hub: Any) -> float:
    """Device writes per second the hub allows for this (0: as fast as it goes: the local hub)."""
    limits = getattr(hub, "limits", None)
    return float(getattr(limits, "job_device_ops_per_s", 0.0)) if getattr(hub, "tags_by_job", False) else 0.0


def cmd_shards(args: argparse.Namespace, ctx: Any) -> int:
    if args.backfill and ctx.read_only:
        raise UsageError("hub shards --backfill writes device tags; drop --read-only to run it")
    tag = ctx.config.hub.shard_tag
    hub = open_hub(ctx.config)
    try:
        condition = group_condition(hub.group_tag, args.group) if args.group else None
        found = census(current_shards(hub, tag, condition))
        if args.group and not found.devices:
            raise UsageError(f"group {args.group!r} has no devices in the hub; see fleet-tui groups")
        todo = found.to_write
        rate = _ops_rate(hub)
        eta = todo / rate if rate else 0.0
        written = 0
        if args.backfill and todo:
            def progress(done: int, total: int, left: float) -> None:
                tail = f", ETA {clock(left)} at {rate:g} device writes/s" if rate else ""
                print(f"shards: {done:,}/{total:,} devices written{tail}", file=sys.stderr, flush=True)
            written = backfill(hub, tag, found, rate, progress)
    finally:
        hub.close()
    out = {"tag": tag, "devices": found.devices, "right": found.right, "missing": found.missing,
           "wrong": found.wrong, "written": written, "shards": SHARDS,
           "eta_seconds": round(eta, 1), "per_shard": found.per_shard}
    if args.json:
        print_json(out)
        return 0
    print(f"tags.{tag}: {plural(found.devices, 'device')}, {found.right:,} carry their shard, "
          f"{found.missing:,} missing, {found.wrong:,} wrong")
    if written:
        print(f"wrote {plural(written, 'shard tag')}")
    elif todo:
        when = f" (about {clock(eta)} of hub job time)" if rate else ""
        print(f"to write them once: fleet-tui hub shards --backfill{when}")
    return 0
