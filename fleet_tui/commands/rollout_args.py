"""What `rollout start` and its `--rehearse` share: the policy built from the config's
`[rollout]` section and the flags, and the read-only guard of every rollout subcommand
that changes the fleet. A flag left out keeps the config's value (`None` overrides nothing).
"""

from __future__ import annotations

import argparse

from fleet_tui.commands.context import Context
from fleet_tui.config import Config
from fleet_tui.errors import UsageError
from fleet_tui.rollout.policy import Policy


def policy_from_args(args: argparse.Namespace, config: Config) -> Policy:
    return Policy.from_config(config.rollout).with_overrides(
        waves=args.waves, gate_timeout=args.gate_timeout, success=args.success, max_failed=args.max_failed,
        min_finished=args.min_finished, bake=args.bake, on_failure=args.on_failure,
        approve_each=args.approve_each, seed=args.seed, poll=args.poll, partial=args.partial,
        budget=args.budget, rate=args.rate, rate_factor=args.rate_factor, rate_every=args.rate_every,
        max_downloading=args.max_downloading, windows=tuple(args.window) if args.window else None,
        timezone=args.timezone, retries_download=args.retries_download, retries_start=args.retries_start,
        retry_backoff=args.retry_backoff,
        unmetered_links=tuple(args.unmetered_link) if args.unmetered_link else None,
        metered_windows=tuple(args.metered_window) if args.metered_window else None, pre_stage=args.pre_stage,
    )


def require_writable(ctx: Context, what: str) -> None:
    if ctx.read_only:
        raise UsageError(f"rollout {what} changes the fleet; drop --read-only to run it")
