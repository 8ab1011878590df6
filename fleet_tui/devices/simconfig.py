"""The `[sim]` section of the config: the simulated fleet `fleet-tui sim up` starts.

The section's keys, types and defaults are the pydantic models of
`fleet_tui.config.sim_section` (documented in docs/configuration.md); this module turns
them into the runtime spec: link profiles in bytes per second, device ids, scaling.

Invariant: a bad value is one `UsageError` naming the key; nothing starts half-configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fleet_tui.config import LinkSection, SimSection, parse_config
from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.errors import UsageError


@dataclass(frozen=True)
class GroupSpec:
    name: str
    devices: int
    link: str = "default"
    platform: str = "linux/amd64"
    site: str = ""  # registered with the hub's site tag naming it


@dataclass(frozen=True)
class FailureRule:
    image: str = ""
    fraction: float = 0.0
    devices: tuple[str, ...] = ()
    kind: str = "start"  # "start": exits on start; "download": a layer pull fails
    attempts: int = 0  # the first N attempts fail (0: all)


@dataclass(frozen=True)
class SimSpec:
    image: str
    groups: tuple[GroupSpec, ...]
    links: dict[str, LinkProfile] = field(default_factory=lambda: {"default": LinkProfile()})
    failures: tuple[FailureRule, ...] = ()
    seed: int = 1
    speed: float = 1.0
    prefix: str = "sim-"
    poll_seconds: float = 2.0
    report_hz: float = 4.0
    apply_seconds: float = 3.0
    chunk_bytes: int = 256 * 1024
    connections: int = 16
    heartbeat_seconds: float = 60.0

    @property
    def total(self) -> int:
        return sum(g.devices for g in self.groups)

    def device_ids(self) -> list[tuple[str, GroupSpec]]:
        return [(f"{self.prefix}{g.name}-{i:05d}", g) for g in self.groups for i in range(g.devices)]

    def scaled(self, total: int) -> "SimSpec":
        """The same fleet with `total` devices, spread over the groups in proportion."""
        if total < 1:
            raise UsageError(f"--devices must be at least 1, not {total}")
        weights = [g.devices for g in self.groups]
        whole = sum(weights) or 1
        counts = [total * w // whole for w in weights]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        return replace(self, groups=tuple(replace(g, devices=n) for g, n in zip(self.groups, counts)))


# Measured: a simulated device (SimDevice, its idle asyncio task, link and outage models,
# content store) holds ~9 KB; the rest is headroom for the per-poll desired-state maps and the
# report outbox, which are as large as the fleet.
BYTES_PER_DEVICE = 12 * 1024


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(total: int, available: int | None) -> None:
    """Refuse a fleet that would not fit in `available` bytes (None: unknown, allowed)."""
    need = total * BYTES_PER_DEVICE
    if available is not None and need > available * 0.8:
        fits = int(available * 0.8 // BYTES_PER_DEVICE)
        raise UsageError(f"{total:,} simulated devices need about {need / 2**30:.1f} GiB of memory and this machine "
                         f"has {available / 2**30:.1f} GiB available; use --devices {fits:,} or fewer")


def _link(name: str, section: LinkSection) -> LinkProfile:
    return LinkProfile(
        name, section.bandwidth_kbps * 1000 / 8, section.latency_ms / 1000, section.offline_per_hour,
        section.offline_seconds, tuple((float(a), float(b)) for a, b in section.outages),
    )


def parse_sim(data: SimSection | dict[str, Any] | None) -> SimSpec:
    """The runtime SimSpec of a `[sim]` section (a validated SimSection, or raw TOML data)."""
    if not data:
        raise UsageError("config has no [sim] section: add one (see config/example.toml) to describe the simulated fleet")
    if isinstance(data, dict):
        data = parse_config({"sim": data}).sim
        assert data is not None
    links = {"default": LinkProfile(), **{name: _link(name, link) for name, link in data.links.items()}}
    groups = tuple(GroupSpec(name, g.devices, g.link, g.platform, g.site) for name, g in data.groups.items())
    failures = tuple(FailureRule(f.image, f.fraction, tuple(f.devices), f.kind, f.attempts) for f in data.failures)
    return SimSpec(
        data.image, groups, links, failures, data.seed, data.speed, data.prefix, data.poll_seconds,
        data.report_hz, data.apply_seconds, data.chunk_kb * 1024, data.connections, data.heartbeat,
    )
