"""Maintenance windows: `"22:00-05:00"` in an IANA time zone, parsed and evaluated.

Rollouts (waves start and devices are told only inside one), metered links and site
uplinks share these rules, so they live on the bottom floor. An end before the start
crosses midnight; windows that overlap or touch extend each other; wall-clock spans are
placed by the zone's own offsets, so a window across a DST change keeps its local times.
Pure functions of the text and `now` (unix time).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet_tui.errors import UsageError

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


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
