"""What each device holds besides the image it runs — the images it still caches.

Simulated devices and engine agents report them (`ModuleReport.cached`: pinned refs, newest
first): they are taken at their word. IoT Edge devices cannot (the twin has no such
property), so for a hub that says `reports_cache = False` (Azure) the cache is *modelled*
from what fleet-tui itself did to them: aziot-edged's image garbage collection removes an
image nothing runs once it is older than `image_age_cleanup_threshold` (default 7 days,
checked daily; Azure/iotedge edgelet-image-cleanup), so the image a rollout replaced on a
device counts as held until `[hub] image_gc_threshold` after that rollout ended (rollouts in
this journal, devices that ended running the new image).

Invariant: a modelled cache only ever names images a device ran (journalled), never more;
when unsure the device holds nothing extra, so plans err towards more bytes, not fewer.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from fleet_tui.fleet.states import GroupStates, group_states
from fleet_tui.hub.facts import fact_groups
from fleet_tui.rollout.journal import TERMINAL, Journal


def reports_cache(hub: Any) -> bool:
    return bool(getattr(hub, "reports_cache", True))


def modelled_cache(journal: Journal, device_ids: Iterable[str], threshold: float,
                   now: float | None = None) -> dict[str, tuple[str, ...]]:
    """device id → images it ran before a rollout of this journal that ended within `threshold`."""
    now = time.time() if now is None else now
    wanted = set(device_ids)
    out: dict[str, list[str]] = {}
    if threshold <= 0:
        return {}
    for row in sorted(journal.list_rollouts(), key=lambda r: -r.updated):  # newest first
        if row.state not in TERMINAL or now - row.updated > threshold:
            continue
        finals = journal.finals(row.id)
        for a in journal.assignments(row.id):
            if a.device_id in wanted and a.prev_image and finals.get(a.device_id, ("", 0))[0] == "running":
                held = out.setdefault(a.device_id, [])
                if a.prev_image not in held:
                    held.append(a.prev_image)
    return {d: tuple(images) for d, images in out.items()}


def inventory(config: Any, hub: Any, device_ids: Iterable[str], journal: Journal | None = None
              ) -> tuple[dict[str, tuple[str, ...]] | None, bool]:
    """(held images per device, or None to use what devices report; whether a device keeps the
    image it ran after an update — what a rollback costs)."""
    if reports_cache(hub):
        return None, True
    threshold = float(config.hub.image_gc_threshold)
    if journal is None:
        journal = Journal.for_config(config)
        try:
            return modelled_cache(journal, device_ids, threshold), threshold > 0
        finally:
            journal.close()
    return modelled_cache(journal, device_ids, threshold), threshold > 0


def read_group_states(config: Any, hub: Any, condition: str, journal: Journal | None = None) -> tuple[GroupStates, bool]:
    """The devices matching `condition` as distinct states (fleet_tui.fleet.states), with what
    each holds as `inventory` says; and whether devices keep the image they ran."""
    site_tag = config.hub.site_tag if config.sites else ""  # no sites: no tag read per device
    groups = list(fact_groups(hub, condition, config.hub.module, site_tag))
    if reports_cache(hub):
        return group_states(groups, sites=config.sites), True
    held, keeps = inventory(config, hub, (d for g in groups for d in g.device_ids), journal)
    return group_states(groups, held, config.sites), keeps
