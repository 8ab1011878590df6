"""`fleet-tui deployments [--prune]`: what fleet-tui left on the hub, and cleaning it up.

Lists every deployment (IoT Hub configuration) with what fleet-tui knows of it: its kind
(`group`, `release`, `rollback`, or someone else's), group, image, the devices that use it
(group deployments: one GROUP BY count per group) and whether a live rollout needs it. With
`--prune` it deletes the fleet-tui deployments nothing uses: group deployments no device
carries the image tag of, and release/rollback deployments of rollouts that have ended (a
fold that never finished). Deployments fleet-tui did not create are never touched.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleet_tui.commands.output import add_json_flag, print_json, table
from fleet_tui.errors import UsageError
from fleet_tui.hub import open_hub
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.rollout.audit import record
from fleet_tui.rollout.ending import folded
from fleet_tui.rollout.fold import GROUP, IMAGE, IMAGE_TAG, KIND
from fleet_tui.rollout.gate import tag_name
from fleet_tui.rollout.journal import TERMINAL, Journal
from fleet_tui.units import plural


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "deployments", help="deployments on the hub: which fleet-tui left, which are in use; --prune cleans up",
        description="List the hub's deployments (IoT Hub configurations: at most 100 per hub) with their kind, group, "
                    "image and use. --prune deletes the fleet-tui deployments nothing uses.")
    p.add_argument("--prune", action="store_true", help="delete fleet-tui deployments no device or live rollout uses")
    p.add_argument("--foreign", action="store_true",
                   help="with --prune: also delete release/rollback deployments of rollouts this journal does not know "
                        "(another operator's or state dir's) — only when you know they were abandoned")
    add_json_flag(p)
    p.set_defaults(handler=cmd_deployments)


def _rows(hub: Any, journal: Journal, foreign_unused: bool = False) -> list[dict[str, Any]]:
    """Each deployment with the devices it applies to and whether anything still needs it: a
    group deployment while devices carry its image tag; a release or rollback deployment while
    its rollout runs, or, once it ended, while devices still carry the rollout's tag with its
    key (a rolled-back rollout not folded yet: its rollback deployment holds devices back)."""
    known = {r.id: r for r in journal.list_rollouts()}
    deployments = hub.list_deployments()
    foreign = set() if foreign_unused else {d.labels.get("rollout", "") for d in deployments} - set(known)
    usage: dict[str, dict[str, int]] = {}
    tagged: dict[str, dict[str, int]] = {}  # rollout → devices per value of its tag
    rows = []
    for d in deployments:
        kind = d.labels.get(KIND) or ("release" if d.labels.get("rollout") else "")
        group = d.labels.get(GROUP, "")
        spec = d.modules.get(getattr(hub, "module", ""))
        in_use: int | None = None
        rollout = d.labels.get("rollout", "")
        if kind == "group":
            if group not in usage:
                usage[group] = hub.count_by_tag(group_condition(hub.group_tag, group), IMAGE_TAG)
            in_use = usage[group].get(d.labels.get(IMAGE, ""), 0)
            needed = bool(in_use)
        elif kind in ("release", "rollback") and rollout in known:
            row = known[rollout]
            if folded(journal, rollout):
                needed = False  # the fold kept what devices need as group deployments
            else:
                if rollout not in tagged:
                    tagged[rollout] = hub.count_by_tag(group_condition(hub.group_tag, group), tag_name(rollout))
                in_use = tagged[rollout].get(d.labels.get("key", ""), 0)
                needed = bool(in_use) or row.state not in TERMINAL
        else:
            needed = rollout in foreign if kind in ("release", "rollback") else True
        rows.append({"id": d.id, "kind": kind or "other", "group": group, "priority": d.priority,
                     "image": spec.image if spec else "", "devices": in_use, "rollout": rollout,
                     "fleet_tui": bool(kind), "in_use": needed})
    return rows


def cmd_deployments(args: argparse.Namespace, ctx: Any) -> int:
    if args.prune and ctx.read_only:
        raise UsageError("deployments --prune deletes deployments; drop --read-only to run it")
    hub = open_hub(ctx.config)
    journal = Journal.for_config(ctx.config)
    try:
        if args.foreign and not args.prune:
            raise UsageError("--foreign only widens --prune; add --prune")
        rows = _rows(hub, journal, args.foreign)
        pruned = []
        if args.prune:
            for row in rows:
                if row["fleet_tui"] and not row["in_use"]:
                    hub.delete_deployment(row["id"])
                    pruned.append(row["id"])
            if pruned:

                record(journal, "deployments-prune", "hub", {"deleted": pruned})
    finally:
        journal.close()
        hub.close()
    if args.json:
        print_json({"deployments": rows, "pruned": pruned, "limit": getattr(hub, "max_configurations", None)})
        return 0
    table(["DEPLOYMENT", "KIND", "GROUP", "PRIORITY", "DEVICES", "IN USE"],
          [[r["id"], r["kind"], r["group"] or "-", r["priority"], "-" if r["devices"] is None else r["devices"],
            "yes" if r["in_use"] else "no"] for r in rows], right=(3, 4))
    limit = getattr(hub, "max_configurations", None)
    print(f"{plural(len(rows), 'deployment')}" + (f" of at most {limit}" if limit else "")
          + (f"; deleted {len(pruned)}: {', '.join(pruned)}" if args.prune else
             f"; {sum(1 for r in rows if r['fleet_tui'] and not r['in_use'])} unused fleet-tui deployments (--prune)"))
    return 0
