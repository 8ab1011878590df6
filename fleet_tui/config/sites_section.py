"""The `[sites.NAME]` tables: sites behind a gateway cache and a metered uplink.

A site is a LAN of devices (a depot, a factory basement, a vehicle yard) behind one gateway
and one metered uplink. Its devices are the ones whose twin tag `[hub] site_tag` names the
site, plus any listed in `devices`. Devices of no site keep the per-device model: each pulls
over its own link at `[cost] per_gb`. What a site's devices pull crosses the uplink once per
blob when the gateway runs a cache (`cache = "distribution"`: a Distribution registry in
pull-through mode, as IoT Edge's nested gateway runs it; `"simulated"`: the simulated
fleet's own model of one, for the demo), and once per device without one (`"none"`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from fleet_tui import windows
from fleet_tui.config.rollout_section import Windows
from fleet_tui.config.sections import Section
from fleet_tui.config.units import ByteSize, Duration, Strs
from fleet_tui.errors import UsageError

CACHE_KINDS = ("distribution", "simulated", "none")


class UplinkSection(Section):
    per_gb: float | None = Field(None, ge=0, description="price of the uplink per GB (1 GB = 10^9 bytes); unset: `[cost] per_gb`")
    increment: ByteSize = Field(1, ge=1, description="billing increment: each rollout's uplink use is rounded up to a "
                                "multiple of it (`\"1 MB\"`; 1 = by the byte)")
    monthly_cap: ByteSize = Field(0, ge=0, description="bytes the plan allows per month (0 = no cap); a wave whose "
                                  "warm-up would cross it is not started")
    windows: Windows = Field((), description="when the uplink may be used (`[\"01:00-05:00\"]`): warm-ups run only "
                             "inside; `[]` = any time")
    timezone: str = Field("UTC", description="IANA time zone of `windows`")
    bandwidth: ByteSize = Field(1_000_000, ge=1, description="bytes per second the uplink carries (`\"2 MB\"`): "
                                "when a warm-up checks the cache again, and its ETA")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            windows.zone(name)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return name


class SiteSection(Section):
    cache: Literal["distribution", "simulated", "none"] = Field(
        "none", description="the gateway's cache: `distribution` (a registry in pull-through mode), `simulated` "
        "(the simulated fleet's gateway, for the demo) or `none` (every device pulls over the uplink itself)")
    cache_address: str = Field("", description="the cache as the site's devices reach it (`10.3.0.2:5000`): images are "
                               "deployed to them as `<cache_address>/<repository>@<digest>`")
    cache_url: str = Field("", description="the cache as fleet-tui reaches it to warm and check it "
                           "(`http://gateway-3:5000`); empty: `http://<cache_address>`")
    upstream_name: str = Field("", description="IoT Edge children behind a nested-edge parent: name images through it "
                               "(`$upstream:443`) instead of `cache_address`")
    devices: Strs = Field((), description="device ids of the site besides those whose `[hub] site_tag` names it")
    uplink: UplinkSection = Field(default_factory=UplinkSection, description="the site's metered uplink: `[sites.NAME.uplink]`")
    cache_ttl: Duration = Field(7 * 86400.0, gt=0, description="how long the cache keeps a blob it fetched "
                                "(Distribution 2.8's proxy: 7 days, fixed); a warm-up older than this counts as cold")

    @field_validator("cache_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and ("/" in value or " " in value):
            raise ValueError(f"{value!r} is not host[:port]; give the cache's address without a scheme or path")
        return value

    @model_validator(mode="after")
    def _cache_reachable(self) -> "SiteSection":
        if self.cache == "distribution" and not (self.cache_address or (self.cache_url and self.upstream_name)):
            raise ValueError("cache = \"distribution\" needs cache_address (host:port the devices pull from), or "
                             "upstream_name and cache_url for IoT Edge children behind a parent")
        return self

    def reach(self) -> str:
        """The URL fleet-tui warms and checks the cache at ("" without a cache address)."""
        if self.cache_url:
            return self.cache_url.rstrip("/")
        return f"http://{self.cache_address}" if self.cache_address else ""

    def ref_host(self) -> str:
        """The registry part of image references the site's devices are given."""
        return self.upstream_name or self.cache_address
