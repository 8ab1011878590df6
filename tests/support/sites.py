"""Three sites for tests and the sites benchmark: each a real `docker-registry` in proxy mode
(`proxy.remoteurl`) behind its own metered uplink (uplink.py counts what crossed it), plus ten
devices of no site; a rollout env (rollout_env.py) whose config has the `[sites.*]` tables.
Two sites take their devices by hub tag, the third by its `devices` list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet_tui.hub.local import LocalHub
from tests.support.registry import RegistryServer
from tests.support.rollout_env import GROUP, RolloutEnv, make_env, wait_for
from tests.support.uplink import Uplink

SITES = ("depot-a", "depot-b", "yard-c")
PER_SITE, UNSITED = 20, 10
RATE = 4_000_000  # bytes/s each uplink carries
DEPS = 4_000_000  # the dependency layer a naive rebuild re-creates


class Sites:
    def __init__(self, tmp_path: Path, registry: Any, rate: float = RATE) -> None:
        self.rate = rate
        self.uplinks = {s: Uplink(registry.host, rate) for s in SITES}
        self.caches = {s: RegistryServer(tmp_path / f"cache-{s}", remoteurl=f"http://{self.uplinks[s].address}").start()
                       for s in SITES}

    def toml(self, device_ids: list[str]) -> str:
        out = []
        for i, s in enumerate(SITES):
            listed = device_ids[i * PER_SITE:(i + 1) * PER_SITE] if s == "yard-c" else []  # by config; others by tag
            out.append(f'[sites.{s}]\ncache = "distribution"\ncache_address = "{self.caches[s].host}"\n'
                       f"devices = {json.dumps(listed)}\n[sites.{s}.uplink]\nper_gb = 10.0\nbandwidth = {int(self.rate)}\n")
        return "\n".join(out)

    def members(self, device_ids: list[str], site: str) -> list[str]:
        i = SITES.index(site)
        return device_ids[i * PER_SITE:(i + 1) * PER_SITE]

    def stop(self) -> None:
        for c in self.caches.values():
            c.stop()
        for u in self.uplinks.values():
            u.close()


def make_site_env(tmp_path: Path, registry: Any, repo: str, deps: int = DEPS, rate: float = RATE
                  ) -> tuple[RolloutEnv, Sites]:
    sites = Sites(tmp_path, registry, rate)
    ids = [f"sim-{GROUP}-{i:05d}" for i in range(len(SITES) * PER_SITE + UNSITED)]
    env = make_env(tmp_path, registry, len(ids), repo, rollout='waves = "1,10%,100%"', extra=sites.toml(ids),
                   deps_size=deps)
    return env, sites


def tag_sites(env: RolloutEnv, sites: Sites) -> None:
    """Once the simulated fleet registered its devices: tag the first two sites' devices."""
    hub = LocalHub(env.config.hub_path(), module="scoring")
    wait_for(lambda: len(list(hub.iter_devices())) == len(env.device_ids), what="the fleet registered")
    for s in SITES[:2]:
        hub.bulk_update_tags(sites.members(env.device_ids, s), {"site": s})
    hub.close()
