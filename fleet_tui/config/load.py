"""Load the config: TOML file (or defaults) + `FLEET_TUI_*` environment overrides → `Config`.

Precedence, lowest first: defaults, the file (`-c FILE`, else `$FLEET_TUI_CONFIG`, else
the user config dir), environment variables. An override names a key with `__` between
levels: `FLEET_TUI_HUB__KIND=azure`, `FLEET_TUI_COST__PER_GB=250`,
`FLEET_TUI_STATE_DIR=/srv/fleet`; its value is read as a TOML value when it is one
(`250`, `true`, `["a", "b"]`) and as a string otherwise.

Relative paths in a file (`state_dir`, `hub.path`) are relative to the file's directory,
so detached engines (which run with another working directory) see the same files.

Invariant: any problem is one `UsageError` line naming the key (and the variable, for an
override) and the accepted form; nothing half-loaded is returned.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from fleet_tui.config.errors import ENV_PREFIX, describe_error
from fleet_tui.config.model import Config, default_config_path
from fleet_tui.errors import UsageError

ENV_CONFIG = "FLEET_TUI_CONFIG"
# FLEET_TUI_* variables that are not config keys.
ENV_RESERVED = {ENV_CONFIG, "FLEET_TUI_DEBUG", "FLEET_TUI_ENGINE"}


def env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], Any]:
    """`{("hub", "kind"): "azure", …}` from FLEET_TUI_* variables."""
    out: dict[tuple[str, ...], Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        if not all(path):
            raise UsageError(f"environment variable {name} does not name a config key; use e.g. FLEET_TUI_HUB__KIND")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[path] = value
    return out


def _apply(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {} if child is None else child
        if not isinstance(child, dict):
            raise UsageError(f"environment variable {ENV_PREFIX}{'__'.join(path).upper()}: {part} is not a section")
        node = child
    node[path[-1]] = value


def _relative_to(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not value.startswith("~") and not Path(value).is_absolute():
        return str(base / value)
    return value


def parse_config(data: dict[str, Any], source: str = "", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML document (plus overrides from `environ`) into a Config."""
    data = {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}
    overrides = env_overrides(environ if environ is not None else {})
    for path, value in overrides.items():
        _apply(data, path, value)
    if source:
        base = Path(source).parent
        data["state_dir"] = _relative_to(base, data.get("state_dir", ""))
        if isinstance(data.get("hub"), dict) and "path" in data["hub"]:
            data["hub"]["path"] = _relative_to(base, data["hub"]["path"])
    try:
        return Config(**data, source=source, env_keys=tuple(".".join(p) for p in overrides))
    except ValidationError as exc:
        raise UsageError(describe_error(exc, overrides)) from None
    except TypeError as exc:  # a non-table where a section belongs, e.g. `hub = 3`
        raise UsageError(f"config: {exc}") from None


def config_file(path: str | Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read and whether the operator named it (then it must exist)."""
    if path:
        return Path(path).expanduser(), True
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG]).expanduser(), True
    return default_config_path(), False


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the config at `path` (or the default location when it exists), with overrides."""
    environ = os.environ if environ is None else environ
    file, explicit = config_file(path, environ)
    if not file.exists():
        if explicit:
            raise UsageError(f"config file {file} does not exist; see config/example.toml or `fleet-tui config show`")
        return parse_config({}, "", environ)
    try:
        data = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {file} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {file} cannot be read: {exc.strerror}") from None
    return parse_config(data, str(file.resolve()), environ)
