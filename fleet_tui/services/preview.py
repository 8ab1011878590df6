"""A group's preview: what each device pulls for TARGET (and for a second image to compare,
e.g. the rebased one), and the rollout's own waves priced against its budget.

One implementation for `fleet-tui preview` and the console's Preview screen. Invariants:
- the group is read once for both images, as its distinct device states (one pass over the
  hub's device facts; no twin is built on the local hub), and each image is planned once
  per state, not per device;
- what each device holds besides what it runs comes from the device, or — on a hub whose
  devices cannot say (Azure) — from the journal's model of image garbage collection
  (fleet_tui.rollout.inventory);
- the waves are those `rollout start` would journal (same seeded order, sizes, metered
  devices), priced for what would ship: the compared image when there is one, else TARGET.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import Config
from fleet_tui.errors import FleetError, NotFound
from fleet_tui.fleet.groupplan import GroupPlan, plan_states
from fleet_tui.fleet.sites import SitePlan, plan_sites, site_of
from fleet_tui.fleet.states import GroupStates
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.oci.image import load_image
from fleet_tui.rollout.inventory import read_group_states
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.projection import WaveCost, project_waves
from fleet_tui.rollout.site_plan import warm_caches


@dataclass(frozen=True)
class GroupPreview:
    group: str
    plan: GroupPlan  # TARGET
    compare: GroupPlan | None  # the compared image (None: not asked for, or not found when optional)
    policy: Policy
    budget: int | None  # bytes (None: no budget)
    waves: list[WaveCost]  # priced for `shipped` (a site's devices by its uplink, once)
    states: GroupStates  # the group's distinct device states
    sites: list[SitePlan] = field(default_factory=list)  # TARGET per site
    compare_sites: list[SitePlan] = field(default_factory=list)

    @property
    def shipped_sites(self) -> list[SitePlan]:
        return self.compare_sites if self.compare is not None else self.sites

    @property
    def shipped(self) -> GroupPlan:
        """The plan the waves are priced for: what a rollout of the compared image would move."""
        return self.compare or self.plan


def bytes_of(plan: GroupPlan) -> dict[str, int]:
    """Device id → the bytes its plan pulls."""
    out: dict[str, int] = {}
    for c in plan.cohorts:
        out.update(dict.fromkeys(c.device_ids, c.bytes_per_device))
    return out


def preview_group(config: Config, hub: Any, group: str, target: str, compare: str | None = None, *,
                  policy: Policy | None = None, journal: Journal | None = None,
                  compare_optional: bool = False) -> GroupPreview:
    """Plan TARGET (and `compare`) for every device of `group`, once per distinct device state.
    With `compare_optional`, a compared image that cannot be loaded (not built yet) leaves
    `compare` None instead of failing. An unknown or empty group is a one-line error."""
    states, keeps = read_group_states(config, hub, group_condition(config.hub.group_tag, group), journal)
    if not states.devices:
        names = sorted(g.name for g in hub.group_summaries(config.hub.module) if g.name)
        raise NotFound(f"unknown group {group!r}; known groups: {', '.join(names[:8]) or 'none'}")

    def plan(ref: str) -> GroupPlan:
        return plan_states(load_image(ref, config), states, config, keeps)

    naive = plan(target)
    other = None
    if compare:
        try:
            other = plan(compare)
        except FleetError:
            if not compare_optional:
                raise
    policy = policy or Policy.from_config(config.rollout)
    budget = policy.budget_bytes(config.cost.per_gb, config.cost.currency)
    known = warm_caches(config, journal) if config.sites else {}
    sites = plan_sites(naive, states, config.sites, config.cost.per_gb, known)
    compared = plan_sites(other, states, config.sites, config.cost.per_gb, known) if other is not None else []
    shipped = compared if other is not None else sites
    waves = project_waves(policy, states.device_ids(), states.offline(), bytes_of(other or naive), budget,
                          states.metered(policy.unmetered_links), site_of(states),
                          {s.site: s.billed_bytes for s in shipped})
    return GroupPreview(group, naive, other, policy, budget, waves, states, sites, compared)

