"""`fleet-tui preview TARGET --group G`: per-device pull plan for a group, bytes and cost.

With `--compare REF` (e.g. the rebased image) both images are planned side by side and the
saving is printed — the question an operator asks before every release. Planning is per
distinct device state (fleet_tui.services.preview); `--json` streams (preview_json).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet_tui.commands.output import add_json_flag, table
from fleet_tui.commands.preview_json import write_preview
from fleet_tui.fleet.groupplan import GroupPlan
from fleet_tui.hub import open_hub
from fleet_tui.oci.digest import short
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.projection import WaveCost
from fleet_tui.services.preview import GroupPreview, preview_group
from fleet_tui.terminal_text import raw_stream
from fleet_tui.units import money, plural, size


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "preview", help="per-device pull plan of TARGET for a group: layers, bytes, cost",
        description="What each device of a group downloads to run TARGET, given the image it runs now: "
        "layers it lacks (by compressed digest), manifest and config; totals and cost.",
    )
    p.add_argument("target", metavar="TARGET", help="image reference (tag or digest) the group would run")
    p.add_argument("--group", required=True, metavar="G", help="device group to plan for (see fleet-tui groups)")
    p.add_argument("--compare", metavar="REF", help="also plan REF (e.g. the rebased image) and show the saving")
    p.add_argument("--waves", metavar="LIST", help="waves to project costs for (default: [rollout] waves)")
    p.add_argument("--budget", metavar="MONEY|SIZE", help="budget to hold the waves against (default: [rollout] budget)")
    p.add_argument("--by", choices=("device", "state"), default="device",
                   help="--json lists every device (default), or each distinct device state once with its "
                        "count (the table is always by state)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_preview)


def cmd_preview(args: argparse.Namespace, ctx: Any) -> int:
    cfg = ctx.config
    policy = Policy.from_config(cfg.rollout).with_overrides(waves=args.waves, budget=args.budget)
    hub = open_hub(cfg)
    try:
        p = preview_group(cfg, hub, args.group, args.target, args.compare, policy=policy)
    finally:
        hub.close()
    plan, other, waves, budget = p.plan, p.compare, p.waves, p.budget
    price = lambda n: money(n, cfg.cost.per_gb, cfg.cost.currency)  # noqa: E731
    if args.json:
        extra = {"group": args.group, "waves": [w.to_json(cfg.cost.per_gb) for w in waves],
                 "budget": {"bytes": budget, "text": policy.budget} if budget is not None else None}
        if cfg.sites:
            extra["sites"] = [s.to_json(cfg.cost.currency) for s in p.sites]
            extra["compare_sites"] = [s.to_json(cfg.cost.currency) for s in p.compare_sites]
        write_preview(raw_stream(sys.stdout), plan, other, extra, cfg.cost.per_gb, cfg.cost.currency,
                      args.by == "state")
        return 0
    _print(plan, price)
    if other is not None:
        print()
        _print(other, price)
        n = plan.devices
        print(f"\n{size(plan.total_bytes // max(n, 1))} → {size(other.total_bytes // max(n, 1))} per device, "
              f"{price(plan.total_bytes)} → {price(other.total_bytes)} for {plural(n, 'device')}")
    if p.sites:
        _print_sites(p, cfg.cost.currency, args.compare, plan.total_bytes, cfg.cost.per_gb)
    _print_waves(waves, budget, policy, price, args.compare if other is not None else args.target)
    return 0


def _print_sites(p: GroupPreview, currency: str, compare: str | None, total: int, per_gb: float) -> None:
    """Per site: its uplink (once per blob through the cache) beside what its LAN carries; then
    the group's cost with its sites (the table above prices every device over its own link)."""
    print("\nby site (what crosses each uplink" + (f"; {compare} beside it" if compare else "") + "):")
    rebased = {s.site: s for s in p.compare_sites}
    rows = []
    for s in p.sites:
        r = rebased.get(s.site)
        cell = lambda x: f"{size(x.uplink_bytes)} {money(x.billed_bytes, x.per_gb, currency)}"  # noqa: E731
        rows.append((s.site, s.devices, s.cache, cell(s), cell(r) if r else "-", size(s.lan_bytes),
                     size(s.overhead) if s.overhead else "-"))
    heads = ["SITE", "DEVICES", "CACHE", "UPLINK", "UPLINK COMPARED", "LAN", "WARM-UP EXTRA"]
    if not compare:
        heads.pop(4)
        rows = [r[:4] + r[5:] for r in rows]
    table(heads, rows, right=(1,))
    cached = [s for s in p.sites if s.kind != "none"]
    own = max(0, total - sum(s.lan_bytes for s in cached))
    cost = own / 1e9 * per_gb + sum(s.uplink_cost for s in cached)
    print(f"with its sites: {currency}{cost:,.2f} in all ({size(sum(s.uplink_bytes for s in cached))} over "
          f"{plural(len(cached), 'site uplink')}, {size(own)} over devices' own links)")


def _print_waves(waves: list[WaveCost], budget: int | None, policy: Policy, price: Any, which: str) -> None:
    print(f"\nby wave ({','.join(policy.waves)}) for {which}"
          + (f", against the {policy.budget} budget ({price(budget)}):" if budget is not None else ":"))
    table(["WAVE", "DEVICES", "BYTES", "COST", "SO FAR", "BUDGET"],
          [(w.index + 1, w.size, size(w.bytes), price(w.bytes), price(w.cumulative),
            "-" if budget is None else ("fits" if w.within_budget else "HALTS before")) for w in waves],
          right=(0, 1, 2, 3, 4))


def _print(plan: GroupPlan, price: Any) -> None:
    print(f"{plan.target}  {plan.target_digest}")
    rows = []
    for c in plan.cohorts:
        pulls = [f"{short(l.digest)} {size(l.size)}" for l in c.plan.layers if l.needed] if c.bytes_per_device else []
        rows.append((short(c.digest) or "unknown", len(c.device_ids), size(c.bytes_per_device),
                     price(c.bytes_total), ", ".join(pulls) or "nothing"))
    table(["RUNS NOW", "DEVICES", "PER DEVICE", "COST", "LAYERS TO PULL"], rows, right=(1, 2, 3))
    print(f"total {size(plan.total_bytes)} for {plural(plan.devices, 'device')}, {price(plan.total_bytes)}")
    per = {c.rollback_per_device for c in plan.cohorts if c.bytes_per_device}
    if per:
        each = size(next(iter(per))) if len(per) == 1 else f"{size(min(per))}-{size(max(per))}"
        print(f"rolling back after it: {each} per device (the image each runs now stays cached), "
              f"{size(plan.rollback_bytes)} in all, {price(plan.rollback_bytes)}")
