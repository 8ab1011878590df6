"""A list the console holds only a window of (toolong style): `len()` is the hub's count,
`rows[i]` is a row when it is in the window and None (drawn as a placeholder) when it is
not yet loaded. No Textual here.

The UI thread sets `viewport` as the table scrolls and replaces the query on `/` or sort;
a sampler thread asks `wanted()` which window to read and the UI thread `accept()`s what
came back. Invariants: a window read for an older query (`generation`) is dropped; the
window spans the viewport plus a screenful either side, so memory is a few hundred rows
whatever the group's size; a miss (drawing a row outside the window) calls `on_miss` at
most once until the next window arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleet_tui.hub.listing import ListQuery

MIN_WINDOW = 100


@dataclass(frozen=True)
class Window:
    generation: int
    query: ListQuery
    total: int
    offset: int
    rows: Sequence[Any]
    counts: dict[str, int] | None = None  # devices per state (None: not counted this time)
    unfiltered: int | None = None  # devices of the group when a needle is set


class PagedRows(Sequence):
    def __init__(self, query: ListQuery) -> None:
        self.query, self.generation = query, 0
        self.total, self.offset, self.rows = 0, 0, ()  # type: ignore[var-annotated]
        self.counts: dict[str, int] | None = None
        self.unfiltered: int | None = None
        self.viewport = (0, 40)  # (first row index on screen, rows on screen)
        self.loaded = False  # a window for the current query has arrived
        self.on_miss: Callable[[], None] | None = None
        self._missed = False

    # --- the Sequence the table draws -------------------------------------------------
    def __len__(self) -> int:
        return self.total

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.total))]
        if i < 0:
            i += self.total
        if self.offset <= i < self.offset + len(self.rows):
            return self.rows[i - self.offset]
        if 0 <= i < self.total and not self._missed:
            self._missed = True
            if self.on_miss is not None:
                self.on_miss()
        return None

    # --- between the threads ----------------------------------------------------------
    def set_query(self, query: ListQuery) -> None:
        """A new filter or sort: the window and counts are for the old one, drop them."""
        if query == self.query:
            return
        self.query, self.generation = query, self.generation + 1
        self.offset, self.rows, self.counts, self.loaded = 0, (), None, False
        self._missed = False

    def wanted(self) -> tuple[int, ListQuery, int, int]:
        """(generation, query, offset, limit) of the window to read next."""
        top, height = self.viewport
        height = max(1, height)
        limit = max(MIN_WINDOW, 3 * height)
        offset = max(0, top - (limit - height) // 2)
        return self.generation, self.query, offset, limit

    def accept(self, window: Window) -> bool:
        if window.generation != self.generation:
            return False
        self.total, self.offset, self.rows = window.total, window.offset, tuple(window.rows)
        if window.counts is not None:
            self.counts = window.counts
        if window.unfiltered is not None or not self.query.needle:
            self.unfiltered = window.unfiltered if self.query.needle else window.total
        self.loaded, self._missed = True, False
        return True

    @property
    def waiting(self) -> bool:
        """Rows on screen (or the first window, or its counts) are still to come."""
        return not self.loaded or self._missed or self.counts is None

    def covers_viewport(self) -> bool:
        top, height = self.viewport
        end = min(self.total, top + height)
        return self.offset <= top and end <= self.offset + len(self.rows)
