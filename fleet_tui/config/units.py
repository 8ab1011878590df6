"""Value types of the config that operators write as text: durations, sizes, thresholds.

Each is an `Annotated` pydantic type whose `Form` marker says, in words, what it accepts;
the same words appear in error messages and in docs/configuration.md, so they cannot
disagree. Parsing is strict: `"10 minutes"` is refused rather than guessed at.

- Duration: seconds as a number, or `"90s"`, `"10m"`, `"1h30m"`, `"2d"` → float seconds;
- ByteSize: bytes as a whole number, or `"5 GB"`, `"512 MiB"`, `"1.5kB"` → int bytes
  (SI units are powers of 1000, IEC units powers of 1024, as in `humanize` and docker);
- Threshold: a whole number (`3`) or a percentage (`"10%"`) → the text, normalised;
- Strs: a list of strings → tuple (configs are immutable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator


@dataclass(frozen=True)
class Form:
    """What a value accepts, in the operator's words."""

    text: str


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGT]?i?B|B)?")
_SIZE_UNITS = {
    "B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(value: Any) -> Any:
    """`"1h30m"` → 5400.0; numbers pass through (seconds); anything else is left for
    pydantic to refuse with the field's form."""
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        if text and _DURATION_PART.sub("", text) == "":
            return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        raise ValueError(f"{value!r} is not a duration")
    if _is_number(value):
        return float(value)
    return value


def parse_size(value: Any) -> Any:
    """`"5 GB"` → 5_000_000_000; whole numbers pass through (bytes)."""
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if not match or (match.group(2) or "B") not in _SIZE_UNITS:
            raise ValueError(f"{value!r} is not a size")
        number, unit = float(match.group(1)), match.group(2) or "B"
        total = number * _SIZE_UNITS[unit]
        if total != int(total):
            raise ValueError(f"{value!r} is not a whole number of bytes")
        return int(total)
    return value


def parse_threshold(value: Any) -> Any:
    """`3` or `"3"` → "3"; `"10%"` → "10%"; a percentage must lie in 0-100."""
    if _is_number(value) and float(value) == int(value):
        value = str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return text
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if match and float(match.group(1)) <= 100:
            return f"{float(match.group(1)):g}%"
        raise ValueError(f"{value!r} is not a count or a percentage")
    return value


def to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


DURATION_FORM = "a duration (\"90s\", \"10m\", \"1h30m\" or seconds)"
SIZE_FORM = "a size (\"5 GB\", \"512 MiB\" or bytes)"
THRESHOLD_FORM = "a whole number like 3 or a percentage like \"10%\""

Duration = Annotated[float, BeforeValidator(parse_duration), Form(DURATION_FORM)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Form(SIZE_FORM)]
Threshold = Annotated[str, BeforeValidator(parse_threshold), Form(THRESHOLD_FORM)]
Strs = Annotated[tuple[str, ...], BeforeValidator(to_tuple), Form("a list of strings")]
