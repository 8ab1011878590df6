"""Typed configuration loaded from TOML, with platformdirs default locations.

Invariant: secrets are never stored in the config, only references to them
(`password_env` / `password_file`, `connection_string_env`). Every key has a sane default
so that `fleet-tui` with no config runs on the embedded defaults (local hub in the state
dir, embedded OCI store). Unknown keys are an error naming the key, so typos are caught.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from fleet_tui.errors import UsageError
from fleet_tui.secrets import SecretRef

APP = "fleet-tui"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


@dataclass(frozen=True)
class RegistryAuth:
    username: str = ""
    password_env: str | None = None
    password_file: str | None = None

    def password_ref(self) -> SecretRef:
        return SecretRef(env=self.password_env, file=self.password_file)


@dataclass(frozen=True)
class RegistryConfig:
    default: str = ""  # default registry host for the Images screen, e.g. "127.0.0.1:5000"
    repositories: tuple[str, ...] = ()  # repositories to list on the Images screen
    insecure: tuple[str, ...] = ()
    auth: dict[str, RegistryAuth] = field(default_factory=dict)
    timeout: float = 30.0
    retries: int = 4


@dataclass(frozen=True)
class HubConfig:
    kind: str = "local"  # "local" or "azure"
    path: str = ""  # local hub SQLite file; default: state dir
    connection_string_env: str = "IOTHUB_CONNECTION_STRING"
    group_tag: str = "fleetGroup"
    module: str = "scoring"  # the module whose image fleet-tui manages
    # azure call budget: the documented per-unit throttles of `tier` times `units`
    # (fleet_tui.hub.azure_retry.limits_for); a rate of 0 means "from the tier".
    tier: str = "S1"
    units: int = 1
    max_retries: int = 5  # retries of a throttled (429) or failed (5xx, network) call
    queries_per_minute: float = 0
    config_writes_per_minute: float = 0
    twin_updates_per_second: float = 0
    request_timeout: float = 30.0  # seconds per HTTP request

    def __post_init__(self) -> None:
        _check_hub(self)

    def local_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else state_dir() / "hub.sqlite"


HUB_TIERS = ("S1", "S2", "S3")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_hub(hub: "HubConfig") -> None:
    """One line naming the bad [hub] key: wrong types or ranges are caught at load time."""
    if hub.tier not in HUB_TIERS:
        raise UsageError(f"config: hub.tier must be one of {', '.join(HUB_TIERS)}, not {hub.tier!r}")
    if not isinstance(hub.units, int) or isinstance(hub.units, bool) or not 1 <= hub.units <= 200:
        raise UsageError(f"config: hub.units must be a whole number of IoT Hub units (1-200), not {hub.units!r}")
    if not isinstance(hub.max_retries, int) or isinstance(hub.max_retries, bool) or not 0 <= hub.max_retries <= 20:
        raise UsageError(f"config: hub.max_retries must be a whole number from 0 to 20, not {hub.max_retries!r}")
    for key in ("queries_per_minute", "config_writes_per_minute", "twin_updates_per_second"):
        value = getattr(hub, key)
        if not _number(value) or value < 0:
            raise UsageError(f"config: hub.{key} must be a number >= 0 (0 = the tier's limit), not {value!r}")
    if not _number(hub.request_timeout) or hub.request_timeout <= 0:
        raise UsageError(f"config: hub.request_timeout must be a number of seconds > 0, not {hub.request_timeout!r}")


@dataclass(frozen=True)
class CostConfig:
    per_gb: float = 400.0  # cellular data price per GB (10^9 bytes)
    currency: str = "$"


@dataclass(frozen=True)
class Config:
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    state_dir: str = ""
    sim: dict[str, Any] = field(default_factory=dict)  # parsed by fleet_tui.devices.simconfig
    rollout: dict[str, Any] = field(default_factory=dict)  # parsed by fleet_tui.rollout.policy
    source: str = ""  # the file this came from, for messages

    def state_path(self) -> Path:
        path = Path(self.state_dir).expanduser() if self.state_dir else state_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def with_insecure(self, hosts: list[str]) -> "Config":
        reg = RegistryConfig(**{**_asdict(self.registry), "insecure": tuple(self.registry.insecure) + tuple(hosts)})
        return Config(**{**_asdict(self), "registry": reg})


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(f"config: unknown key {where}{unknown[0]!s}; known keys: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UsageError(f"config: bad [{where.rstrip('.')}] section: {exc}") from None


def parse_config(data: dict[str, Any], source: str = "") -> Config:
    reg_data = dict(data.get("registry", {}))
    auth = {
        host: _build(RegistryAuth, dict(entry), f"registry.auth.{host}.")
        for host, entry in reg_data.pop("auth", {}).items()
    }
    registry = _build(RegistryConfig, reg_data, "registry.")
    registry = RegistryConfig(**{**_asdict(registry), "auth": auth})
    top = {k: v for k, v in data.items() if k not in ("registry", "hub", "cost")}
    cfg = _build(Config, top, "")
    return Config(
        **{
            **_asdict(cfg),
            "registry": registry,
            "hub": _build(HubConfig, dict(data.get("hub", {})), "hub."),
            "cost": _build(CostConfig, dict(data.get("cost", {})), "cost."),
            "source": source,
        }
    )


def load_config(path: str | Path | None = None) -> Config:
    """Load the config at `path`, or the default location if it exists, else defaults."""
    explicit = path is not None
    file = Path(path).expanduser() if path else default_config_path()
    if not file.exists():
        if explicit:
            raise UsageError(f"config file {file} does not exist; see config/example.toml")
        return Config()
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {file} is not valid TOML: {exc}") from None
    cfg = parse_config(data, str(file))
    if cfg.hub.kind not in ("local", "azure"):
        raise UsageError(f"config: hub.kind must be 'local' or 'azure', not {cfg.hub.kind!r}")
    return cfg
