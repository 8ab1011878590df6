"""Per-device pull plans for a group, planned per distinct device state (fleet_tui.fleet.states):
states are grouped into cohorts by the image they run, the other images they hold
(`ModuleReport.cached`; fleet_tui.rollout.inventory models them where devices cannot say) and
their platform.

One image load and one plan per cohort — a 1,000,000-device group typically has a handful —
then every device of a cohort shares that plan: the work grows with the states, and only the
lists of device ids with the devices. A multi-platform target
is planned per platform: an arm64 device pulls the index, the arm64 manifest, config and the
arm64 layers it lacks. A device whose running
image cannot be found (reports nothing, or an image the registry no longer has) is planned
as pulling the full target image, and marked `known = False`.

Rollback cost: what a device of the cohort pulls to go back to what it runs now once it runs
the target — the image it ran stays held (dockerd keeps it; on IoT Edge until image garbage
collection), so only its manifest; `keeps_previous=False` models a device that keeps nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
from fleet_tui.fleet.states import GroupStates, group_states
from fleet_tui.hub.facts import facts_of, group_facts
from fleet_tui.hub.protocol import DEFAULT_PLATFORM, DeviceTwin
from fleet_tui.oci.image import Image, load_image
from fleet_tui.planning.pullplan import PullPlan, plan_pull


@dataclass(frozen=True)
class Cohort:
    digest: str  # what these devices run ("" when unknown)
    image: str  # the pinned reference they run, when known
    device_ids: tuple[str, ...]
    plan: PullPlan
    known: bool
    platform: str = DEFAULT_PLATFORM
    target_digest: str = ""  # what the target is deployed as (the index digest when multi-platform)
    held: tuple[str, ...] = ()  # other images these devices hold (counted in `plan`)
    rollback: PullPlan | None = None  # going back to `image` after running the target

    @property
    def rollback_per_device(self) -> int:
        if self.bytes_per_device == 0:
            return 0  # runs the target already: nothing to go back from
        return self.rollback.total_bytes if self.rollback is not None else 0

    @property
    def bytes_per_device(self) -> int:
        return 0 if self.digest in (self.plan.target_digest, self.target_digest) else self.plan.total_bytes

    @property
    def bytes_total(self) -> int:
        return self.bytes_per_device * len(self.device_ids)


@dataclass(frozen=True)
class GroupPlan:
    target: str
    target_digest: str
    cohorts: list[Cohort]
    pinned: str = ""  # the target's manifest (of the default platform), digest-pinned

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes_total for c in self.cohorts)

    @property
    def devices(self) -> int:
        return sum(len(c.device_ids) for c in self.cohorts)

    @property
    def rollback_bytes(self) -> int:
        return sum(c.rollback_per_device * len(c.device_ids) for c in self.cohorts)


def running_ref(image: str, digest: str, target: Image) -> str:
    """The pinned reference a device runs: as reported, or the target's repository @ digest."""
    if not digest:
        return ""
    if "@" in image:
        return image
    return target.ref.pinned(digest)


def plan_group(target: Image, twins: Iterable[DeviceTwin], module: str, config: Config,
               held: dict[str, tuple[str, ...]] | None = None, keeps_previous: bool = True) -> GroupPlan:
    """`plan_states` of these twins (`held`: device id → other images it holds; default: what each reports)."""
    return plan_states(target, group_states(group_facts(facts_of(t, module) for t in twins), held), config, keeps_previous)


def plan_states(target: Image, states: GroupStates, config: Config, keeps_previous: bool = True) -> GroupPlan:
    """Cohorts of the group by (running image, held images, platform), largest first, each with
    its pull plan of `target` for that platform and its rollback cost: one plan per cohort."""
    members: dict[tuple[str, tuple[str, ...], str], list[str]] = defaultdict(list)
    for state in states.states:
        k = state.key
        members[(running_ref(k.image, k.digest, target), k.held, k.platform)].extend(state.device_ids)
    targets: dict[str, Image] = {}
    images: dict[tuple[str, str], Image | None] = {}

    def load(ref: str, platform: str) -> Image | None:
        if (ref, platform) not in images:
            try:
                images[(ref, platform)] = load_image(ref, config, platform)
            except FleetError:
                images[(ref, platform)] = None  # gone from the registry: counts as not held
        return images[(ref, platform)]

    cohorts = []
    for (ref, others, platform), ids in sorted(members.items(), key=lambda kv: -len(kv[1])):
        if platform not in targets:
            targets[platform] = load_image(target.deploy_ref, config, platform) if target.index_digest else target
        running = load(ref, platform) if ref else None
        have = [img for img in [running, *(load(o, platform) for o in others)] if img is not None]
        rollback = None
        if running is not None:
            rollback = plan_pull(running, [targets[platform], *have] if keeps_previous else [targets[platform]])
        digest = ref.rsplit("@", 1)[-1] if ref else ""
        cohorts.append(Cohort(digest, ref, tuple(ids), plan_pull(targets[platform], have), running is not None,
                              platform, target.deploy_digest, others, rollback))
    return GroupPlan(str(target.ref), target.deploy_digest, cohorts, target.pinned)
