"""Devices of one group in a virtual table (100,000 rows open and scroll at once): id,
image it runs, state (coloured), link, last seen. `enter` opens a device, `p` previews."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from fleet_tui.ui.bindings import DEVICES
from fleet_tui.ui.formatting import age, short_digest
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.state import DeviceRow
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable


class DevicesScreen(ListScreen):
    BINDINGS = textual_bindings(DEVICES)
    SAMPLE_INTERVAL = 5.0  # a whole group per fetch: not too often on a real hub

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group
        self.TITLE_TEXT = f"Devices of {group}"
        self.counts: Counter[str] = Counter()

    def make_table(self) -> VirtualTable:
        clock = self.fleet.clock
        return VirtualTable(
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
            id="devices",
        )

    def fetch(self) -> Sequence[DeviceRow]:
        return self.fleet.data.devices(self.group)

    def apply(self, devices: Sequence[DeviceRow]) -> None:
        self.counts = Counter(d.state for d in devices)
        self.table.set_rows(devices)
        self.update_summary()

    def summary_text(self) -> str:
        parts = ", ".join(f"{n:,} {state}" for state, n in self.counts.most_common())
        return f"{len(self.table.rows):,} devices: {parts}"

    def open_row(self, row: Any) -> None:
        self.action_open_device()

    def action_open_device(self) -> None:
        if (d := self.table.current_row) is not None:
            from fleet_tui.ui.screens.device import DeviceScreen

            self.app.push_screen(DeviceScreen(d.id))

    def action_preview(self) -> None:
        self.fleet.group = self.group
        self.fleet.open_preview()
