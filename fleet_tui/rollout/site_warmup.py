"""Warming one site's cache: every blob and manifest its devices will pull, fetched over the
uplink once, then checked held — in a thread, so the engine keeps answering operators.

The order and pacing follow what a Distribution pull-through cache does (fleet_tui.oci.pullthrough):
- one item at a time, never two blobs at once (each concurrent GET of a cold blob makes the
  cache stream it again: distribution/distribution#3969);
- a blob: `probe` it (held: nothing crosses the uplink; cold: that request starts the cache's
  copy and is reset at once), wait as long as the uplink needs for it (`bandwidth`), then
  probe until it is held — each probe of a blob still being copied costs one short stream
  more, so probes back off instead of polling;
- a manifest: fetched whole through the cache (it keeps it by digest), its digest checked;
- finally every item is checked again: only a site whose cache holds all of it is `ready`.
A failure (the cache down, a blob it will not keep) ends the job with a one-line reason; the
engine halts that site only. A new job after an engine restart starts over: held items cost a
probe each, nothing over the uplink.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from fleet_tui.errors import FleetError
from fleet_tui.oci.digest import short
from fleet_tui.oci.pullthrough import PullThrough

FIRST_LOOK = 1.25  # the first re-probe: the uplink's time for the blob, a quarter more
MAX_WAIT_S = 30.0  # between probes of one blob
SLOW_FACTOR = 6.0  # a blob still not held after this many times its uplink time (+ a minute): given up


@dataclass
class WarmJob:
    site: str
    url: str
    items: dict[str, list[Any]]  # digest → [repository, size, "blob"|"manifest"]
    bandwidth: int
    sleep: Callable[[float], None] = time.sleep
    done: dict[str, int] = field(default_factory=dict)  # digest → bytes, warmed (or found held)
    found_held: set[str] = field(default_factory=set)
    error: str = ""
    finished: bool = False
    started: float = field(default_factory=time.time)
    current: str = ""
    _thread: threading.Thread | None = None

    @property
    def total(self) -> int:
        return sum(int(item[1]) for item in self.items.values())

    @property
    def done_bytes(self) -> int:
        return sum(self.done.values())

    def start(self) -> "WarmJob":
        self._thread = threading.Thread(target=self._run, name=f"warm-{self.site}", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        cache = PullThrough(self.url)
        try:
            # manifests last: a device reads the manifest first, so it must not find it before its blobs
            order = sorted(self.items.items(), key=lambda kv: (kv[1][2] == "manifest", -int(kv[1][1])))
            for digest, (repo, size, kind) in order:
                self.current = digest
                if kind == "manifest":
                    cache.fetch_manifest(repo, digest)
                else:
                    self._warm_blob(cache, repo, digest, int(size))
                self.done[digest] = int(size)
            self.current = ""
            for digest, (repo, _size, kind) in order:  # verify: the cache holds everything, now
                if kind != "manifest" and not cache.probe(repo, digest).held:
                    raise FleetError(f"cache lost {short(digest)} right after warming it (its storage full?)")
        except FleetError as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a thread must report, never die silently
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = True

    def _warm_blob(self, cache: PullThrough, repo: str, digest: str, size: int) -> None:
        if cache.probe(repo, digest).held:
            self.found_held.add(digest)
            return
        need = size / max(1, self.bandwidth)
        wait = need * FIRST_LOOK + 0.2
        deadline = time.time() + need * SLOW_FACTOR + 60.0
        while True:
            self.sleep(min(wait, MAX_WAIT_S))
            if cache.probe(repo, digest).held:
                return
            if time.time() >= deadline:
                raise FleetError(f"cache did not get {short(digest)} ({size} bytes) within "
                                 f"{need * SLOW_FACTOR + 60:.0f}s; check its uplink and `proxy.remoteurl`")
            wait = max(1.0, need * 0.25) if wait > need else wait * 2  # late, then seldom
