"""Starting a rollout: journal the whole plan, then hand it to an engine — one implementation
for `fleet-tui rollout start` and the console's `R`.

Invariants: nothing touches the hub before the rollout is journalled (create_rollout); a
detached engine runs in a session of its own and survives the terminal, and when it cannot
start, a rollout that never touched the hub is marked aborted (rollout.control.start_detached).
A foreground start returns the id and leaves the running to the caller (the CLI runs the
engine in its terminal, printing each decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fleet_tui.config import Config
from fleet_tui.rollout.control import start_detached
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.policy import Policy


@dataclass(frozen=True)
class Started:
    id: str
    pid: int  # the detached engine's (0: not detached, the caller runs it)


def start_rollout(config: Config, hub: Any, journal: Journal, target: str, group: str, policy: Policy | None = None,
                  *, rebase_onto: str | None = None, auto_rebase: bool = False,
                  confirm_over_budget: Callable[[str], bool] | None = None, detach: bool = True) -> Started:
    """Journal a rollout of TARGET to `group` (the config's `[rollout]` policy unless given)
    and, with `detach`, start its engine in the background."""
    rid = create_rollout(config, hub, journal, target, group, policy or Policy.from_config(config.rollout),
                         rebase=rebase_onto, auto_rebase=auto_rebase, confirm_over_budget=confirm_over_budget)
    return Started(rid, start_detached(config, journal, rid) if detach else 0)
