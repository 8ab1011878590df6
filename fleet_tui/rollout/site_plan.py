"""A rollout's sites, fixed at creation: which variant each site's devices are given, and what
each site's cache must hold before they are (fleet_tui.rollout.site_steps warms it).

- A device at a site with a Distribution cache is given its variant's image *through the
  cache*: a variant `<key>@<site>`, the same digest named `<cache host>/<repository>@<digest>`
  (or `$upstream:443/…` for IoT Edge children, `upstream_name`); a `simulated` cache keeps
  the reference (the simulated fleet models the gateway); `cache = "none"` sites are devices
  of no site as far as the rollout goes (each pulls over the uplink itself).
- `items`: every blob and manifest the site's devices still need, by digest, with the
  repository to ask the cache for it under — what the warm-up fetches, once each.
- Images the devices run at a site are named through the cache too; fleet-tui reads their
  manifests and configs from the upstream registry instead (`upstream_ref`), so planning
  never makes a cache fetch anything.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from fleet_tui.fleet.sites import warmup_overhead
from fleet_tui.fleet.states import GroupStates
from fleet_tui.oci.image import Image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.planning.pullplan import plan_for_blobs
from fleet_tui.rollout.journal import Journal

Have = Callable[[str, str], "Image | None"]


def site_variant(variant: str, site: str) -> str:
    """The key of `variant` as given to the devices of `site`: `full@depot-3`."""
    return f"{variant}@{site}"


def variant_site(key: str) -> str:
    """`full@depot-3` → `depot-3`; "" for a variant of no site."""
    return key.partition("@")[2]


def base_variant(key: str) -> str:
    """`full@depot-3` → `full`: the variant a site's key stands for."""
    return key.partition("@")[0]


def through(ref: str, host: str) -> str:
    """`ref` (pinned) named through a site's cache: `<host>/<repository>@<digest>`."""
    parsed = parse_reference(ref)
    return f"{host}/{parsed.repository}@{parsed.digest}"


def upstream_ref(ref: str, sites: dict[str, Any], upstream: str) -> str:
    """A reference named through a site's cache, named at the upstream registry instead."""
    if not ref or ref.startswith("oci:"):
        return ref
    host = parse_reference(ref).registry
    if any(host == site.ref_host() for site in sites.values() if site.cache == "distribution"):
        return through(ref, upstream)
    return ref


def site_variants(config: Any, states: GroupStates, per_state: list[tuple[str, str, str, int]],
                  variants: dict[str, dict[str, Any]], have: Have, warm: dict[str, set[str]]
                  ) -> tuple[list[tuple[str, str, str, int]], dict[str, dict[str, Any]]]:
    """(per-state (variant, pinned, digest, bytes) with site variants, spec["sites"]); adds the
    site variants to `variants`. `warm`: site → digests its cache was seen holding (journal)."""
    out, sites = [], {}
    for state, (variant, pinned, digest, planned) in zip(states.states, per_state):
        name = state.key.site
        site = config.sites.get(name) if name else None
        if site is None or site.cache == "none":
            out.append((variant, pinned, digest, planned))
            continue
        key = site_variant(variant, name)
        base = variants[variant]
        if key not in variants:
            image = through(base["image"], site.ref_host()) if site.cache == "distribution" else base["image"]
            variants[key] = {**base, "image": image, "site": name}
        entry = sites.setdefault(name, _site_entry(name, site, config))
        target = have(base["image"], state.key.platform)
        if target is not None:
            holding = [img for img in (have(p, state.key.platform) for p in (pinned, *state.key.held) if p) if img]
            plan = plan_for_blobs(target, {l.digest for img in holding for l in img.layers},
                                  {img.config_digest for img in holding}, {img.digest for img in holding})
            repo = parse_reference(base["image"]).repository
            manifests = {target.digest, target.index_digest}
            for dg, size in plan.fetched().items():
                entry["items"][dg] = [repo, size, "manifest" if dg in manifests else "blob"]
        out.append((key, pinned, digest, planned))
    for name, entry in sites.items():
        cold = {d: item for d, item in entry["items"].items() if d not in warm.get(name, set())}
        entry["planned_uplink"] = sum(int(i[1]) + warmup_overhead(int(i[1]), entry["kind"], i[2]) for i in cold.values())
    return out, sites


def _site_entry(name: str, site: Any, config: Any) -> dict[str, Any]:
    uplink = site.uplink
    return {"kind": site.cache, "url": site.reach(), "ref_host": site.ref_host(), "items": {},
            "per_gb": config.cost.per_gb if uplink.per_gb is None else uplink.per_gb,
            "increment": uplink.increment, "monthly_cap": uplink.monthly_cap, "windows": list(uplink.windows),
            "timezone": uplink.timezone, "bandwidth": uplink.bandwidth, "cache_ttl": site.cache_ttl,
            "created": time.time()}


def warm_caches(config: Any, journal: Journal | None) -> dict[str, set[str]]:
    """Site → digests its cache was seen holding within its TTL (the journal's record)."""
    own = journal is None
    journal = journal or Journal.for_config(config)
    try:
        now = time.time()
        return {name: journal.warm_digests(name, now - site.cache_ttl) for name, site in config.sites.items()}
    finally:
        if own:
            journal.close()


def charged(nbytes: int, entry: dict[str, Any], per_gb: float) -> int:
    """A site's uplink bytes as the budget counts them: at the price of `[cost] per_gb` the
    budget was set in (a cheaper uplink spends less of it); bytes as they are without a price."""
    site_per_gb = float(entry.get("per_gb") or 0.0)
    return int(round(nbytes * site_per_gb / per_gb)) if per_gb > 0 else int(nbytes)


def wave_spend(n_waves: int, assignments: list[Any], variants: dict[str, dict[str, Any]],
               sites: dict[str, dict[str, Any]], per_gb: float = 0.0) -> list[int]:
    """Bytes each wave spends: its devices of no site by their plan; a site's uplink (its
    warm-up) in the wave that reaches the site first — what a budget holds a rollout to."""
    out, reached = [0] * n_waves, set()
    for a in sorted(assignments, key=lambda a: a.wave):
        site = variants[a.variant].get("site", "")
        if not site or site not in sites:
            out[a.wave] += a.planned_bytes
        elif site not in reached:
            reached.add(site)
            out[a.wave] += charged(int(sites[site]["planned_uplink"]), sites[site], per_gb)
    return out
