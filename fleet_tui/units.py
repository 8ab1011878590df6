"""Quantities operators read and write as text: sizes, money, durations, thresholds, budgets.

The one place each is parsed and formatted, so the config, the CLI, the console and the
engine's reasons say the same thing the same way. Pure functions, no I/O, no imports from
the rest of fleet-tui but `errors` (the bottom floor: every package may use it).

- sizes: `"5 GB"`, `"512 MiB"`, `"1.5kB"` or whole bytes; SI units are powers of 1000, IEC
  units powers of 1024 (as in `humanize` and docker). Formatted with one decimal, SI.
- money: bytes at a price per GB (1 GB = 10^9 bytes): `$5.70`, `$58,680` (no cents from $100).
- durations: seconds, or `"90s"`, `"10m"`, `"1h30m"`, `"2d"`; formatted as a clock
  (`1h05m`, `2m05s`, `40s`) or a span (`3h12m`, `5m`, `40s`).
- thresholds: a whole number (`3`) or a percentage (`"10%"`), normalised as text.
- budgets: money in the configured currency (`"$50"`, `"50 $"`) or a size (`"5 GB"`).

Parsing is strict: `"10 minutes"` is refused rather than guessed at. The `parse_*`
functions leave a value of the wrong type as it is (the typed config refuses it with the
field's own words); text they cannot read raises ValueError.
"""

from __future__ import annotations

import re
from typing import Any

import humanize

from fleet_tui.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGT]?i?B|B)?")
_SIZE_UNITS = {
    "B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}
MONEY = re.compile(r"^\s*([^\d\s.,+-]{1,8})\s*(\d+(?:\.\d+)?)\s*$|^\s*(\d+(?:\.\d+)?)\s*([^\d\s.,+-]{1,8})\s*$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- parsing -------------------------------------------------------------------------------
def parse_duration(value: Any) -> Any:
    """`"1h30m"` → 5400.0; numbers pass through (seconds)."""
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


def budget_bytes(text: str, per_gb: float, currency: str) -> int | None:
    """`"$50"` / `"50 $"` → bytes at `per_gb`; `"5 GB"` → bytes; `""` → None (no budget)."""
    text = (text or "").strip()
    if not text:
        return None
    money_match = MONEY.match(text)
    if money_match and not re.search(r"i?B$", text):
        symbol = money_match.group(1) or money_match.group(4)
        amount = float(money_match.group(2) or money_match.group(3))
        if symbol != currency:
            raise UsageError(f"rollout budget {text!r} is in {symbol!r} but [cost] prices data in {currency!r}; "
                             f"give it as {currency}{amount:g} or as a size like \"5 GB\"")
        if per_gb <= 0:
            raise UsageError(f"rollout budget {text!r} is money but [cost] per_gb is 0; give the budget as a size (\"5 GB\")")
        return int(amount / per_gb * 1e9)
    try:
        return int(parse_size(text))
    except (ValueError, TypeError):
        raise UsageError(f"rollout budget {text!r} is invalid: give money like \"{currency}50\" or a size like "
                         "\"5 GB\"") from None


def check_budget_form(text: str) -> None:
    """Refuse a budget that is neither money nor a size (the currency is checked at use)."""
    money_match = MONEY.match(text or "")
    symbol = (money_match.group(1) or money_match.group(4)) if money_match and not re.search(r"i?B$", text) else "$"
    budget_bytes(text, 1.0, symbol)


# --- formatting ----------------------------------------------------------------------------
def size(n: int | None) -> str:
    if n is None:
        return "-"
    if abs(n) < 1000:
        return f"{n} B"  # humanize says "0 Bytes"; keep the unit as short as kB, MB
    return humanize.naturalsize(n, binary=False, format="%.1f")


def money(nbytes: int, per_gb: float, currency: str = "$") -> str:
    """What `nbytes` cost at `per_gb`: `$5.70`, `$58,680` (no cents from 100 up)."""
    value = nbytes / 1e9 * per_gb
    if value >= 100:
        return f"{currency}{value:,.0f}"
    return f"{currency}{value:,.2f}"


def priced(nbytes: int, per_gb: float, currency: str = "$") -> str:
    """Money when there is a price, else the size (a budget given in bytes)."""
    return money(nbytes, per_gb, currency) if per_gb else f"{nbytes:,} B"


def clock(seconds: float | None) -> str:
    """A duration as a clock: `1h05m`, `2m05s`, `40s`; `—` when unknown."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def span(seconds: float) -> str:
    """A wait in its largest units: `3h12m`, `5m`, `40s`."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def plural(n: int, noun: str, many: str = "") -> str:
    """`1 device`, `3 devices`, `1,000 devices`."""
    return f"{n:,} {noun if n == 1 else many or noun + 's'}"
