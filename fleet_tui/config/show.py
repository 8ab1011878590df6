"""The effective configuration as TOML (`fleet-tui config show`) or JSON.

Secrets are references in the model, so nothing here can print one; keys whose value is
unset (None) are left out, since TOML has no null.
"""

from __future__ import annotations

from typing import Any

import tomli_w

from fleet_tui.config.model import Config


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def effective(config: Config) -> dict[str, Any]:
    return _clean(config.model_dump(mode="python"))


def as_toml(config: Config) -> str:
    head = [f"# effective fleet-tui configuration (file: {config.source or 'none, defaults'})"]
    if config.env_keys:
        head.append("# set from the environment: " + ", ".join(config.env_keys))
    return "\n".join(head) + "\n" + tomli_w.dumps(effective(config))
