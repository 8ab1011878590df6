"""Per-device pull plans for a group: devices are grouped into cohorts by the image they run
and their platform.

One image load and one plan per distinct (running image, platform) — a 100,000-device group
typically has 1-3 — then every device of a cohort shares that plan. A multi-platform target
is planned per platform: an arm64 device pulls the index, the arm64 manifest, config and the
arm64 layers it lacks. A device whose running
image cannot be found (reports nothing, or an image the registry no longer has) is planned
as pulling the full target image, and marked `known = False`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
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

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes_total for c in self.cohorts)

    @property
    def devices(self) -> int:
        return sum(len(c.device_ids) for c in self.cohorts)


def running_ref(twin: DeviceTwin, module: str, target: Image) -> str:
    """The pinned reference a device runs: as reported, or the target's repository @ digest."""
    report = twin.reported.get(module)
    if report is None or not report.digest:
        return ""
    if "@" in report.image:
        return report.image
    return target.ref.pinned(report.digest)


def plan_group(target: Image, twins: Iterable[DeviceTwin], module: str, config: Config) -> GroupPlan:
    """Cohorts of `twins` by (running image, platform), largest first, each with its pull plan of
    `target` for that platform."""
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for twin in twins:
        members[(running_ref(twin, module, target), twin.platform(module))].append(twin.device_id)
    targets: dict[str, Image] = {}
    cohorts = []
    for (ref, platform), ids in sorted(members.items(), key=lambda kv: -len(kv[1])):
        if platform not in targets:
            targets[platform] = load_image(target.deploy_ref, config, platform) if target.index_digest else target
        have: list[Image] = []
        if ref:
            try:
                have = [load_image(ref, config, platform)]
            except FleetError:
                have = []
        digest = ref.rsplit("@", 1)[-1] if ref else ""
        cohorts.append(Cohort(digest, ref, tuple(ids), plan_pull(targets[platform], have), bool(have), platform,
                              target.deploy_digest))
    return GroupPlan(str(target.ref), target.deploy_digest, cohorts)
