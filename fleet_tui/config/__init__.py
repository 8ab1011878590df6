"""Typed configuration: TOML file + `FLEET_TUI_*` overrides, validated by pydantic models.

Invariant: secrets are never stored in the config, only references to them
(`password_env` / `password_file`, `connection_string_env`). Every key has a sane default;
a wrong type, range, enum value or unknown key is one `UsageError` line naming the key and
what it accepts. docs/configuration.md is generated from these models (`reference.py`).
"""

from fleet_tui.config.load import load_config, parse_config
from fleet_tui.config.model import APP, Config, default_config_path, state_dir
from fleet_tui.config.rollout_section import RolloutSection
from fleet_tui.config.sections import (
    HUB_TIERS,
    CostConfig,
    HubConfig,
    RegistryAuth,
    RegistryConfig,
)
from fleet_tui.config.sim_section import (
    FailureSection,
    GroupSection,
    LinkSection,
    SimSection,
)

__all__ = [
    "APP", "HUB_TIERS", "Config", "CostConfig", "FailureSection", "GroupSection", "HubConfig", "LinkSection",
    "RegistryAuth", "RegistryConfig", "RolloutSection", "SimSection", "default_config_path", "load_config",
    "parse_config", "state_dir",
]
