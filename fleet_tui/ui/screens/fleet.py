"""Fleet: device groups with counts, online/offline, the images they run, any rollout in
progress. `enter` opens a group's devices, `p` previews the target for it, `r` opens its
rollout."""

from __future__ import annotations

from typing import Any, Sequence

from fleet_tui.ui.bindings import FLEET
from fleet_tui.ui.formatting import short_digest
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.state import GroupRow
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable


def images_text(g: GroupRow) -> str:
    return ", ".join(f"{name} {short_digest(d)[:7]} ×{n:,}" if name else f"{short_digest(d)} ×{n:,}"
                     for name, d, n in g.images) or "-"


def rollout_text(g: GroupRow) -> str:
    return f"{g.rollout_id} {g.rollout_state}" if g.rollout_id else ""


class FleetScreen(ListScreen):
    TITLE_TEXT = "Fleet"
    BINDINGS = textual_bindings(FLEET)
    SAMPLE_INTERVAL = 2.0

    def make_table(self) -> VirtualTable:
        return VirtualTable(
            [
                Column("GROUP", lambda g: g.name, 14),
                Column("DEVICES", lambda g: g.devices, 8, True, lambda n: f"{n:,}"),
                Column("ONLINE", lambda g: g.online, 7, True, lambda n: f"{n:,}"),
                Column("OFFLINE", lambda g: g.offline, 7, True, lambda n: f"{n:,}"),
                Column("ROLLOUT", rollout_text, 14),
                Column("IMAGES (repo:tag digest ×devices)", images_text, 0),
            ],
            key=lambda g: g.name,
            state_of=lambda g: g.rollout_state or ("offline" if g.devices and g.offline == g.devices else ""),
            id="groups",
        )

    def fetch(self) -> Sequence[GroupRow]:
        return tuple(self.fleet.data.groups())

    def apply(self, groups: Sequence[GroupRow]) -> None:
        self.fleet.group_names = [g.name for g in groups]
        if self.fleet.rollout_id is None:
            self.fleet.rollout_id = next((g.rollout_id for g in groups if g.rollout_id), None)
        self.table.set_rows(groups)
        self.update_summary()

    def summary_text(self) -> str:
        rows = self.table.rows
        devices = sum(g.devices for g in rows)
        online = sum(g.online for g in rows)
        active = sum(1 for g in rows if g.rollout_id)
        return (f"{len(rows)} groups, {devices:,} devices, {online:,} online"
                + (f", {active} rollout{'s' if active != 1 else ''} in progress" if active else ""))

    def _group(self) -> GroupRow | None:
        return self.table.current_row

    def open_row(self, row: Any) -> None:
        self.action_open_group()

    def action_open_group(self) -> None:
        if (g := self._group()) is not None:
            from fleet_tui.ui.screens.devices import DevicesScreen

            self.fleet.group = g.name
            self.app.push_screen(DevicesScreen(g.name))

    def action_preview(self) -> None:
        if (g := self._group()) is not None:
            self.fleet.group = g.name
            self.fleet.open_preview()

    def action_open_rollout(self) -> None:
        g = self._group()
        if g is None:
            return
        if not g.rollout_id:
            self.app.notify(f"no rollout on {g.name}: preview a target (p) and start one there (R)")
            return
        self.fleet.open_rollout(g.rollout_id)
