"""The `[sim]` section of the config: the simulated fleet `fleet-tui sim up` starts.

Shape (every key but `image` and one group has a default):

    [sim]
    image = "127.0.0.1:5000/ml/scoring@sha256:…"   # what every device runs at start
    seed = 7                 # same seed → same links, outages and failures
    speed = 1.0              # device seconds per real second (tests use 50+)
    prefix = "sim-"          # device ids: <prefix><group>-<nnnnn>
    poll_seconds = 2.0       # how often the fleet reads desired state from the hub
    report_hz = 4.0          # how often reports are flushed to the hub (batched)
    apply_seconds = 3.0      # device seconds from "downloaded" to "running"
    chunk_kb = 256           # bytes per ranged request (a cut wastes at most one)
    connections = 16         # shared registry connection pool (httpcore scans it per request: keep small)

    [sim.links.cellular]     # link profiles, referred to by groups
    bandwidth_kbps = 2000    # kilobits per second
    latency_ms = 150
    offline_per_hour = 2.0   # mean outages per hour (tunnels, car parks)
    offline_seconds = 90     # mean outage length
    outages = [[30, 60]]     # scripted: at 30 s of link time, 60 s offline

    [sim.groups.vans]
    devices = 800
    link = "cellular"

    [[sim.failures]]         # crash on start: the device reports failed, old image keeps running
    image = "sha256:…"       # digest (or pinned ref) it applies to; "" = any new image
    fraction = 0.05          # of devices, picked deterministically from the seed
    devices = ["sim-vans-00003"]

Invariant: a bad value is one `UsageError` naming the key; nothing starts half-configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.errors import UsageError

TOP_KEYS = {"image", "seed", "speed", "prefix", "poll_seconds", "report_hz", "apply_seconds", "chunk_kb",
            "connections", "links", "groups", "failures"}
LINK_KEYS = {"bandwidth_kbps", "latency_ms", "offline_per_hour", "offline_seconds", "outages"}


@dataclass(frozen=True)
class GroupSpec:
    name: str
    devices: int
    link: str = "default"


@dataclass(frozen=True)
class FailureRule:
    image: str = ""
    fraction: float = 0.0
    devices: tuple[str, ...] = ()


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


def _num(data: dict[str, Any], key: str, where: str, default: float, low: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise UsageError(f"config: {where}{key} must be a number ≥ {low:g}, not {value!r}")
    return float(value)


def _unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise UsageError(f"config: unknown key {where}{extra[0]}; known keys: {', '.join(sorted(known))}")


def parse_link(name: str, data: dict[str, Any]) -> LinkProfile:
    where = f"sim.links.{name}."
    _unknown(data, LINK_KEYS, where)
    outages = data.get("outages", [])
    if not isinstance(outages, list) or not all(isinstance(o, list) and len(o) == 2 for o in outages):
        raise UsageError(f"config: {where}outages must be a list of [at_seconds, seconds_offline] pairs")
    bandwidth = _num(data, "bandwidth_kbps", where, 2000, low=0.001) * 1000 / 8
    return LinkProfile(
        name, bandwidth, _num(data, "latency_ms", where, 100) / 1000, _num(data, "offline_per_hour", where, 0),
        _num(data, "offline_seconds", where, 60), tuple((float(a), float(b)) for a, b in outages),
    )


def parse_sim(data: dict[str, Any]) -> SimSpec:
    """Validate `config.sim` into a SimSpec."""
    if not data:
        raise UsageError("config has no [sim] section: add one (see config/example.toml) to describe the simulated fleet")
    _unknown(data, TOP_KEYS, "sim.")
    image = data.get("image", "")
    if not isinstance(image, str) or "@sha256:" not in image:
        raise UsageError(f"config: sim.image must be a digest-pinned image (repo@sha256:…), not {image!r}")
    links = {"default": LinkProfile()}
    for name, link in (data.get("links") or {}).items():
        links[name] = parse_link(name, dict(link))
    groups = []
    for name, g in (data.get("groups") or {}).items():
        _unknown(g, {"devices", "link"}, f"sim.groups.{name}.")
        link = g.get("link", "default")
        if link not in links:
            raise UsageError(f"config: sim.groups.{name}.link {link!r} is not a [sim.links.*] profile: {', '.join(sorted(links))}")
        groups.append(GroupSpec(name, int(_num(g, "devices", f"sim.groups.{name}.", 1)), link))
    if not groups:
        raise UsageError("config: [sim] needs at least one group, e.g. [sim.groups.vans] devices = 100")
    failures = []
    for i, f in enumerate(data.get("failures") or []):
        _unknown(f, {"image", "fraction", "devices"}, f"sim.failures[{i}].")
        fraction = _num(f, "fraction", f"sim.failures[{i}].", 0)
        if fraction > 1:
            raise UsageError(f"config: sim.failures[{i}].fraction must be between 0 and 1, not {fraction:g}")
        failures.append(FailureRule(str(f.get("image", "")), fraction, tuple(f.get("devices", []))))
    where = "sim."
    return SimSpec(
        image, tuple(groups), links, tuple(failures), int(_num(data, "seed", where, 1)),
        _num(data, "speed", where, 1.0, low=1e-6), str(data.get("prefix", "sim-")),
        _num(data, "poll_seconds", where, 2.0, low=0.01), _num(data, "report_hz", where, 4.0, low=0.1),
        _num(data, "apply_seconds", where, 3.0), int(_num(data, "chunk_kb", where, 256, low=1) * 1024),
        int(_num(data, "connections", where, 16, low=1)),
    )
