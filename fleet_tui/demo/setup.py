"""Prepare the embedded demo: image store, demo config, seeded local hub, simulated fleet.

Everything lives under one directory (default `<state dir>/demo`): `store/` (OCI layout),
`demo.toml` (the config every demo process reads: detached simulator and rollout engines
included), `hub.sqlite`, the journal and logs. Re-running is cheap: the store is built once
and the simulator is started only when it is not already running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tomli_w

from fleet_tui.demo.images import build_demo_store
from fleet_tui.oci.layout import LayoutStore

# name: (devices, link profile)
GROUPS = {
    "vans-west": (120, "cellular"),
    "trucks-east": (140, "cellular"),
    "drones": (60, "lte-m"),
    "factory-basement": (80, "flaky"),
}
SITES = {"factory-basement": "basement-gw"}  # group → the site its devices are at
LINKS = {
    "cellular": {"bandwidth_kbps": 8000, "latency_ms": 120, "offline_per_hour": 1.0, "offline_seconds": 60},
    "lte-m": {"bandwidth_kbps": 1000, "latency_ms": 300, "offline_per_hour": 2.0, "offline_seconds": 90},
    "flaky": {"bandwidth_kbps": 2000, "latency_ms": 250, "offline_per_hour": 30.0, "offline_seconds": 45},
}


@dataclass(frozen=True)
class Demo:
    root: Path
    config_path: Path
    store: Path
    v1: str  # pinned references
    v2: str
    v3: str
    devices: int


def demo_config_text(root: Path, store: Path, v1: str, devices_scale: float, speed: float) -> str:
    oci = f"oci:{store}"
    data = {
        "state_dir": str(root),
        "registry": {"default": oci, "repositories": [oci]},
        "hub": {"kind": "local", "path": str(root / "hub.sqlite"), "group_tag": "fleetGroup", "module": "scoring"},
        "cost": {"per_gb": 720.0, "currency": "$"},
        "rollout": {"waves": "1,10%,50%,100%", "gate_timeout": 180, "success": "90%", "bake": 5},
        # the factory basement is a site: its devices pull from one gateway cache over the LAN,
        # the cache over one metered uplink — each blob crosses it once, not once per device
        "sites": {"basement-gw": {"cache": "simulated", "uplink": {"per_gb": 720.0, "bandwidth": 250_000}}},
        "sim": {
            "image": v1, "seed": 7, "speed": float(speed), "poll_seconds": 1.0, "apply_seconds": 3.0,
            "links": LINKS,
            "groups": {name: {"devices": max(1, round(count * devices_scale)), "link": link,
                               **({"site": SITES[name]} if name in SITES else {})}
                       for name, (count, link) in GROUPS.items()},
            # 2 % of devices fail their first start of a new image (a cold start, a flaky
            # script): enough to halt a small wave; `R` (retry) then brings them up
            "failures": [{"image": "", "fraction": 0.02, "attempts": 1}],
        },
    }
    head = ("# fleet-tui demo: embedded store, local hub, simulated fleet (written by `fleet-tui demo`)\n"
            "# [cost] per_gb = 720: $0.72 per MB, a pay-as-you-go IoT cellular rate (set your own in your config)\n")
    return head + tomli_w.dumps(data)


def prepare_demo(root: Path, progress: Callable[[str], None] = lambda s: None, devices: int | None = None,
                 speed: float = 4.0, scale: float = 1.0) -> Demo:
    """Build the store (once) and (re)write the demo config; returns where things are."""
    root.mkdir(parents=True, exist_ok=True)
    store_dir = root / "store"
    store: LayoutStore = build_demo_store(store_dir, progress, scale=scale)
    pinned = {tag: f"oci:{store_dir}@{store.head_manifest('', tag).digest}" for tag in ("1", "2", "3")}  # type: ignore[union-attr]
    total = sum(c for c, _ in GROUPS.values())
    factor = (devices / total) if devices else 1.0
    config_path = root / "demo.toml"
    config_path.write_text(demo_config_text(root, store_dir, pinned["1"], factor, speed))
    count = sum(max(1, round(c * factor)) for c, _ in GROUPS.values())
    return Demo(root, config_path, store_dir, pinned["1"], pinned["2"], pinned["3"], count)
