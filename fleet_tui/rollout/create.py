"""Creating a rollout: resolve the target, rebase when asked, pick waves, plan bytes, journal it.

Everything a rollout will ever do to devices is fixed here, before any hub write: which
device is in which wave, which image variant it gets (the rebased image that fits what it
runs, or the full target image), what it ran before (for rollback) and the bytes its pull
plan predicts. The engine only executes this plan, so a resumed engine cannot drift.

Variants: without rebase there is one, `full` (the digest-pinned target). With
`--rebase-onto REF` devices running REF get the rebased image (`d0`); with `--auto-rebase`
each distinct image the group runs gets its own rebased variant (`d0`, `d1`, …, at most
MAX_VARIANTS). Devices on any other image get `full` and are shown as such. Each variant
is one hub deployment whose target condition selects the group and the variant's value
of the rollout tag `rollout_<id>`.
"""

from __future__ import annotations

import functools
import secrets
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable

from fleet_tui.errors import Conflict, FleetError, NotFound, UsageError
from fleet_tui.fleet.states import GroupStates, StateKey
from fleet_tui.hub.query_literal import group_condition, quote
from fleet_tui.oci.image import DEFAULT_PLATFORM, Image, load_image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.planning.pullplan import plan_for_blobs
from fleet_tui.rebase.multiplatform import prepare_any
from fleet_tui.rollout import shard_waves
from fleet_tui.rollout.budget import Budget
from fleet_tui.rollout.gate import tag_name
from fleet_tui.rollout.inventory import read_group_states
from fleet_tui.rollout.journal import TERMINAL, Assignment, Journal
from fleet_tui.rollout.policy import Policy, order_ranked
from fleet_tui.rollout.site_plan import base_variant, site_variants, upstream_ref, warm_caches, wave_spend
from fleet_tui.rollout.staging import stage_index

MAX_VARIANTS = 8


def new_id() -> str:
    return "r" + secrets.token_hex(4)


def previous_image(key: StateKey) -> tuple[str, str]:
    """(pinned image, digest) the devices of a state run now; the deployed spec wins over the report."""
    if key.desired and (not key.digest or key.desired.endswith(key.digest)):
        return key.desired, key.desired.rsplit("@", 1)[1]
    if key.image and key.digest:
        return parse_reference(key.image).pinned(key.digest), key.digest
    return "", key.digest


def rebase_onto(config: Any, target: Image, onto: Image) -> str | None:
    """The rebased image (auto mode: every difference, so it runs exactly like TARGET; every
    platform of a multi-platform TARGET) as a pinned ref, or None when the rebaser falls back
    to TARGET itself (too little saving)."""
    tag = f"{target.ref.tag or 'rollout'}-on-{onto.deploy_digest.split(':', 1)[1][:12]}"
    with prepare_any(target.deploy_ref, onto.deploy_ref, tag, config, auto=True) as plan:
        result = plan.push()
    if result.refused or result.fallback or not result.ref or result.digest == target.deploy_digest:
        return None
    return str(result.ref)


@dataclass(frozen=True)
class PlannedRollout:
    """Everything a rollout will do, before it is journalled (`rollout start --rehearse` stops here)."""
    id: str
    spec: dict[str, Any]
    sizes: list[int]
    assignments: list[Assignment]
    metered: list[str]
    states: GroupStates  # the group's devices as distinct states (what they run, hold, their link)


def create_rollout(
    config: Any, hub: Any, journal: Journal, target_ref: str, group: str, policy: Policy,
    rebase: str | None = None, auto_rebase: bool = False, rollout_id: str | None = None,
    confirm_over_budget: Callable[[str], bool] | None = None,
) -> str:
    """Journal a new rollout; its id. A plan over the policy's budget starts only when
    `confirm_over_budget(why)` says yes (the CLI asks for the group name, or takes
    --over-budget); the engine then halts before the first wave that would cross it."""
    planned = plan_rollout(config, hub, journal, target_ref, group, policy, rebase, auto_rebase, rollout_id,
                           confirm_over_budget)
    journal.create(planned.id, planned.spec, planned.sizes, planned.assignments, planned.metered)
    return planned.id


def plan_rollout(
    config: Any, hub: Any, journal: Journal, target_ref: str, group: str, policy: Policy,
    rebase: str | None = None, auto_rebase: bool = False, rollout_id: str | None = None,
    confirm_over_budget: Callable[[str], bool] | None = None, check_active: bool = True,
) -> PlannedRollout:
    module, group_tag = config.hub.module, hub.group_tag
    zones = config.rollout.timezones
    if group in zones and policy.timezone == config.rollout.timezone:  # a --timezone flag wins
        policy = replace(policy, timezone=zones[group])
    target = load_image(target_ref, config)
    states, keeps = read_group_states(config, hub, group_condition(group_tag, group), journal)
    if not states.devices:
        raise NotFound(f"group {group!r} has no devices in the hub; see fleet-tui groups")
    for other in journal.list_rollouts() if check_active else ():
        if other.spec.get("group") == group and other.state not in TERMINAL:
            raise Conflict(f"rollout {other.id} is already {other.state} in group {group!r}{journal.held_by(other.id)}; "
                           "finish, abort or roll it back first")

    rid = rollout_id or new_id()
    prev_of = [previous_image(st.key) for st in states.states]  # per state
    images: dict[tuple[str, str], Image | None] = {}

    def have(pinned: str, platform: str = DEFAULT_PLATFORM) -> Image | None:
        if (pinned, platform) not in images:
            try:
                # an image named through a site's cache is read from the upstream registry
                upstream = upstream_ref(pinned, config.sites, target.ref.registry)
                images[(pinned, platform)] = load_image(upstream, config, platform) if pinned else None
            except FleetError:
                images[(pinned, platform)] = None  # not in the registry: the device pulls everything
        return images[(pinned, platform)]

    variants: dict[str, dict[str, Any]] = {
        "full": {"image": target.deploy_ref, "digest": target.deploy_digest, "base": "", "rebased": False}
    }
    bases: dict[str, str] = {}  # base digest → variant key
    if rebase or auto_rebase:
        counts: Counter[str] = Counter()
        for st, (p, _) in zip(states.states, prev_of):
            if p:
                counts[p] += len(st.device_ids)
        onto_refs = [rebase] if rebase else [p for p, _ in counts.most_common(MAX_VARIANTS)]
        for i, onto in enumerate(onto_refs):
            # --rebase-onto names one image: it must exist. Auto mode skips an image the
            # registry lacks; its devices get the full image.
            onto_image = load_image(onto, config) if rebase else have(onto)
            if onto_image is None or onto_image.deploy_digest == target.deploy_digest:
                continue
            rebased_ref = rebase_onto(config, target, onto_image)
            if rebased_ref is None:
                continue
            rebased = load_image(rebased_ref, config)
            key = f"d{i}"
            variants[key] = {"image": rebased.deploy_ref, "digest": rebased.deploy_digest,
                             "base": onto_image.deploy_digest, "rebased": True}
            bases[onto_image.deploy_digest] = key

    # devices that run and hold the same images pull the same bytes: one plan per such cohort
    @functools.cache
    def plan_bytes(variant: str, pinned: str, platform: str, others: tuple[str, ...]) -> int:
        """What this device pulls: its platform of the variant, against its platform of what it
        runs and of the other images it holds."""
        holding = [img for img in (have(p, platform) for p in (pinned, *others) if p) if img is not None]
        blobs = {layer.digest for img in holding for layer in img.layers}
        configs = {img.config_digest for img in holding}
        image = have(variants[variant]["image"], platform)
        if image is None:
            raise FleetError(f"{variants[variant]['image']} cannot be loaded for {platform}")
        return plan_for_blobs(image, blobs, configs, {img.digest for img in holding}).total_bytes

    def rollback_bytes(variant: str, pinned: str, platform: str) -> int:
        """Going back to what it runs now once it runs the variant: nothing while the device keeps
        that image (devices that report a cache; IoT Edge until image garbage collection)."""
        if not pinned or keeps:
            return 0
        return plan_bytes_against(pinned, platform, (variants[variant]["image"],))

    @functools.cache
    def plan_bytes_against(target: str, platform: str, holding_refs: tuple[str, ...]) -> int:
        image = have(target, platform)
        holding = [img for img in (have(p, platform) for p in holding_refs) if img is not None]
        if image is None:
            return 0
        return plan_for_blobs(image, {layer.digest for img in holding for layer in img.layers},
                              {img.config_digest for img in holding}, {img.digest for img in holding}).total_bytes

    metered = states.metered(policy.unmetered_links)
    order = order_ranked([(st.device_ids, states.rank(st, policy.unmetered_links)) for st in states.states],
                         policy.seed)
    sizes = policy.wave_sizes(len(order))
    per_state = []  # (variant, pinned, digest, planned bytes): one plan per state
    for st, (pinned, digest) in zip(states.states, prev_of):
        variant = bases.get(digest, "full")
        per_state.append((variant, pinned, digest, plan_bytes(variant, pinned, st.key.platform, st.key.held)))
    per_state, sites = site_variants(config, states, per_state, variants, have,
                                     warm_caches(config, journal) if config.sites else {})
    waves_by_reason = shard_waves.why_not(hub, policy, {v for v, *_ in per_state}, states.deployments,
                                          [d for d, _ in order], config.hub.shard_tag,
                                          group_condition(group_tag, group), sites, metered)
    canary: list[str] = []
    cuts: list[int] = []
    if not waves_by_reason:  # waves widen one condition over shards: no device write per wave
        order, sizes, canary, cuts = shard_waves.shard_plan(order, sizes)
    assignments, start = [], 0
    for wave, size in enumerate(sizes):
        assignments += [Assignment(d, wave, *per_state[i]) for d, i in order[start:start + size]]
        start += size
    naive_total = rollback_total = 0
    for st, (variant, pinned, _digest, planned) in zip(states.states, per_state):
        n, plain = len(st.device_ids), base_variant(variant)  # `full@depot-3`: `full`, through a site's cache
        naive_total += n * (planned if plain == "full" else plan_bytes("full", pinned, st.key.platform, st.key.held))
        rollback_total += n * rollback_bytes(plain, pinned, st.key.platform)
    prev = {p: d for p, d in prev_of}

    current = Counter(states.deployments)
    deployments = {d.id: d for d in hub.list_deployments()}
    priority = max((deployments[d].priority for d in current if d in deployments), default=0) + 1
    base_dep = deployments.get(current.most_common(1)[0][0]) if current else None
    base_modules = {
        name: {"image": m.image, "create_options": m.create_options, "definition": m.definition}
        for name, m in (base_dep.modules.items() if base_dep else [])
    }
    managed = managed_definition(states)
    room = getattr(hub, "room", None)
    if room is not None:  # Azure: configurations are limited; refuse before creating any
        stages = len({(a.prev_image, a.variant) for a in assignments}) if policy.pre_stage else 0
        per_wave = 0 if waves_by_reason else (len(sizes) - 1) * len({a.variant for a in assignments})
        room(len(variants) + len(rollbacks_of(prev)) + stages + per_wave)
    rollbacks = rollbacks_of(prev)
    spec = {
        "target": target_ref, "target_digest": target.deploy_digest, "group": group, "group_tag": group_tag,
        "module": module, "tag": tag_name(rid), "policy": policy.to_dict(), "priority": priority,
        "variants": variants, "base_modules": base_modules, "rollbacks": rollbacks, "managed": managed,
        "sites": sites,
        "waves_by": "tags" if waves_by_reason else "condition", "waves_by_reason": waves_by_reason,
        "shard_tag": config.hub.shard_tag, "canary": canary, "shard_cuts": cuts,
        "used_variants": sorted({a.variant for a in assignments}),
        "reports_bytes": bool(getattr(hub, "reports_bytes", True)),
        "rebase": "onto" if rebase else ("auto" if auto_rebase else "none"),
        "planned_total": sum(a.planned_bytes for a in assignments),
        # what the same devices would pull of the naive target (the rebase's saving, for the report)
        "naive_total": naive_total,
        "rollback_total": rollback_total,
    }
    if not waves_by_reason and hasattr(hub, "check_condition"):  # the longest conditions, as the hub parses them
        hub.check_condition(shard_waves.wave_condition(spec, len(sizes) - 1))
        if len(sizes) > 1:  # each later wave's own deployment: the longest of their conditions
            hub.check_condition(max((shard_waves.only_wave_condition(spec, k) for k in range(1, len(sizes))), key=len))
    budget = check_budget(config, policy, wave_spend(len(sizes), assignments, variants, sites, config.cost.per_gb), group,
                          confirm_over_budget)
    spec["budget"] = budget.to_dict() if budget is not None else None
    if policy.pre_stage:  # one more wave: the switch of every device (fleet_tui.rollout.staging)
        spec["switch_wave"] = len(sizes)
        spec["stage_index"] = stage_index(a.prev_image for a in assignments)
        sizes = [*sizes, len(assignments)]
    return PlannedRollout(rid, spec, sizes, assignments, sorted(metered), states)


def check_budget(config: Any, policy: Policy, per_wave: list[int], group: str,
                 confirm: Callable[[str], bool] | None) -> Budget | None:
    """The rollout's budget at the configured price (None: no budget); refuses a plan over it
    unless confirmed. `per_wave`: what each wave spends (`site_plan.wave_spend`)."""
    budget = Budget.parse(policy.budget, config.cost.per_gb, config.cost.currency)
    if budget is None:
        return None
    if budget.allows(sum(per_wave)):
        return budget
    fit, total = budget.fitting(per_wave)
    why = (f"the plan costs {budget.money(sum(per_wave))}, over the {budget.money(budget.bytes)} budget of group "
           f"{group!r}: {'waves 1-' + str(fit) if fit > 1 else 'wave 1' if fit == 1 else 'no wave'} fit "
           f"({budget.money(total)}), the rollout would halt before wave {fit + 1}")
    if confirm is None or not confirm(why):
        raise UsageError(f"{why}; raise --budget, or start it anyway with --over-budget")
    return budget


def rollbacks_of(prev: dict[str, str]) -> dict[str, str]:
    """Image a device ran → the key of the deployment that pins it on a rollback."""
    return {p: f"back{i}" for i, p in enumerate(sorted(p for p in prev if p))}


def managed_definition(states: GroupStates) -> dict[str, Any]:
    """The managed module as the group's devices are told to run it now (the definition the
    most of them have): a release changes its image and keeps the rest — env, startupOrder,
    restart and pull policies, createOptions."""
    if not states.definitions:
        return {}
    spec = states.definitions[0][1]
    return {"create_options": spec.create_options, "definition": spec.definition}


def deployment_id(rollout_id: str, key: str) -> str:
    return f"rollout-{rollout_id}-{key}"


def target_condition(spec: dict[str, Any], value: str) -> str:
    return f"{group_condition(spec['group_tag'], spec['group'])} AND tags.{spec['tag']} = {quote(value)}"
