"""Link model of a simulated device: bandwidth, latency and outages (a van in a tunnel, a
truck in an underground car park), deterministic with a seed; plus the simulation clock.

Two clocks, so that a seed gives the same outcome however the event loop schedules tasks:
- `Link.busy` counts the seconds the link spent on requests and transfers. Cuts during a
  download are scheduled on it (Poisson, `offline_per_hour`, and scripted `outages` at
  given busy seconds), so where a blob is cut — in bytes — depends only on the seed and on
  what the device transferred before, never on wall-clock jitter;
- `IdleOutages` are offline windows in fleet time (seconds since the fleet started, scaled
  by `speed`) while a device is idle, drawn from their own random stream.
`SimClock.sleep` turns device seconds into real sleeps divided by `speed`.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class LinkProfile:
    name: str = "default"
    bandwidth: float = 250_000.0  # bytes per second (2 Mbit/s)
    latency: float = 0.1  # seconds per request round trip
    offline_per_hour: float = 0.0  # mean outages per hour
    offline_seconds: float = 60.0  # mean outage length
    outages: tuple[tuple[float, float], ...] = ()  # scripted (at busy second, seconds offline)


class Link:
    """One device's link. `advance(seconds)` returns (seconds before a cut, outage length)."""

    __slots__ = ("profile", "rng", "busy", "_scripted", "_random_next")

    def __init__(self, profile: LinkProfile, rng: random.Random) -> None:
        self.profile = profile
        self.rng = rng
        self.busy = 0.0
        self._scripted = sorted(profile.outages)
        self._random_next = self._draw(0.0)

    def _draw(self, after: float) -> float:
        rate = self.profile.offline_per_hour / 3600.0
        return after + self.rng.expovariate(rate) if rate > 0 else INF

    def _outage_length(self) -> float:
        return max(1.0, self.rng.expovariate(1.0 / self.profile.offline_seconds)) if self.profile.offline_seconds > 0 else 1.0

    @property
    def next_cut(self) -> float:
        scripted = self._scripted[0][0] if self._scripted else INF
        return min(scripted, self._random_next)

    def advance(self, seconds: float) -> tuple[float, float]:
        """Spend `seconds` of link time; if a cut falls inside, stop there and return
        (seconds spent, outage seconds) — else (seconds, 0.0)."""
        cut = self.next_cut
        if self.busy + seconds < cut:
            self.busy += seconds
            return seconds, 0.0
        spent = max(0.0, cut - self.busy)
        self.busy = cut
        if self._scripted and self._scripted[0][0] == cut:
            outage = self._scripted.pop(0)[1]
        else:
            outage = self._outage_length()
            self._random_next = self._draw(cut)
        return spent, outage

    def transfer(self, nbytes: int) -> tuple[int, float, float]:
        """Receive `nbytes`: (bytes delivered before any cut, seconds, outage seconds)."""
        spent, outage = self.advance(nbytes / self.profile.bandwidth)
        if not outage:
            return nbytes, spent, 0.0
        return min(nbytes, int(spent * self.profile.bandwidth)), spent, outage


class IdleOutages:
    """Offline windows in fleet time for an idle device, generated lazily in order."""

    __slots__ = ("profile", "rng", "start", "end")

    def __init__(self, profile: LinkProfile, rng: random.Random) -> None:
        self.profile = profile
        self.rng = rng
        self.start, self.end = INF, INF
        if profile.offline_per_hour > 0:
            self.start = rng.expovariate(profile.offline_per_hour / 3600.0)
            self.end = self.start + max(1.0, rng.expovariate(1.0 / max(profile.offline_seconds, 1e-9)))

    def window(self, now: float) -> tuple[float, float]:
        """The current or next (start, end) window at fleet time `now`."""
        while self.end <= now:
            self.start = self.end + self.rng.expovariate(self.profile.offline_per_hour / 3600.0)
            self.end = self.start + max(1.0, self.rng.expovariate(1.0 / max(self.profile.offline_seconds, 1e-9)))
        return self.start, self.end


class SimClock:
    """Fleet time: device seconds pass `speed` times faster than real ones."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    def real(self, device_seconds: float) -> float:
        return device_seconds / self.speed

    async def sleep(self, device_seconds: float) -> None:
        await asyncio.sleep(device_seconds / self.speed if device_seconds > 0 else 0)
