"""What planning needs to know of each device, and nothing more: the image its managed module
runs (as reported, and as deployed), the platform, the other images it still holds, whether
it is online, its link and the deployment it gets its modules from.

`fact_groups(hub, condition, module)` reads them for every device matching `condition`, as
groups of devices that share all of them. A hub with a fast path of its own (`hub.fact_groups`:
the local hub groups in SQL over one index, no twin built) uses it; any other hub's twins are
reduced to facts as they stream, so memory holds ids, not twins. Each fact means what the
`DeviceTwin` accessor of the same name means (`facts_of`; the tests compare both paths).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, NamedTuple

from fleet_tui.hub.protocol import DeviceTwin, ModuleSpec


class DeviceFacts(NamedTuple):
    device_id: str  # "" in a FactGroup: the facts its devices share
    image: str  # the reference the module reportedly runs ("" when it reports nothing)
    digest: str  # the manifest digest it reportedly runs ("" when unknown)
    desired: ModuleSpec | None  # the managed module as the hub tells the device to run it
    platform: str  # os/arch[/variant] (linux/amd64 when unsaid)
    cached: tuple[str, ...]  # pinned refs of the other images it reports holding, newest first
    connected: bool  # online, as `DeviceTwin.connected` says
    link: str  # the link it reports ("" when it says nothing)
    deployment_id: str  # the deployment its desired modules come from ("" when none)
    site: str = ""  # the value of its site tag (`[hub] site_tag`), when asked for


class FactGroup(NamedTuple):
    facts: DeviceFacts  # shared by every device of the group (device_id "")
    device_ids: list[str]


def facts_of(twin: DeviceTwin, module: str, site_tag: str = "") -> DeviceFacts:
    report = twin.reported.get(module)
    site = twin.tags.get(site_tag) if site_tag else None
    return DeviceFacts(
        twin.device_id, report.image if report else "", report.digest if report else "", twin.desired.get(module),
        twin.platform(module), twin.cached(module), twin.connected, twin.link_name(module), twin.deployment_id,
        site if isinstance(site, str) else "",
    )


def group_facts(facts: Iterable[DeviceFacts]) -> list[FactGroup]:
    """Devices with equal facts, together (a desired module is the same only as the same object:
    twins of one deployment share it, and content equal by accident stays apart harmlessly)."""
    groups: dict[tuple, FactGroup] = {}
    for f in facts:
        key = (f.image, f.digest, id(f.desired), f.platform, f.cached, f.connected, f.link, f.deployment_id, f.site)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FactGroup(f._replace(device_id=""), [])  # keeps `desired` alive: ids stay unique
        group.device_ids.append(f.device_id)
    return list(groups.values())


def fact_groups(hub: Any, condition: str, module: str, site_tag: str = "") -> Iterator[FactGroup] | list[FactGroup]:
    """`site_tag`: also read each device's site (a text tag; anything else reads as no site)."""
    fast = getattr(hub, "fact_groups", None)
    if fast is not None:
        return fast(condition, module, site_tag)
    return group_facts(facts_of(t, module, site_tag) for t in hub.iter_devices(condition))
