"""Devices of one group, loaded as you look: the table holds a window of a few screenfuls
(fleet_tui.ui.paged_rows) and the hub filters, sorts and counts (SQL on the local hub), so
opening a 1,000,000-device group reads about a hundred rows. Columns: id, state (coloured),
image, digest, link, last seen. `enter` opens a device, `p` previews, `/` filters, `s` sorts.

The sampler thread reads the window around the viewport (at once when the operator scrolls
past what is loaded, else every SAMPLE_INTERVAL); the devices-per-state counts follow in a
later read, and are re-counted less often on a group whose count is slow.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from fleet_tui.hub.listing import ListQuery
from fleet_tui.ui.bindings import DEVICES
from fleet_tui.ui.formatting import age, short_digest
from fleet_tui.ui.paged_rows import PagedRows, Window
from fleet_tui.ui.screens.device import DeviceScreen
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable
from fleet_tui.units import plural

# column → (hub sort, descending): LAST SEEN sorts the most recent first, IMAGE groups by digest
SORTS = {"DEVICE": ("id", False), "STATE": ("state", False), "IMAGE": ("digest", False),
         "DIGEST": ("digest", False), "LINK": ("link", False), "LAST SEEN": ("last_seen", True)}


class DevicesScreen(ListScreen):
    BINDINGS = textual_bindings(DEVICES)
    SAMPLE_INTERVAL = 5.0  # the window is re-read this often (and at once on a scroll miss)

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group
        self.TITLE_TEXT = f"Devices of {group}"
        self.paged = PagedRows(ListQuery())
        self.paged.on_miss = self.resample
        self._delivered = -1  # generation whose rows were last read (counts come after them)
        self._counted = (-1, 0.0)  # (generation, monotonic time) of the last state count
        self._count_every = self.SAMPLE_INTERVAL
        self._counts: Window | None = None  # the last window that carried counts

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(0.04, self._catch_up)

    def _catch_up(self) -> None:
        """While rows on screen wait to load, take the sampler's window as soon as it is read
        (the screen's own tick runs at the console's sample rate, a few Hz)."""
        if self.paged.waiting:
            self.tick()

    def make_table(self) -> VirtualTable:
        clock = self.fleet.clock
        table = VirtualTable(
            [
                # the id is what an operator needs: it takes the room; digest, then link, give way at 80 columns
                Column("DEVICE", lambda d: d.id, 0, keep_tail=True, min_width=18),
                Column("STATE", lambda d: d.state, 11),
                Column("IMAGE", lambda d: d.image, 18),
                Column("DIGEST", lambda d: short_digest(d.digest), 12, give_way=1),
                Column("LINK", lambda d: d.link, 10, give_way=2),
                Column("LAST SEEN", lambda d: -d.last_seen, 9, True, lambda v: age(-v, clock())),
            ],
            key=lambda d: d.id,
            state_of=lambda d: d.state,
            remote=True,
            id="devices",
        )
        table.rows = self.paged  # before the first window: the viewport is noted from the start
        return table

    def fetch(self) -> Window:
        generation, query, offset, limit = self.paged.wanted()
        counted_gen, counted_at = self._counted
        count = self._delivered == generation and (
            counted_gen != generation or time.monotonic() - counted_at >= self._count_every)
        started = time.monotonic()
        window = replace(self.fleet.data.device_window(self.group, query, offset, limit, counts=count),
                         generation=generation)
        if count:
            self._counted = (generation, time.monotonic())
            self._count_every = max(self.SAMPLE_INTERVAL, 10 * (time.monotonic() - started))
            self._counts = window
        elif self._counts is not None and self._counts.generation == generation:
            # the UI keeps only the newest window: every later one carries the last counts
            window = replace(window, counts=self._counts.counts, unfiltered=self._counts.unfiltered)
        self._delivered = generation
        return window

    def apply(self, window: Window) -> None:
        if not self.paged.accept(window):
            self.resample()  # read for a query the operator has since changed
            return
        self.table.set_rows(self.paged)
        if self.paged.counts is None or not self.paged.covers_viewport():
            self.resample()
        self.update_summary()

    def on_virtual_table_query_changed(self, event: VirtualTable.QueryChanged) -> None:
        t = event.table
        sort, descending = ("id", False) if t.sort_column is None else SORTS[t.columns[t.sort_column].label]
        self.paged.set_query(ListQuery(needle=t.filter_text, sort=sort, descending=descending))
        t.set_rows(self.paged)
        self.update_summary()
        self.resample()

    def summary_text(self) -> str:
        p = self.paged
        if not p.loaded:
            return "loading…"
        states = (", ".join(f"{n:,} {s}" for s, n in sorted(p.counts.items(), key=lambda kv: -kv[1])) or "none"
                  if p.counts is not None else "counting…")
        if p.query.needle:
            of = f" of {p.unfiltered:,}" if p.unfiltered is not None else ""
            return f"filter “{p.query.needle}”: {p.total:,}{of} device{'' if (p.unfiltered or p.total) == 1 else 's'}: {states}"
        return f"{plural(p.total, 'device')}: {states}"

    def open_row(self, row: Any) -> None:
        self.action_open_device()

    def action_open_device(self) -> None:
        if (d := self.table.current_row) is not None:

            self.app.push_screen(DeviceScreen(d.id))

    def action_preview(self) -> None:
        self.fleet.group = self.group
        self.fleet.open_preview()
