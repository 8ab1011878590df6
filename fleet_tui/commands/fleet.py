"""Fleet subcommands: `groups`, `devices` (docs/cli.md) and `hub seed` (fill a local hub).

They work on whichever hub the config names (`open_hub`): the embedded local hub by
default, Azure IoT Hub when `hub.kind = "azure"`. JSON keys follow docs/cli.md; extra keys
(`online`, `offline`, `last_seen`, `digest`) are additive. An unknown group is one
error line listing the groups that do exist.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import humanize

from fleet_tui.commands import shards
from fleet_tui.commands.output import add_json_flag, print_json, table
from fleet_tui.errors import NotFound, UsageError
from fleet_tui.hub import open_hub
from fleet_tui.hub.listing import ListedDevice, ListQuery, stream
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import DEVICE_STATES, ModuleReport
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.units import plural

KNOWN_SHOWN = 8  # groups named in an "unknown group" error


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("groups", help="device groups with counts and the images they run")
    add_json_flag(p)
    p.set_defaults(handler=cmd_groups)

    p = subparsers.add_parser("devices", help="devices with current image, state and last seen")
    p.add_argument("--group", metavar="G", help="only devices of this group")
    p.add_argument("--state", metavar="S", help=f"only devices in this state: {', '.join(DEVICE_STATES)}")
    add_json_flag(p)
    p.set_defaults(handler=cmd_devices)

    hub = subparsers.add_parser("hub", help="hub maintenance: seed a demo fleet, stable shard tags")
    hub_sub = hub.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    p = hub_sub.add_parser("seed", help="register N devices in groups, reporting IMAGE as running")
    p.add_argument("--devices", type=int, required=True, metavar="N", help="how many devices to register")
    p.add_argument("--groups", required=True, metavar="A,B,…", help="devices are spread round-robin")
    p.add_argument("--image", required=True, metavar="REF", help="what they run: repo@sha256:…")
    p.add_argument("--prefix", default="dev-", help="device id prefix (default dev-)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_seed)
    shards.register(hub_sub)


def short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def last_seen_text(ts: float, now: float) -> str:
    return humanize.naturaltime(now - ts) if ts else "never"


def iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def _check_group(names: list[str], group: str) -> None:
    if group in names:
        return
    known = [n for n in names if n]
    shown = ", ".join(known[:KNOWN_SHOWN]) + (f" (and {len(known) - KNOWN_SHOWN} more)" if len(known) > KNOWN_SHOWN else "")
    raise NotFound(f"unknown group {group!r}; known groups: {shown or 'none (the hub has no devices)'}")


def cmd_groups(args: argparse.Namespace, ctx: Any) -> int:
    module = ctx.config.hub.module
    hub = open_hub(ctx.config)
    try:
        groups = hub.group_summaries(module)
    finally:
        hub.close()
    if args.json:
        print_json(
            {
                "groups": [
                    {"name": g.name, "devices": g.devices, "images": g.images, "online": g.online, "offline": g.offline}
                    for g in groups
                ]
            }
        )
        return 0
    if not groups:
        print("no devices in the hub yet (fleet-tui hub seed, or start a simulated fleet with fleet-tui sim up)")
        return 0

    def images(g: Any) -> str:
        top = sorted(g.images.items(), key=lambda kv: (-kv[1], kv[0]))
        text = ", ".join(f"{short_digest(d)} ×{n}" for d, n in top[:3])
        unknown = g.devices - sum(g.images.values())
        extra = [f"+{len(top) - 3} more"] if len(top) > 3 else []
        extra += [f"{unknown} not reporting"] if unknown else []
        return ", ".join([text] + extra if text else extra)

    def count(n: int | None) -> str:
        return "-" if n is None else str(n)  # None: the hub cannot count it per group (Azure)

    rows = [[g.name or "(no group)", g.devices, count(g.online), count(g.offline), images(g)] for g in groups]
    table(["GROUP", "DEVICES", "ONLINE", "OFFLINE", f"IMAGES ({module})"], rows, right=(1, 2, 3))
    return 0


def cmd_devices(args: argparse.Namespace, ctx: Any) -> int:
    module, group_tag = ctx.config.hub.module, ctx.config.hub.group_tag
    if args.state is not None and args.state not in DEVICE_STATES:
        raise UsageError(f"unknown device state {args.state!r}; use one of {', '.join(DEVICE_STATES)}")
    hub = open_hub(ctx.config)
    try:
        condition = ""
        if args.group is not None:
            _check_group([g.name for g in hub.group_summaries(module)], args.group)
            condition = group_condition(group_tag, args.group)
        devices = stream(hub, ListQuery(condition, state=args.state or ""), module)
        if args.json:
            _stream_json(devices)
            return 0
        now = time.time()
        rows = [[d.id, d.group or "-", short_digest(d.digest), d.state, last_seen_text(d.last_seen, now)]
                for d in devices]
    finally:
        hub.close()
    table(["DEVICE", "GROUP", f"IMAGE ({module})", "STATE", "LAST SEEN"], rows)
    print(f"{len(rows)} device{'s' if len(rows) != 1 else ''}")
    return 0


def _stream_json(devices: Iterable[ListedDevice]) -> None:
    """`{"devices": [...]}` written as the hub pages it, one device per line: the first
    lines of a 1,000,000-device group come at once and nothing is held."""
    out = sys.stdout
    out.write('{\n  "devices": [')
    sep = "\n    "
    for d in devices:
        out.write(sep + json.dumps({"id": d.id, "group": d.group, "image": d.image, "state": d.state,
                                    "last_seen": iso(d.last_seen), "digest": d.digest}))
        sep = ",\n    "
    out.write("\n  ]\n}\n")


def cmd_seed(args: argparse.Namespace, ctx: Any) -> int:
    if ctx.read_only:
        raise UsageError("hub seed changes the hub; drop --read-only to run it")
    if ctx.config.hub.kind != "local":
        raise UsageError("hub seed fills the embedded local hub only; set hub.kind = \"local\" in the config")
    if args.devices < 1:
        raise UsageError(f"--devices must be at least 1, not {args.devices}")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    if not groups:
        raise UsageError("--groups needs at least one group name, e.g. --groups vans,trucks")
    digest = args.image.rsplit("@", 1)[1] if "@sha256:" in args.image else ""
    if not digest:
        raise UsageError(f"--image {args.image!r} is not digest-pinned: give repo@sha256:…")

    hub = LocalHub.from_config(ctx.config)
    try:
        module, tag = ctx.config.hub.module, ctx.config.hub.group_tag
        ids = [f"{args.prefix}{i:06d}" for i in range(args.devices)]
        new = hub.register_devices((d, {tag: groups[i % len(groups)]}) for i, d in enumerate(ids))
        report = {module: ModuleReport(module, args.image, digest, "running")}
        hub.report_many((d, report, True) for d in ids)
    finally:
        hub.close()
    if args.json:
        print_json({"devices": len(ids), "new": new, "hub": str(hub.path)})
    else:
        print(f"seeded {plural(len(ids), 'device')} ({new} new) in {plural(len(groups), 'group')} into {hub.path}")
    return 0
