"""Per site, where a rollout stands: its cache's warm-up (items, bytes over the uplink against
the plan), its state (waiting, warming, ready, halted and why), its devices and what their LAN
carried. Built from the journal's `site`/`warm` events (site_steps.py) and the snapshot's
devices; what the console, `rollout status --json` and the report show.

Uplink bytes are what the warm-up moved (the blobs the cache fetched for it, each once); a
`simulated` cache reports the plan's figure (the simulated gateway models it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from fleet_tui.rollout.site_plan import variant_site
from fleet_tui.rollout.site_steps import site_status


@dataclass(frozen=True)
class SiteProgress:
    site: str
    kind: str
    state: str  # waiting | warming | ready | halted
    reason: str
    items_done: int
    items: int
    uplink_bytes: int
    uplink_planned: int
    devices: int
    running: int
    lan_bytes: int
    per_gb: float
    increment: int = 1

    @property
    def uplink_cost(self) -> float:
        billed = math.ceil(self.uplink_bytes / self.increment) * self.increment if self.uplink_bytes else 0
        return billed / 1e9 * self.per_gb

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "cache": self.kind, "state": self.state, "reason": self.reason,
                "items_done": self.items_done, "items": self.items, "uplink_bytes": self.uplink_bytes,
                "uplink_planned": self.uplink_planned, "uplink_cost": round(self.uplink_cost, 4),
                "devices": self.devices, "running": self.running, "lan_bytes": self.lan_bytes}


def site_progress(spec: dict[str, Any], journal: Any, rollout_id: str, devices: Iterable[Any]) -> tuple[SiteProgress, ...]:
    """`devices`: the snapshot's RolloutDevice rows (variant `<key>@<site>` names the site)."""
    sites = spec.get("sites") or {}
    if not sites:
        return ()
    status = site_status(journal, rollout_id)
    variants = spec["variants"]
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in sites}
    for d in devices:
        site = variants.get(d.variant, {}).get("site", "")
        if site in counts:
            c = counts[site]
            c[0] += 1
            c[1] += d.state in ("running", "rolled_back")
            c[2] += d.bytes
    out = []
    for name, entry in sites.items():
        st = status.get(name)
        state = "waiting" if st is None else st["state"]
        moved = 0 if st is None else int(st["warmed"])
        done = len(entry["items"]) if state == "ready" else (0 if st is None else int(st["items"]))
        n, running, lan = counts[name]
        out.append(SiteProgress(name, entry["kind"], state, "" if st is None else st["reason"], done,
                                len(entry["items"]), moved, int(entry.get("planned_uplink", 0)), n, running, lan,
                                float(entry.get("per_gb", 0.0)), int(entry.get("increment", 1) or 1)))
    return tuple(out)


def cost_with_sites(devices: Iterable[Any], sites: tuple[SiteProgress, ...], per_gb: float) -> float:
    """What a rollout's bytes cost: devices of no site (or of a site without a cache) by their
    own bytes at `per_gb`; a site with a cache by its uplink (variant `<key>@<site>`)."""
    cached = {p.site for p in sites if p.kind != "none"}
    own = sum(d.bytes for d in devices if variant_site(d.variant) not in cached)
    return own / 1e9 * per_gb + sum(p.uplink_cost for p in sites if p.site in cached)
