"""Manifest digest → short `repo:tag` for the console, resolved off the UI thread.

Devices report digests; operators think in tags. `ImageNames` lists the tags of the
configured repositories (registry or embedded store) and resolves each tag's manifest
digest with one HEAD-like call, then keeps the map. `refresh()` is called by the live
data's sampler threads before they build rows: it does nothing while the map is younger
than `ttl` seconds, and when another thread is already refreshing it returns at once
(callers use the previous map rather than wait). `invalidate()` (after a push) makes the
next `refresh()` list again. No Textual here; `get()` never does I/O.

A digest that several tags share keeps the first tag the store lists.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from fleet_tui.errors import FleetError
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.ui.formatting import short_ref

TAGS_PER_REPO = 30
NAMES_TTL_S = 60.0


class ImageNames:
    def __init__(self, repositories: Callable[[], list[str]], config: Any, ttl: float = NAMES_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._repositories, self.config, self.ttl, self.clock = repositories, config, ttl, clock
        self._names: dict[str, str] = {}
        self._stamp: float | None = None  # when the map was last listed; None = never / invalidated
        self._refreshing = threading.Lock()
        self.listings = 0  # how many times the repositories were listed (tests)

    def get(self, digest: str, default: str = "") -> str:
        return self._names.get(digest, default) if digest else default

    def matching(self, needle: str) -> tuple[str, ...]:
        """Digests whose short name contains `needle` (case-blind): a filter by image name
        becomes a filter by digest the hub can run."""
        needle = needle.strip().lower()
        return tuple(sorted(d for d, name in self._names.items() if needle and needle in name.lower()))

    def remember(self, digest: str, ref: str) -> None:
        """Record a name learnt elsewhere (the Images screen loads every tag anyway)."""
        if digest:
            self._names = {**self._names, digest: short_ref(ref)}

    def invalidate(self) -> None:
        self._stamp = None

    def refresh(self) -> None:
        if self._stamp is not None and self.clock() - self._stamp < self.ttl:
            return
        if not self._refreshing.acquire(blocking=False):
            return  # another sampler thread is listing: use the map we have
        try:
            names = self._list()
            self._names = {**self._names, **names}  # swap whole: readers never see a half-filled map
            self._stamp = self.clock()
        except FleetError:
            self._stamp = self.clock()  # registry unreachable: try again after ttl, show digests meanwhile
        finally:
            self._refreshing.release()

    def _list(self) -> dict[str, str]:
        self.listings += 1
        names: dict[str, str] = {}
        for repo in self._repositories():
            ref = parse_reference(repo, default_tag=None)
            store = open_store(ref, self.config)
            for tag in store.list_tags(repo_of(ref))[-TAGS_PER_REPO:]:
                desc = store.head_manifest(repo_of(ref), tag)
                if desc is not None:
                    names.setdefault(desc.digest, short_ref(f"{repo}:{tag}"))
        return names
