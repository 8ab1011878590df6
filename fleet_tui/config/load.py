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

from fleet_tui.config.errors import ENV_PREFIX, describe_errors
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


class ConfigInvalid(UsageError):
    """A config with one or more bad values: the first in the message (one line, with how many
    more there are); `config check` prints every one (`problems`)."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        more = len(problems) - 1
        hint = f"fleet-tui config check {source}" if source else "fleet-tui config check FILE"
        super().__init__(problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''}: `{hint}` lists "
                                        "them all)" if more else ""))


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
        raise ConfigInvalid(describe_errors(exc, overrides), source) from None
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
    return parse_config(read_toml(file), str(file.resolve()), environ)


BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def read_toml(file: Path) -> dict[str, Any]:
    """The TOML document in `file`, or one line naming the file and what is wrong with it:
    not a regular file, unreadable, empty, not UTF-8 (UTF-16 and binary files named as such),
    or not TOML (with the line and column tomllib gives)."""
    if file.is_dir():
        raise UsageError(f"config file {file} is a directory; give the path of a TOML file")
    try:
        raw = file.read_bytes()
    except PermissionError:
        raise UsageError(f"config file {file} cannot be read: permission denied; check its owner and mode") from None
    except OSError as exc:
        raise UsageError(f"config file {file} cannot be read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise UsageError(f"config file {file} is empty; write at least one setting (see `fleet-tui config show`), "
                         "or leave out -c to run on the defaults")
    encoding = next((name for bom, name in BOMS.items() if raw.startswith(bom)), None)
    if encoding:
        raise UsageError(f"config file {file} is {encoding} text; TOML must be UTF-8: save it as UTF-8")
    try:
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "a binary file" if b"\x00" in raw[:4096] else "not UTF-8 text"
        raise UsageError(f"config file {file} is {kind} (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                         "a config is TOML in UTF-8") from None
    if "\x00" in text:
        raise UsageError(f"config file {file} is a binary file (a NUL byte at offset {text.index(chr(0))}); "
                         "a config is TOML in UTF-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {file} is not valid TOML: {exc}") from None
