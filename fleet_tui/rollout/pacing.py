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
- Windows (fleet_tui.windows, in the group's time zone): waves start and devices are tagged
  only inside one; devices already told to update carry on when a window closes, and their
  gate keeps being judged.

Budgets and windows are parsed in fleet_tui.units and fleet_tui.windows (the config checks
them there too); this module holds the rules that need the journal's facts.
"""

from __future__ import annotations

import math
from typing import Sequence

RATE_SPAN_S = 60.0


# --- budget ------------------------------------------------------------------------------
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
