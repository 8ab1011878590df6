"""Waves as target conditions: on a hub where every device write costs (Azure), a wave widens
one deployment's `targetCondition` over stable shards (hub/shards.py) instead of tagging its
devices, so a rollout costs configuration calls per wave, not device writes per device.

- The canary is named by `deviceId` (at most `MAX_CANARY_IDS`; a larger first wave is shards
  too); each later wave is one more deployment of the same content and priority over its own
  shards (from the previous cut to its own, canary devices excepted), so the hub's metrics of
  a wave's deployment are that wave's (gates read them: rollout/metric_gate.py); together
  they cover "the canary, or a shard below cut k" (`wave_condition`, what a rollback and an
  aborted fold scope to). Cuts come from
  the policy's cumulative wave sizes as a fraction of the group, rounded up to whole shards, so
  wave sizes are what the hash gives (±) and the plan lists each device's wave exactly.
- A condition uses only what a target condition accepts (IoT Hub automatic device management:
  `deviceId`, `tags.*`; `=`; `AND`/`OR`; no `IN` — the hub answers 400
  InvalidConfigurationTargetCondition, Azure/azure-iot-cli-extension#347), with quoted
  literals from `query_literal.quote`; the largest one is checked by the hub
  (`POST /configurations/testQueries`) before the rollout is created.
- Eligible when the hub asks for it (`waves_by_condition`), every device carries its shard, one
  variant and one current deployment serve the whole group (the variant needs no per-device
  tag, and a rollback's devices fall back under a condition), and nothing paces single devices
  (rate, max downloading, metered links, sites, pre-staging). Otherwise the rollout tags
  devices per wave as before, and `why_not` says why in the plan.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

from fleet_tui.hub.query_literal import group_condition, quote
from fleet_tui.hub.shards import SHARDS, shard_of

MAX_CANARY_IDS = 20


def why_not(hub: Any, policy: Any, variants_used: set[str], deployments: dict[str, int], device_ids: Sequence[str],
            shard_tag: str, group_condition_text: str, sites: dict[str, Any], metered: set[str]) -> str:
    """"" when the rollout can run its waves as target conditions; else the reason it cannot."""
    if not getattr(hub, "waves_by_condition", False):
        return "this hub tags devices per wave"
    reasons = [
        (len(variants_used) > 1, f"{len(variants_used)} variants need a per-device tag"),
        (len(deployments) != 1, "the group's devices do not all run one deployment"),
        (bool(policy.rate or policy.max_downloading), "--rate / --max-downloading pace single devices"),
        (bool(policy.pre_stage), "pre-staging tags stage keys per device"),
        (bool(sites), "site devices wait for their cache one by one"),
        (bool(metered and policy.metered_windows), "metered devices wait for their windows"),
    ]
    for failed, reason in reasons:
        if failed:
            return reason
    counts = hub.count_by_tag(group_condition_text, shard_tag)
    expected = Counter(shard_of(d) for d in device_ids)
    if counts != expected:
        lacking = len(device_ids) - sum(min(counts.get(s, 0), n) for s, n in expected.items())
        return (f"{lacking:,} device(s) lack their shard tag (tags.{shard_tag}); write them once with "
                "fleet-tui hub shards --backfill")
    return ""


def shard_plan(order: list[tuple[str, int]], sizes: list[int]) -> tuple[list[tuple[str, int]], list[int], list[str],
                                                                       list[int]]:
    """(order, wave sizes, canary ids, cumulative shard cut per wave) for devices in rank order
    `order` ((device id, state index)) and the policy's wave sizes; waves left empty by the
    rounding to shards are dropped."""
    n = sum(sizes)
    chosen = order[:n]  # a partial rollout leaves the rest out, as by tags
    canary = [d for d, _ in chosen[:sizes[0]]] if len(sizes) > 1 and sizes[0] <= MAX_CANARY_IDS else []
    cuts, done = [], 0
    for k, size in enumerate(sizes):
        done += size
        cuts.append(0 if (k == 0 and canary) else (SHARDS if done >= len(order) else math.ceil(SHARDS * done / len(order))))
    in_canary = set(canary)
    waves: list[list[tuple[str, int]]] = [[] for _ in sizes]
    waves[0] = [(d, i) for d, i in chosen if d in in_canary]
    for device_id, i in (o for o in order if o[0] not in in_canary):
        shard = int(shard_of(device_id))
        k = next((k for k, cut in enumerate(cuts) if shard < cut), None)
        if k is not None:
            waves[k].append((device_id, i))
    kept = [k for k, w in enumerate(waves) if w]
    return [o for k in kept for o in waves[k]], [len(waves[k]) for k in kept], canary, [cuts[k] for k in kept]


def wave_condition(spec: dict[str, Any], wave: int) -> str:
    """What the rollout's deployment targets once wave `wave` started: the group, and the canary
    or a shard below the wave's cut (cumulative)."""
    tag = spec["shard_tag"]
    terms = [f"deviceId = {quote(d)}" for d in spec["canary"]]
    terms += [f"tags.{tag} = '{s:02d}'" for s in range(int(spec["shard_cuts"][wave]))]
    return f"{group_condition(spec['group_tag'], spec['group'])} AND ({' OR '.join(terms)})"


def wave_key(variant: str, wave: int) -> str:
    """The deployment key of a variant's wave: the variant's own for wave 1 (the release the
    fold keeps), `<variant>-w<k>` after it — one deployment per wave, so the hub's metrics of
    each are that wave's alone."""
    return variant if wave == 0 else f"{variant}-w{wave}"


def wave_keys(spec: dict[str, Any], waves: Sequence[int] | None = None) -> list[str]:
    """Every per-wave deployment key of the rollout (of `waves` only, when given)."""
    count = len(spec.get("shard_cuts") or [])
    return [wave_key(v, k) for k in (range(count) if waves is None else waves) for v in spec["used_variants"]]


def only_wave_condition(spec: dict[str, Any], wave: int) -> str:
    """The devices of wave `wave` alone: the canary by deviceId (wave 1), or the shards from the
    previous cut up to this one, canary devices excepted (they are wave 1's)."""
    tag, cuts = spec["shard_tag"], [int(c) for c in spec["shard_cuts"]]
    low = cuts[wave - 1] if wave > 0 else 0
    group = group_condition(spec["group_tag"], spec["group"])
    if wave == 0 and spec["canary"]:
        return f"{group} AND ({' OR '.join(f'deviceId = {quote(d)}' for d in spec['canary'])})"
    shards = " OR ".join(f"tags.{tag} = '{s:02d}'" for s in range(low, cuts[wave]))
    spared = "".join(f" AND deviceId != {quote(d)}" for d in spec["canary"])
    return f"{group} AND ({shards}){spared}"


def by_condition(spec: dict[str, Any]) -> bool:
    return spec.get("waves_by") == "condition"
