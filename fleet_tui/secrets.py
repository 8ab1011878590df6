"""Keep secrets off screens, logs, journals and exceptions.

Invariant: a secret value is only ever held in a `Secret` (whose repr/str is masked) or
resolved at the last moment from its *reference* (env var name or file path). Every text
that leaves the process through a log or an error passes `redact()`, which masks every
secret value this process has resolved so far, plus anything shaped like a connection
string key or a basic-auth header.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fleet_tui.errors import UsageError

_known: set[str] = set()
_lock = threading.Lock()
MASK = "****"

_PATTERNS = [
    re.compile(r"(SharedAccessKey=)[^;\s\"']+", re.I),
    re.compile(r"(Authorization:\s*(?:Basic|Bearer)\s+)\S+", re.I),
    re.compile(r"(sig=)[^&\s\"']+", re.I),
    re.compile(r"(\"?password\"?\s*[:=]\s*\"?)[^\"',\s}]+", re.I),
]


class Secret:
    """A secret value; prints as `****`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def remember(value: str) -> None:
    """Register a value that must never be printed."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Mask every known secret and secret-shaped substring in `text`."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable name or a file path, never the value."""

    env: str | None = None
    file: str | None = None

    def resolve(self, what: str) -> Secret:
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise UsageError(
                    f"{what}: environment variable {self.env} is not set; export it before running fleet-tui"
                )
            return Secret(value.strip())
        if self.file:
            path = Path(self.file).expanduser()
            try:
                return Secret(path.read_text().strip())
            except OSError as exc:
                raise UsageError(f"{what}: cannot read secret file {path}: {exc.strerror}") from None
        raise UsageError(f"{what}: no secret reference given (set an *_env or *_file key)")
