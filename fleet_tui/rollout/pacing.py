"""Pacing of a rollout: a money or byte budget, a tagging rate, maintenance windows.

Pure functions of the policy and of facts the journal holds (when devices were tagged,
how many succeeded) with `now` passed in, so the engine, `rollout status` and the console
compute the same answers and a resumed engine continues where the killed one stopped.

- Budget (`budget = "$50"` or `"5 GB"`): money is converted to bytes with `[cost] per_gb`
  when the rollout is created. Before a wave starts, spend so far (per tagged device the
  larger of its plan and what it reported) plus the wave's planned bytes must stay within
  the budget, or the rollout halts before tagging it. Plans are conservative: bytes a
  device did not need (layers it already held) are never counted as saved budget.
- Rate (AWS IoT Jobs' rollout config): at most `rate` devices tagged in any 60 s, raised by
  `rate_factor` each time another `rate_every` devices succeeded (exponential rollout);
  `0` means no limit. Devices are spaced 60/rate seconds apart (a poll tags what the time
  since the last tagging allows), never more than `rate` in any 60 s.
- Windows (`"22:00-05:00"`, in the group's time zone; an end before the start crosses
  midnight): waves start and devices are tagged only inside one; devices already told to
  update carry on when a window closes, and their gate keeps being judged.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet_tui.errors import UsageError

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")
MONEY = re.compile(r"^\s*([^\d\s.,+-]{1,8})\s*(\d+(?:\.\d+)?)\s*$|^\s*(\d+(?:\.\d+)?)\s*([^\d\s.,+-]{1,8})\s*$")
RATE_SPAN_S = 60.0


# --- budget ------------------------------------------------------------------------------
def budget_bytes(text: str, per_gb: float, currency: str) -> int | None:
    """`"$50"` / `"50 $"` → bytes at `per_gb`; `"5 GB"` → bytes; `""` → None (no budget)."""
    from fleet_tui.config.units import parse_size

    text = (text or "").strip()
    if not text:
        return None
    money = MONEY.match(text)
    if money and not re.search(r"i?B$", text):
        symbol = money.group(1) or money.group(4)
        amount = float(money.group(2) or money.group(3))
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
    money = MONEY.match(text or "")
    symbol = (money.group(1) or money.group(4)) if money and not re.search(r"i?B$", text) else "$"
    budget_bytes(text, 1.0, symbol)


def budget_check(budget: int | None, spent: int, wave_plan: int) -> str:
    """'' when the wave fits; otherwise why it does not (bytes; the caller adds money)."""
    if budget is None or spent + wave_plan <= budget:
        return ""
    return f"{spent + wave_plan} > {budget}"


# --- rate --------------------------------------------------------------------------------
MAX_RATE = 1e9  # devices per minute: "unlimited" for any fleet, and a float


def current_rate(rate: float, factor: float, every: int, succeeded: int) -> float:
    """Devices per minute now (0: unlimited): `rate × factor^(succeeded // every)`."""
    if rate <= 0:
        return 0.0
    if every > 0 and factor > 1:
        steps = succeeded // every  # capped: 2 ** (50,000 // 10) overflows a float
        return rate * factor ** steps if steps * math.log(factor) < math.log(MAX_RATE / rate) else MAX_RATE
    return rate


def rate_allowance(rate: float, tag_times: Sequence[float], now: float) -> int:
    """Devices that may be tagged at `now` given when earlier ones were (unix times)."""
    if rate <= 0:
        return 1 << 30
    recent = sum(1 for t in tag_times if now - t < RATE_SPAN_S)
    room = math.floor(rate) - recent
    if not tag_times:
        return max(0, min(room, max(1, math.floor(rate / RATE_SPAN_S))))
    gap = now - max(tag_times)
    return max(0, min(room, math.floor(rate * gap / RATE_SPAN_S + 1e-9)))


# --- windows -----------------------------------------------------------------------------
def parse_window(text: str) -> tuple[int, int]:
    """`"22:00-05:00"` → (1320, 300) minutes after midnight."""
    match = WINDOW.match(str(text).strip())
    if not match:
        raise UsageError(f"maintenance window {text!r} is invalid: give HH:MM-HH:MM in 24-hour time, e.g. \"22:00-05:00\"")
    h1, m1, h2, m2 = map(int, match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > 24 * 60 or start == end:
        raise UsageError(f"maintenance window {text!r} is invalid: its start and end must differ and lie within a day")
    return start, end


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"time zone {name!r} is unknown: give an IANA name like \"Europe/Berlin\" or \"UTC\"") from None


def window_state(windows: Iterable[str], tz: str, now: float) -> tuple[bool, float]:
    """(open now, seconds until that changes). No windows: always open (change: inf)."""
    spans = [parse_window(w) for w in windows]
    if not spans:
        return True, math.inf
    local = datetime.fromtimestamp(now, zone(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    intervals: list[tuple[float, float]] = []  # unix times: wall-clock spans placed by the zone's own offsets
    for day in (-1, 0, 1, 2):
        base = midnight + timedelta(days=day)
        for start, end in spans:
            length = (end - start) % (24 * 60) or 24 * 60
            intervals.append((_at(base, start, local), _at(base, start + length, local)))
    inside = [b for a, b in intervals if a <= now < b]
    if inside:
        close = max(inside)
        for a, b in sorted(intervals):  # windows that overlap or touch extend the open time
            if a <= close < b:
                close = b
        return True, close - now
    return False, min(a for a, _ in intervals if a > now) - now


def _at(midnight: datetime, minutes: int, local: datetime) -> float:
    return (midnight + timedelta(minutes=minutes)).replace(tzinfo=local.tzinfo).timestamp()


def span_text(seconds: float) -> str:
    """3h12m, 5m, 40s."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{secs}s"
