"""The `[sim]` section: the simulated fleet `fleet-tui sim up` starts (pydantic models).

`fleet_tui.devices.simconfig.parse_sim` turns a validated `SimSection` into the runtime
`SimSpec`; everything an operator can get wrong is refused here, at load time, with one
line naming the key. Cross-field rules: at least one group; a group's `link` names a
`[sim.links.*]` profile (or `default`); `image` is digest-pinned (what devices run must
not move under them).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from fleet_tui.config.sections import Section
from fleet_tui.config.units import Duration, Form, Strs


class LinkSection(Section):
    """A link profile, referred to by groups: `[sim.links.NAME]`."""

    bandwidth_kbps: float = Field(2000, gt=0, description="link bandwidth in kilobits per second")
    latency_ms: float = Field(100, ge=0, description="round trip per request, milliseconds")
    offline_per_hour: float = Field(0, ge=0, description="mean random outages per hour (tunnels, car parks)")
    offline_seconds: float = Field(60, ge=0, description="mean outage length in seconds")
    outages: tuple[tuple[float, float], ...] = Field(
        (), description="scripted outages: `[[at_seconds, seconds_offline], …]` of link time")

    @field_validator("outages", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, list):
            return tuple(tuple(float(x) for x in p) if isinstance(p, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in p) else p for p in value)
        return value


class GroupSection(Section):
    """A group of simulated devices: `[sim.groups.NAME]`."""

    devices: int = Field(1, ge=1, le=10_000_000, description="devices in the group")
    link: str = Field("default", description="link profile name (`[sim.links.NAME]`), or `default`")
    platform: Annotated[str, Form("os/arch[/variant], e.g. \"linux/arm64\"")] = Field(
        "linux/amd64", pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$",
        description="the devices' platform: each pulls its own platform of a multi-platform image")
    site: str = Field("", description="the `[sites.NAME]` the group's devices are at: registered with the "
                      "`[hub] site_tag` tag naming it (\"\": no site)")


class FailureSection(Section):
    """A failure rule: `[[sim.failures]]`; the old image keeps running."""

    image: str = Field("", description="digest (or pinned ref) it applies to; empty = any new image")
    fraction: float = Field(0.0, ge=0, le=1, description="share of devices that fail, picked from the seed")
    devices: Strs = Field((), description="device ids that always fail")
    kind: Literal["start", "download"] = Field("start", description="`start`: the module exits on start; "
                                               "`download`: pulling a layer fails")
    attempts: int = Field(0, ge=0, description="only the first N attempts at the image fail (0 = every one); "
                          "an attempt is each desired `version` of the module (a retry)")


class SimSection(Section):
    image: Annotated[str, Form("a digest-pinned image ref, repo@sha256:…")] = Field(
        description="what every device runs at start")
    seed: int = Field(1, description="same seed → same links, outages and failures")
    speed: float = Field(1.0, gt=0, description="device seconds per real second (tests use 50+)")
    prefix: str = Field("sim-", description="device ids are `<prefix><group>-<nnnnn>`")
    poll_seconds: Duration = Field(2.0, gt=0, description="how often the fleet reads desired state from the hub")
    report_hz: float = Field(4.0, ge=0.1, description="how often reports are flushed to the hub, per second")
    heartbeat: Duration = Field(60.0, gt=0, le=240, description=(
        "real seconds between re-reports of an unchanged device; under the local hub's 300 s offline window"))
    apply_seconds: Duration = Field(3.0, ge=0, description="device time from downloaded to running")
    chunk_kb: int = Field(256, ge=1, description="kilobytes per ranged request (a cut wastes at most one)")
    connections: int = Field(16, ge=1, le=1024, description="registry connections shared by the whole fleet")
    links: dict[str, LinkSection] = Field(default_factory=dict, description="link profiles: `[sim.links.NAME]`")
    groups: dict[str, GroupSection] = Field(default_factory=dict, description="device groups: `[sim.groups.NAME]`")
    failures: tuple[FailureSection, ...] = Field((), description="crash-on-start rules: `[[sim.failures]]`")

    @field_validator("failures", mode="before")
    @classmethod
    def _failures_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if "@sha256:" not in value:
            raise ValueError(f"must be a digest-pinned image (repo@sha256:…), not {value!r}")
        return value

    @model_validator(mode="after")
    def _groups_and_links(self) -> "SimSection":
        if not self.groups:
            raise ValueError("[sim] needs at least one group, e.g. [sim.groups.vans] devices = 100")
        for name, group in self.groups.items():
            if group.link != "default" and group.link not in self.links:
                known = ", ".join(sorted({"default", *self.links}))
                raise ValueError(f"sim.groups.{name}.link {group.link!r} is not a [sim.links.*] profile: {known}")
        return self
