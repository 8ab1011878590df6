"""Fleet: device groups with counts, online/offline, the images they run, any rollout in
progress. `enter` opens a group's devices, `p` previews the target for it, `r` opens its
rollout."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from fleet_tui.ui.bindings import FLEET
from fleet_tui.ui.formatting import short_digest
from fleet_tui.ui.screens.devices import DevicesScreen
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.state import GroupRow
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable
from fleet_tui.units import plural

STATE_MARK = {"running": "▶", "paused": "‖", "halted": "■", "pending": "…"}  # full word: summary, Rollout


def count_text(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def count_key(n: int | None) -> int:
    return -1 if n is None else n


def images_text(g: GroupRow) -> str:
    return ", ".join(f"{name} {short_digest(d)[:7]} ×{n:,}" if name else f"{short_digest(d)} ×{n:,}"
                     for name, d, n in g.images) or "-"


def _cut_name(name: str, room: int) -> str:
    """Shorten a repo:tag to `room` characters, cutting the repository before the tag."""
    if len(name) <= room:
        return name
    repo, colon, tag = name.rpartition(":")
    if colon and room >= len(tag) + 3:
        return repo[: room - len(tag) - 2] + "…:" + tag
    return name[: max(0, room - 1)] + "…"


def fit_images(g: GroupRow, width: int) -> str:
    """The IMAGES cell in `width` columns: device counts are never cut; repository names
    lose their namespace, then the digests go, then the names are cut."""
    items = [(name or short_digest(d), short_digest(d)[:7] if name else "", n) for name, d, n in g.images]
    if not items:
        return "-"
    short = [(name.rsplit("/", 1)[-1], dig, n) for name, dig, n in items]
    for level in (items, short):
        text = ", ".join(f"{name} {dig} ×{n:,}" if dig else f"{name} ×{n:,}" for name, dig, n in level)
        if len(text) <= width:
            return text
    counts = [f" ×{n:,}" for _, _, n in short]
    room = (width - sum(map(len, counts)) - 2 * (len(items) - 1)) // len(items)
    if room < 2:
        return ", ".join(c.strip() for c in counts)
    return ", ".join(_cut_name(name, room) + c for (name, _, _), c in zip(short, counts))


def rollout_text(g: GroupRow) -> str:
    return f"{g.rollout_id} {STATE_MARK.get(g.rollout_state, g.rollout_state[:1])}" if g.rollout_id else ""


class FleetScreen(ListScreen):
    TITLE_TEXT = "Fleet"
    BINDINGS = textual_bindings(FLEET)
    SAMPLE_INTERVAL = 2.0

    def make_table(self) -> VirtualTable:
        return VirtualTable(
            [  # GROUP is as wide as the longest name (up to 20; longer ones are cut in the middle,
                # the tail tells groups apart); at 80 columns IMAGES keeps ~25-28 for "ml/scoring:1 0cf457e ×582"
                Column("GROUP", lambda g: g.name, 14, keep_tail=True),
                Column("DEVICES", lambda g: g.devices, 8, True, lambda n: f"{n:,}"),
                Column("ONLINE", lambda g: count_key(g.online), 7, True, lambda n: count_text(None if n < 0 else n)),
                Column("OFFLINE", lambda g: count_key(g.offline), 7, True, lambda n: count_text(None if n < 0 else n)),
                Column("ROLLOUT", rollout_text, 11),
                Column("IMAGES repo:tag digest ×N", images_text, 0, fit=fit_images),
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
        width = min(20, max([len("GROUP")] + [len(g.name) for g in groups]))
        if self.table.columns[0].width != width:
            self.table.columns[0] = replace(self.table.columns[0], width=width)
            self.table.refresh()
        self.table.set_rows(groups)
        self.update_summary()

    def summary_text(self) -> str:
        rows = self.table.rows
        devices = sum(g.devices for g in rows)
        counted = [g.online for g in rows if g.online is not None]
        active = [g for g in rows if g.rollout_id]
        text = f"{plural(len(rows), 'group')}, {plural(devices, 'device')}"
        if counted or not rows:  # Azure counts no one online per group: say nothing rather than 0
            text += f", {sum(counted):,} online" + (" (some groups not counted)" if len(counted) < len(rows) else "")
        if len(active) == 1:  # the ROLLOUT column shows a mark; the words are here
            g = active[0]
            return text + f", rollout {g.rollout_id} {g.rollout_state.replace('_', ' ')} on {g.name}"
        return text + (f", {plural(len(active), 'rollout')} in progress" if active else "")

    def _group(self) -> GroupRow | None:
        return self.table.current_row

    def open_row(self, row: Any) -> None:
        self.action_open_group()

    def action_open_group(self) -> None:
        if (g := self._group()) is not None:

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
