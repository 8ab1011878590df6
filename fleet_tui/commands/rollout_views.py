"""`fleet-tui rollout log|report` and `rollout start --rehearse`: reading a rollout's history,
its end-of-rollout report, and a forecast of one that has not started. All read-only (a
rehearsal with a rebase flag pushes the rebased image, as planning needs it).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from fleet_tui.commands.output import print_json, table
from fleet_tui.commands.rollout_args import policy_from_args, require_writable
from fleet_tui.hub import open_hub
from fleet_tui.rollout.event_text import EventText
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.rehearsal import rehearse
from fleet_tui.rollout.report import build_report
from fleet_tui.rollout.snapshot import SnapshotReader
from fleet_tui.units import clock, money, size


def cmd_log(args: argparse.Namespace, ctx: Any) -> int:
    journal = Journal.for_config(ctx.config)
    try:
        row = journal.rollout(args.id)
        events = journal.events(args.id)
        shown = EventText(Policy.from_dict(row.spec["policy"]), journal.assignments(args.id)).lines(
            events, journal.waves(args.id))
        actions = journal.actions(args.id, events)
    finally:
        journal.close()
    if args.json:
        print_json({"id": args.id, "events": [{"ts": ts, "text": text} for ts, text in shown], "actions": actions})
        return 0
    for ts, text in shown:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ts))}  {text}")
    return 0


def cmd_report(args: argparse.Namespace, ctx: Any) -> int:
    cfg = ctx.config
    journal = Journal.for_config(cfg)
    hub = open_hub(cfg)
    try:
        report = build_report(journal, SnapshotReader(journal, hub, args.id, cfg.cost.per_gb).take(),
                              cfg.cost.per_gb, cfg.cost.currency)
    finally:
        hub.close()
        journal.close()
    if args.format == "json":
        print_json(report.to_json())
    else:
        sys.stdout.write(report.to_csv() if args.format == "csv" else report.to_markdown())
    return 0


def cmd_rehearse(args: argparse.Namespace, ctx: Any) -> int:
    if args.rebase_onto or args.auto_rebase:
        require_writable(ctx, "start --rehearse with a rebase (it pushes the rebased image)")
    cfg = ctx.config
    journal = Journal.for_config(cfg)
    hub = open_hub(cfg)
    try:
        r = rehearse(cfg, hub, journal, args.target, args.group, policy_from_args(args, cfg), args.rebase_onto, args.auto_rebase)
    finally:
        hub.close()
        journal.close()
    per_gb, cur = cfg.cost.per_gb, cfg.cost.currency
    if args.json:
        print_json({"rehearsal": True, "group": args.group, "target": r.rollout.spec["target"],
                    "waves": [w.to_json(per_gb) for w in r.waves], "seconds": round(r.seconds, 1), "bytes": r.bytes,
                    "cost": round(r.bytes / 1e9 * per_gb, 2), "model": r.model})
        return 0
    print(f"rehearsal of {r.rollout.spec['target']} → group {args.group} (nothing was changed)")
    table(["WAVE", "DEVICES", "BYTES", "COST", "START", "END", "VERDICT", "RISKS"],
          [[w.index + 1, w.size, size(w.bytes), money(w.bytes, per_gb, cur), clock(w.start), clock(w.end), w.verdict,
            "; ".join(w.risks) or "-"] for w in r.waves], right=(0, 1, 2, 3, 4, 5))
    print(f"predicted: {clock(r.seconds)}, {size(r.bytes)}, {money(r.bytes, per_gb, cur)}")
    print(f"model: {r.model}")
    return 0

