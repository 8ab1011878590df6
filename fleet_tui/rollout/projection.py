"""What a rollout of a group would cost wave by wave, against its budget — before it starts.

The same device order and wave sizes `create_rollout` will journal (seeded order, offline
devices last, `Policy.wave_sizes`), so the preview's wave 3 is the rollout's wave 3; the
bytes per device are the preview's pull plans. `within_budget` is the engine's own rule: a
wave starts only if every byte planned up to and including it fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from fleet_tui.rollout.policy import Policy, order_devices, split_waves


@dataclass(frozen=True)
class WaveCost:
    index: int
    size: int
    bytes: int
    cumulative: int
    within_budget: bool

    def to_json(self, per_gb: float) -> dict[str, Any]:
        return {"size": self.size, "bytes": self.bytes, "cost": round(self.bytes / 1e9 * per_gb, 2),
                "cumulative_bytes": self.cumulative, "within_budget": self.within_budget}


def project_waves(policy: Policy, device_ids: Iterable[str], offline: set[str], bytes_of: dict[str, int],
                  budget: int | None, metered: set[str] | None = None, site_of: Mapping[str, str] | None = None,
                  uplink: Mapping[str, int] | None = None) -> list[WaveCost]:
    """`site_of`/`uplink`: a device at a site costs nothing itself; its site's uplink bytes are
    spent in the wave that reaches the site first (its cache is warmed then)."""
    order = order_devices(device_ids, offline, policy.seed, metered)
    sizes = replace(policy, partial=True).wave_sizes(len(order))
    out, total = [], 0
    where, reached = site_of or {}, set()
    for i, ids in enumerate(split_waves(order, sizes)):
        wave = 0
        for d in ids:
            site = where.get(d)
            if site is None:
                wave += bytes_of.get(d, 0)
            elif site not in reached:
                reached.add(site)
                wave += (uplink or {}).get(site, 0)
        total += wave
        fits = budget is None or (total <= budget and (not out or out[-1].within_budget))
        out.append(WaveCost(i, len(ids), wave, total, fits))
    return out
