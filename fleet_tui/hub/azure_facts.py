"""The Azure hub's fast path of `fact_groups` (fleet_tui.hub.facts): what planning needs of each
device of a group, in fewer queries than joining every page of device twins with its module
twins by `deviceId IN [...]` lists, and grouped into distinct states.

Why it costs less: IoT Hub's query class is 20/min/unit on S1 (iot-hub-devguide-quotas-
throttling), and a query answers at most 1000 rows while an `IN` list must stay under the
query size limit (azure_query.MAX_QUERY_CHARS: ~450 device ids a query). So:

- the group's device twins: one page per 1000 devices (unavoidable: they say who is in it);
- `$edgeAgent` module twins: `IN` lists, or — when that would cost more queries — one scan
  of every `$edgeAgent` twin of the hub (1000 a page), kept only for the group's devices. The
  hub's Edge device count (one documented `GROUP BY` query on device twins, which bounds the
  number of `$edgeAgent` twins) decides; `GROUP BY` and `COUNT()` on `devices.modules` are not
  relied on;
- `$edgeHub` only where it can change a fact: a device whose agent reported within
  `[hub] liveness_window` is online whatever `$edgeHub` says (azure_agent.is_online), so only
  the others are looked up, again by `IN` lists or by one scan of the Connected `$edgeHub`s.

Each twin is built once, with one clock reading, and kept only as its facts (memory holds a
small row per device, never module twins); a device a scan did not return (no agent twin, or
paged past while twins changed) is looked up by `IN` list before it counts as having none.

Invariant: each device's facts are exactly `facts_of` of the twin `AzureHub.query_devices`
would build (a device the hub lists twice counts once) (tests/integration/test_azure_facts.py compares both paths on the fake hub); devices keep
the order the hub listed them in. Equal desired modules are interned (one `ModuleSpec` object
per distinct content), so devices that one deployment configures fall into one state rather
than one state each.
"""

from __future__ import annotations

import functools
import json
import math
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from fleet_tui.hub import azure_agent as agent_state
from fleet_tui.hub.azure_query import in_chunks, in_list, literal
from fleet_tui.hub.facts import DeviceFacts, FactGroup, facts_of, group_facts
from fleet_tui.hub.protocol import ModuleSpec

if TYPE_CHECKING:
    from fleet_tui.hub.azure import AzureHub

PAGE = 1000  # rows per query page (x-ms-max-item-count)
CONNECTED = "connectionState = 'Connected'"


def scans(chunks: Sequence[Sequence[str]], hub_edge_devices: Callable[[], int]) -> bool:
    """Whether one scan of the hub's module twins costs fewer queries than these `IN` lists."""
    return len(chunks) > 1 and math.ceil(hub_edge_devices() / PAGE) < len(chunks)


def module_rows(hub: "AzureHub", module_id: str, ids: Sequence[str], hub_edge_devices: Callable[[], int],
                extra: str = "") -> Iterator[tuple[str, dict]]:
    """(device id, row) of the `module_id` twins of `ids` (and matching `extra`), by whichever
    of `IN` lists or one scan of the hub's `module_id` twins takes fewer queries
    (`hub_edge_devices` is only asked when there is more than one list)."""
    if not ids:
        return
    where = f"moduleId = {literal(module_id)}" + (f" AND {extra}" if extra else "")
    chunks = list(in_chunks(ids))
    if scans(chunks, hub_edge_devices):
        wanted = set(ids)
        for row in hub.query.all(f"SELECT * FROM devices.modules WHERE {where}", PAGE):
            device_id = str(row.get("deviceId"))
            if device_id in wanted:
                yield device_id, row
        return
    for chunk in chunks:
        for row in hub.query.all(f"SELECT * FROM devices.modules WHERE {where} AND deviceId IN {in_list(chunk)}", PAGE):
            yield str(row.get("deviceId")), row


def _slim(row: dict, site_tag: str, link_property: str) -> dict:
    """What `_twin` and `facts_of` read of a device twin: its id, etag, the site tag, the link."""
    tags = row.get("tags") or {}
    reported = (row.get("properties") or {}).get("reported") or {}
    head = link_property.split(".")[0] if link_property else ""
    return {"deviceId": row.get("deviceId"), "etag": row.get("etag"),
            "tags": {site_tag: tags[site_tag]} if site_tag and site_tag in tags else {},
            "properties": {"reported": {head: reported[head]} if head in reported else {}}}


class _Interned:
    """One ModuleSpec object per distinct content, so `group_facts` (which keys desired modules
    by identity) puts devices given the same module together."""

    def __init__(self) -> None:
        self.specs: dict[tuple, ModuleSpec] = {}

    def __call__(self, facts: DeviceFacts) -> DeviceFacts:
        spec = facts.desired
        if spec is None:
            return facts
        key = (spec.name, spec.image, spec.create_options, json.dumps(spec.definition, sort_keys=True, default=str))
        return facts._replace(desired=self.specs.setdefault(key, spec))


def azure_fact_groups(hub: "AzureHub", condition: str, module: str, site_tag: str = "") -> list[FactGroup]:
    from fleet_tui.hub.azure import EDGE_ONLY

    devices: dict[str, dict] = {}
    for row in hub.query.all(f"SELECT * FROM devices WHERE {EDGE_ONLY} AND ({condition})", PAGE):
        devices[str(row.get("deviceId"))] = _slim(row, site_tag, hub.link_property)
    if not devices:
        return []
    edge_devices = functools.cache(lambda: sum(hub.group_counts().values()))  # ≥ its $edgeAgent twins
    intern = _Interned()
    facts: dict[str, DeviceFacts] = {}
    ids = list(devices)
    scanned = scans(list(in_chunks(ids)), edge_devices)
    for device_id, agent in module_rows(hub, agent_state.EDGE_AGENT, ids, edge_devices):
        facts[device_id] = intern(facts_of(hub._twin(devices[device_id], agent, None), module, site_tag))
    unseen = [d for d in devices if d not in facts]  # no agent twin — or, after a scan, paged past
    if scanned:
        for device_id, agent in module_rows(hub, agent_state.EDGE_AGENT, unseen, lambda: 10**12):  # IN lists
            facts[device_id] = intern(facts_of(hub._twin(devices[device_id], agent, None), module, site_tag))
    for device_id in unseen:
        facts.setdefault(device_id, intern(facts_of(hub._twin(devices[device_id], None, None), module, site_tag)))
    # $edgeHub can only make an offline device online (azure_agent.is_online): ask for those alone
    offline = [d for d in devices if not facts[d].connected]
    for device_id, _row in module_rows(hub, agent_state.EDGE_HUB, offline, edge_devices, CONNECTED):
        facts[device_id] = facts[device_id]._replace(connected=True)
    return group_facts(_in_order(devices, facts))


def _in_order(devices: Iterable[str], facts: dict[str, DeviceFacts]) -> Iterator[DeviceFacts]:
    for device_id in devices:
        yield facts[device_id]
