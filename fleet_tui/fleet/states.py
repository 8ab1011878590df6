"""A group as its distinct device states: devices that run the same image on the same
platform, hold the same other images, report the same link and are online alike need the
same layers and are treated alike by a rollout — so everything is planned once per state
and counted per device.

A 1,000,000-device group typically has tens of states; reading it is one pass over the
hub's device facts (fleet_tui.hub.facts), keeping per device only its id in its state's
list (the local hub groups them in SQL already). Invariants: every device of the group is in
exactly one state; `held` is what the
device reports holding, or the journal's model of it where a hub's devices cannot say
(fleet_tui.rollout.inventory gives it as a device → images map).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from fleet_tui.hub.facts import FactGroup
from fleet_tui.hub.protocol import ModuleSpec


@dataclass(frozen=True)
class StateKey:
    image: str  # the reference the module reportedly runs ("" when it reports nothing)
    digest: str  # its manifest digest ("" when unknown)
    held: tuple[str, ...]  # other images the devices hold (pinned refs)
    platform: str
    link: str
    online: bool
    desired: str = ""  # the pinned image the hub deploys to them ("" when none)
    site: str = ""  # the `[sites.NAME]` they are at ("" = no site: each pulls over its own link)


@dataclass
class DeviceState:
    key: StateKey
    device_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GroupStates:
    states: list[DeviceState]  # largest first
    deployments: dict[str, int] = field(default_factory=dict)  # deployment id → devices it applies to
    definitions: list[tuple[int, ModuleSpec]] = field(default_factory=list)  # managed module as told, most first

    @property
    def devices(self) -> int:
        return sum(len(s.device_ids) for s in self.states)

    def device_ids(self) -> list[str]:
        return [d for s in self.states for d in s.device_ids]

    def offline(self) -> set[str]:
        return {d for s in self.states if not s.key.online for d in s.device_ids}

    @staticmethod
    def rank(state: DeviceState, unmetered_links: Sequence[str]) -> int:
        """Where a rollout orders the state's devices: online ones first, then — when some links
        are unmetered — those on them (fleet_tui.rollout.policy.order_devices): offline 2 + metered 1."""
        metered = bool(unmetered_links) and state.key.link not in unmetered_links
        return (0 if state.key.online else 2) + (1 if metered else 0)

    def metered(self, unmetered_links: Iterable[str]) -> set[str]:
        """Devices whose link is not one of `unmetered_links` (a device that reports no link
        counts as metered); none when no link is unmetered (the policy ignores links)."""
        names = set(unmetered_links)
        if not names:
            return set()
        return {d for s in self.states if s.key.link not in names for d in s.device_ids}


def group_states(groups: Iterable[FactGroup], held: dict[str, tuple[str, ...]] | None = None,
                 sites: Mapping[str, Any] | None = None) -> GroupStates:
    """The states of the devices in `groups` (fleet_tui.hub.facts.fact_groups). `held`: device
    → the images it holds (the modelled cache); None takes what each device reports. `sites`:
    the configured sites (`[sites.NAME]`): a device is at the site its `devices` list names, else
    at the one its site tag names; a tag naming no configured site is no site."""
    listed = {d: name for name, site in (sites or {}).items() for d in site.devices}
    known = set(sites or ())
    by_key: dict[tuple, DeviceState] = {}
    deployments: dict[str, int] = {}
    definitions: dict[str, list] = {}  # the managed module as devices are told to run it, by content
    for facts, ids in groups:
        spec = facts.desired
        desired = spec.image if spec is not None and "@sha256:" in spec.image else ""
        tagged = facts.site if facts.site in known else ""
        if held is None and not listed:
            split = {(facts.cached, tagged): ids}
        else:
            split = {}
            for d in ids:
                split.setdefault((facts.cached if held is None else held.get(d, ()), listed.get(d, tagged)), []).append(d)
        for (others, site), members in split.items():
            raw = (facts.image, facts.digest, others, facts.platform, facts.link, facts.connected, desired, site)
            state = by_key.get(raw)
            if state is None:
                state = by_key[raw] = DeviceState(StateKey(*raw))
            state.device_ids.extend(members)
        if facts.deployment_id:
            deployments[facts.deployment_id] = deployments.get(facts.deployment_id, 0) + len(ids)
        if spec is not None:
            entry = definitions.setdefault(json.dumps([spec.create_options, spec.definition], sort_keys=True), [0, spec])
            entry[0] += len(ids)
    ranked = sorted(((n, spec) for n, spec in definitions.values()), key=lambda e: -e[0])
    return GroupStates(sorted(by_key.values(), key=lambda s: -len(s.device_ids)), deployments, ranked)
