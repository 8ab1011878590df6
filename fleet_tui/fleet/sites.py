"""A group's plan per site: what crosses each site's metered uplink, and what its LAN carries.

A site's devices pull from the gateway's cache over the LAN; the cache fetches what they lack
over the uplink, once per blob (and once per manifest, by digest). So for each site:

- `blobs`: the union of what its devices still need (layers, configs, manifests, indexes);
- `cached`: of those, what fleet-tui knows the cache holds (it warmed them within the cache's
  TTL — the journal's record; a Distribution proxy cannot be asked without making it fetch: it
  answers HEAD for a blob it lacks by fetching it, twice, see fleet_tui.oci.pullthrough);
- uplink bytes = the rest once, plus the warm-up's own overhead (`warmup_overhead` per item fetched:
  the cache's second stream to the warming client, stopped at once, and request headers);
- without a cache every device pulls over the uplink itself: uplink bytes = LAN bytes.
The uplink's cost is rounded up to its billing increment. Devices of no site are priced as
today, per device over its own link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from fleet_tui.fleet.groupplan import GroupPlan
from fleet_tui.fleet.states import GroupStates

HEADERS = 2048  # request + response headers of one fetch through the cache, both directions
# what the cache's stream to the warming client pulls before it sees the client gone; measured
# through a 2-4 MB/s uplink (tests/integration/test_sites_e2e.py): 15-40 KB per blob
IN_FLIGHT = 32 * 1024


def warmup_overhead(size: int, kind: str, item: str = "blob") -> int:
    """What warming one item costs beyond the item itself (a simulated cache: nothing). A
    manifest is fetched whole once (the cache streams it to us as it stores it): headers only."""
    if kind != "distribution":
        return 0
    return 2 * HEADERS + (0 if item == "manifest" else min(size, IN_FLIGHT))


@dataclass(frozen=True)
class SitePlan:
    site: str
    kind: str  # the cache: distribution | simulated | none
    devices: int
    blobs: dict[str, int]  # digest → bytes the site's devices still need, each once
    cached: frozenset[str]  # of `blobs`, known to be in the cache
    lan_bytes: int  # what the devices pull, summed over devices
    per_gb: float
    increment: int = 1
    device_ids: tuple[str, ...] = field(default=(), repr=False)
    manifests: frozenset[str] = frozenset()  # of `blobs`, the manifests and indexes

    @property
    def cold(self) -> dict[str, int]:
        return {d: n for d, n in self.blobs.items() if d not in self.cached}

    @property
    def blob_bytes(self) -> int:
        return sum(self.blobs.values())

    @property
    def overhead(self) -> int:
        if self.kind == "none":
            return 0
        return sum(warmup_overhead(n, self.kind, "manifest" if d in self.manifests else "blob")
                   for d, n in self.cold.items())

    @property
    def uplink_bytes(self) -> int:
        if self.kind == "none":
            return self.lan_bytes
        return sum(self.cold.values()) + self.overhead

    @property
    def billed_bytes(self) -> int:
        return math.ceil(self.uplink_bytes / self.increment) * self.increment if self.uplink_bytes else 0

    @property
    def uplink_cost(self) -> float:
        return self.billed_bytes / 1e9 * self.per_gb

    @property
    def cache(self) -> str:
        if self.kind == "none":
            return "none"
        if not self.blobs or not self.cold:
            return "warm"
        return "cold" if len(self.cold) == len(self.blobs) else "partial"

    def to_json(self, currency: str = "$") -> dict[str, Any]:
        return {"site": self.site, "devices": self.devices, "uplink_bytes": self.uplink_bytes,
                "uplink_cost": round(self.uplink_cost, 4), "lan_bytes": self.lan_bytes, "cache": self.cache,
                "blob_bytes": self.blob_bytes, "warmup_overhead": self.overhead, "billed_bytes": self.billed_bytes,
                "per_gb": self.per_gb, "currency": currency}


def site_of(states: GroupStates) -> dict[str, str]:
    """Device id → its site, for the devices that have one."""
    out: dict[str, str] = {}
    for state in states.states:
        if state.key.site:
            out.update(dict.fromkeys(state.device_ids, state.key.site))
    return out


def plan_sites(plan: GroupPlan, states: GroupStates, sites: Mapping[str, Any], default_per_gb: float,
               cached: Mapping[str, Iterable[str]] | None = None) -> list[SitePlan]:
    """One SitePlan per configured site with devices in the group, in the config's order.
    `cached`: site → digests fleet-tui knows its cache holds."""
    where = site_of(states)
    blobs: dict[str, dict[str, int]] = {name: {} for name in sites}
    lan: dict[str, int] = dict.fromkeys(sites, 0)
    members: dict[str, list[str]] = {name: [] for name in sites}
    manifests: set[str] = set()
    for cohort in plan.cohorts:
        per = cohort.bytes_per_device
        fetched = cohort.plan.fetched() if per else {}
        if fetched:
            manifests.update(d for d in (cohort.plan.target_digest, cohort.plan.index_digest) if d)
        for device_id in cohort.device_ids:
            site = where.get(device_id)
            if site is None or site not in members:
                continue
            members[site].append(device_id)
            lan[site] += per
            if fetched:
                blobs[site].update(fetched)
    out = []
    for name, site in sites.items():
        if not members[name]:
            continue
        uplink = site.uplink
        known = frozenset((cached or {}).get(name, ())) & frozenset(blobs[name])
        out.append(SitePlan(name, site.cache, len(members[name]), blobs[name], known, lan[name],
                            default_per_gb if uplink.per_gb is None else uplink.per_gb, uplink.increment,
                            tuple(members[name]), frozenset(manifests) & frozenset(blobs[name])))
    return out
