"""Value types of the config that operators write as text: durations, sizes, thresholds.

Each is an `Annotated` pydantic type over a parser of fleet_tui.units, whose `Form` marker
says, in words, what it accepts;
the same words appear in error messages and in docs/configuration.md, so they cannot
disagree. Parsing is strict: `"10 minutes"` is refused rather than guessed at.

- Duration: seconds as a number, or `"90s"`, `"10m"`, `"1h30m"`, `"2d"` → float seconds;
- ByteSize: bytes as a whole number, or `"5 GB"`, `"512 MiB"`, `"1.5kB"` → int bytes
  (SI units are powers of 1000, IEC units powers of 1024, as in `humanize` and docker);
- Threshold: a whole number (`3`) or a percentage (`"10%"`) → the text, normalised;
- Strs: a list of strings → tuple (configs are immutable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator

from fleet_tui.units import parse_duration, parse_size, parse_threshold


@dataclass(frozen=True)
class Form:
    """What a value accepts, in the operator's words."""

    text: str


def to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


DURATION_FORM = "a duration (\"90s\", \"10m\", \"1h30m\" or seconds)"
SIZE_FORM = "a size (\"5 GB\", \"512 MiB\" or bytes)"
THRESHOLD_FORM = "a whole number like 3 or a percentage like \"10%\""

Duration = Annotated[float, BeforeValidator(parse_duration), Form(DURATION_FORM)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Form(SIZE_FORM)]
Threshold = Annotated[str, BeforeValidator(parse_threshold), Form(THRESHOLD_FORM)]
Strs = Annotated[tuple[str, ...], BeforeValidator(to_tuple), Form("a list of strings")]
