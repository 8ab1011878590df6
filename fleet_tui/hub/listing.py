"""Device lists a screenful at a time: what the console's Devices screen and `devices --json`
read instead of every twin of a group.

A `ListQuery` names a condition (the group), a filter needle and a sort; a listing answers
`total(q)`, `state_counts(q)`, `window(q, offset, limit)` and `iter_all(q)`. The local hub
answers in SQL (fleet_tui.hub.local_listing: one indexed range per screenful, so opening a
1,000,000-device group reads about a hundred rows). `MemoryListing` answers over rows it
loads whole — for hubs that cannot sort or filter server-side (Azure IoT Hub queries have no
ORDER BY nor substring match on tags) and for the console's fake data.

Invariants: rows of a window are in the query's order, ties broken by device id (so two
windows of the same query never overlap nor skip a row); the needle matches, case-blind,
the device id, state, link, digest, or any digest in `q.digests` (images whose *name*
matched: names live outside the hub); states are the docs/cli.md device states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

SORTS = ("id", "state", "digest", "link", "last_seen")


@dataclass(frozen=True)
class ListQuery:
    condition: str = ""  # IoT Hub condition ("" = every device)
    needle: str = ""  # case-blind substring filter ("" = none)
    digests: tuple[str, ...] = ()  # also match devices running these (their image name matched)
    sort: str = "id"
    descending: bool = False
    state: str = ""  # only devices in this docs/cli.md state ("" = any)

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort {self.sort!r} is not one of {', '.join(SORTS)}")


@dataclass(frozen=True)
class ListedDevice:
    id: str
    group: str
    digest: str  # manifest digest the managed module runs ("" = unknown)
    image: str  # the reference the module reports ("" = none)
    state: str
    last_seen: float  # unix time; 0 = never
    link: str = ""


def sort_key(sort: str) -> Callable[[ListedDevice], tuple]:
    field = {"id": None, "state": "state", "digest": "digest", "link": "link", "last_seen": "last_seen"}[sort]
    if field is None:
        return lambda d: (d.id,)
    return lambda d: (getattr(d, field), d.id)


def matches(d: ListedDevice, needle: str, digests: frozenset[str]) -> bool:
    return (d.digest in digests or needle in d.id.lower() or needle in d.state or needle in d.link.lower()
            or needle in d.digest)


def listed(twin: Any, module: str, group_tag: str) -> ListedDevice:
    """A twin as a list row (for hubs without their own listing)."""
    report = twin.reported.get(module)
    return ListedDevice(twin.device_id, twin.group(group_tag), twin.digest(module), report.image if report else "",
                        twin.state(module), twin.last_seen, twin.link_name(module) or str(twin.tags.get("link", "")))


def stream(hub: Any, q: ListQuery, module: str) -> Iterator[ListedDevice]:
    """Every device of `q` in id order as the hub pages it (local hub: keyset SQL, 1,000
    rows per statement; other hubs: their query pages, filtered here). Nothing is held."""
    if hasattr(hub, "listing"):
        yield from hub.listing().iter_all(q)
        return
    needle, digests = q.needle.strip().lower(), frozenset(q.digests)
    for twin in hub.iter_devices(q.condition or None):
        d = listed(twin, module, hub.group_tag)
        if (not q.state or d.state == q.state) and (not needle or matches(d, needle, digests)):
            yield d


class MemoryListing:
    """A listing over rows loaded whole by `load()` (kept `ttl` seconds); filtered and
    sorted views are kept per query until the next load. Memory grows with the group."""

    def __init__(self, load: Callable[[str], Iterable[ListedDevice]], ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load, self.ttl, self.clock = load, ttl, clock
        self._rows: dict[str, tuple[float, list[ListedDevice]]] = {}
        self._views: dict[ListQuery, list[ListedDevice]] = {}

    def _all(self, condition: str) -> list[ListedDevice]:
        loaded = self._rows.get(condition)
        if loaded is None or self.clock() - loaded[0] > self.ttl:
            rows = list(self._load(condition))  # stamped when loaded: a slow load is not stale at once
            loaded = self._rows[condition] = (self.clock(), rows)
            self._views = {q: v for q, v in self._views.items() if q.condition != condition}
        return loaded[1]

    def _view(self, q: ListQuery) -> list[ListedDevice]:
        rows = self._all(q.condition)
        view = self._views.get(q)
        if view is None:
            needle = q.needle.strip().lower()
            view = [d for d in rows if matches(d, needle, frozenset(q.digests))] if needle else list(rows)
            if q.state:
                view = [d for d in view if d.state == q.state]
            view.sort(key=sort_key(q.sort), reverse=q.descending)
            self._views[q] = view
        return view

    def total(self, q: ListQuery) -> int:
        return len(self._view(q))

    def state_counts(self, q: ListQuery) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self._view(q):
            counts[d.state] = counts.get(d.state, 0) + 1
        return counts

    def window(self, q: ListQuery, offset: int, limit: int) -> Sequence[ListedDevice]:
        return self._view(q)[max(0, offset): max(0, offset) + max(0, limit)]

    def iter_all(self, q: ListQuery) -> Iterator[ListedDevice]:
        return iter(self._view(q))
