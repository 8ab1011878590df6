"""The whole configuration: one frozen, strictly typed model (pydantic v2).

Every key has a default, so `fleet-tui` with no config file runs on the embedded
defaults (local hub and journal in the state directory, embedded OCI store). Paths
resolve once, here: `state_path()` for the state directory, `hub_path()` for the local
hub, so no caller falls back to the platform default behind the config's back.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import Field

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

APP = "fleet-tui"


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
    source: str = Field("", exclude=True, description="the file this came from, for messages")
    env_keys: tuple[str, ...] = Field((), exclude=True, description="keys set from FLEET_TUI_* variables")

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
