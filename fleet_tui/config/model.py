"""The whole configuration: one frozen, strictly typed model (pydantic v2).

Every key has a default, so `fleet-tui` with no config file runs on the embedded
defaults (local hub and journal in the state directory, embedded OCI store). Paths
resolve once, here: `state_path()` for the state directory, `hub_path()` for the local
hub, so no caller falls back to the platform default behind the config's back.
"""

from __future__ import annotations

import re
from pathlib import Path

import platformdirs
from pydantic import Field, field_validator

from fleet_tui.config.journal_section import JournalSection
from fleet_tui.config.rollout_section import RolloutSection
from fleet_tui.config.sections import (
    CostConfig,
    HubConfig,
    NotifyConfig,
    RebaseConfig,
    RegistryConfig,
    Section,
)
from fleet_tui.config.sim_section import SimSection
from fleet_tui.config.sites_section import SiteSection

APP = "fleet-tui"
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a tag value and part of deployment ids


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


class Config(Section):
    state_dir: str = Field(
        "", description="where fleet-tui keeps its state (local hub, rollout journal, layer index, logs); "
        "empty: the platform state directory, e.g. `~/.local/state/fleet-tui`")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="registries: `[registry]`")
    hub: HubConfig = Field(default_factory=HubConfig, description="the fleet hub: `[hub]`")
    cost: CostConfig = Field(default_factory=CostConfig, description="data prices: `[cost]`")
    sim: SimSection | None = Field(None, description="the simulated fleet of `fleet-tui sim up`: `[sim]`")
    rollout: RolloutSection = Field(default_factory=RolloutSection, description="rollout policy defaults: `[rollout]`")
    rebase: RebaseConfig = Field(default_factory=RebaseConfig, description="rebases: `[rebase]`")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="rollout notifications: `[notify]`")
    journal: JournalSection = Field(default_factory=JournalSection, description="the rollout journal: `[journal]` "
                                    "(SQLite in the state directory, or a team's PostgreSQL)")
    sites: dict[str, SiteSection] = Field(default_factory=dict, description="sites behind a gateway cache and a metered "
                                          "uplink: `[sites.NAME]` (devices of no site pull over their own link)")
    source: str = Field("", exclude=True, description="the file this came from, for messages")
    env_keys: tuple[str, ...] = Field((), exclude=True, description="keys set from FLEET_TUI_* variables")

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: dict[str, SiteSection]) -> dict[str, SiteSection]:
        owner: dict[str, str] = {}
        for name, site in sites.items():
            if not SITE_NAME.fullmatch(name):
                raise ValueError(f"site name {name!r} is invalid: use lowercase letters, digits and - (it becomes part of tag values and deployment ids)")
            for device in site.devices:
                if device in owner:
                    raise ValueError(f"device {device!r} is listed in sites {owner[device]!r} and {name!r}; a device "
                                     "belongs to one site")
                owner[device] = name
        return sites

    def state_path(self) -> Path:
        """The state directory (created on first use)."""
        path = Path(self.state_dir).expanduser() if self.state_dir else state_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def hub_path(self) -> Path:
        """The local hub's SQLite file: `[hub] path`, else `hub.sqlite` in the state directory."""
        if self.hub.path:
            return Path(self.hub.path).expanduser()
        return self.state_path() / "hub.sqlite"

    def with_insecure(self, hosts: list[str]) -> "Config":
        if not hosts:
            return self
        registry = self.registry.model_copy(update={"insecure": tuple(self.registry.insecure) + tuple(hosts)})
        return self.model_copy(update={"registry": registry})
