"""A background thread that keeps the latest snapshot of something slow (dolphie/memray style).

`Sampler(fetch, interval)` calls `fetch()` every `interval` seconds on its own daemon thread
and keeps the newest result. The UI re-reads `latest()` on a timer at a few Hz and redraws
only when `version` moved, so a rollout with a million progress events costs the UI a few
redraws a second, not one message per event.

Invariants: the UI thread never calls `fetch`; `latest()` never blocks on I/O (one lock,
held only to swap a reference); a failing fetch keeps the last good value and records the
error's one line in `error`; `stop()` returns promptly (the thread waits on an Event).
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

from fleet_tui.errors import FleetError

T = TypeVar("T")


class Sampler(Generic[T]):
    def __init__(self, fetch: Callable[[], T], interval: float = 0.5, name: str = "sampler") -> None:
        self._fetch = fetch
        self.interval = interval
        self._lock = threading.Lock()
        self._value: T | None = None
        self.version = 0  # bumped on every successful fetch
        self.error = ""  # one line; "" after a success
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Sampler[T]":
        self._thread.start()
        return self

    def latest(self) -> tuple[int, T | None, str]:
        """(version, value, error) — cheap, never blocks on I/O."""
        with self._lock:
            return self.version, self._value, self.error

    def poke(self) -> None:
        """Fetch again now (after an action), without waiting for the interval."""
        self._kick.set()

    def sample_once(self) -> None:
        """One fetch on the calling thread (tests, benchmarks)."""
        try:
            value = self._fetch()
        except FleetError as exc:
            with self._lock:
                self.error = str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - shown as one line, the thread keeps going
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._value = value
            self.version += 1
            self.error = ""

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()  # before fetching: a poke during the fetch is never lost
            if self._stop.is_set():  # stop() set it just before the clear
                break
            self.sample_once()
            self._kick.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
