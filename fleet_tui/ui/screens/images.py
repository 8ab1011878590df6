"""Images: repositories and tags from the registry (and embedded store) with size, created,
layer count, dead bytes (earlier rebase layers a newer one replaced). `t` or `enter` picks a tag as the rollout target, `p` previews it, `d` shows
what changed from the target to the highlighted tag."""

from __future__ import annotations

from typing import Any, Sequence

from fleet_tui.ui.bindings import IMAGES
from fleet_tui.ui.formatting import age, short_digest, short_ref, size
from fleet_tui.ui.screens.diff import DiffScreen
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.state import TagRow
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable
from fleet_tui.units import plural


class ImagesScreen(ListScreen):
    TITLE_TEXT = "Images"
    BINDINGS = textual_bindings(IMAGES)
    SAMPLE_INTERVAL = 30.0  # tags change rarely; a rebase pokes the sampler

    def make_table(self) -> VirtualTable:
        clock = self.fleet.clock
        return VirtualTable(
            [
                Column("", lambda t: "●" if t.ref == self.fleet.target else "", 1),
                Column("REPOSITORY", lambda t: short_ref(t.repository), 0),
                Column("TAG", lambda t: t.tag, 12),
                Column("DIGEST", lambda t: short_digest(t.digest), 12),
                Column("SIZE", lambda t: t.size, 9, True, size),
                Column("LAYERS", lambda t: t.layers, 6, True),
                Column("DEAD", lambda t: t.dead, 8, True, lambda n: size(n) if n else "-"),
                Column("CREATED", lambda t: -t.created, 9, False, lambda v: age(-v, clock()).replace(" ago", "")),
            ],
            key=lambda t: t.ref,
            state_of=lambda t: "running" if t.ref == self.fleet.target else "",
            id="tags",
        )

    def fetch(self) -> Sequence[TagRow]:
        return tuple(self.fleet.data.tags())

    def apply(self, tags: Sequence[TagRow]) -> None:
        self.table.set_rows(tags)
        self.update_summary()

    def summary_text(self) -> str:
        repos = len({t.repository for t in self.table.rows})
        return f"{plural(len(self.table.rows), 'tag')} in {plural(repos, 'repository', 'repositories')} from {self.fleet.settings.registry or 'the embedded store'}"

    def open_row(self, row: Any) -> None:
        self.action_pick_target()

    def action_pick_target(self) -> None:
        if (t := self.table.current_row) is not None:
            self.fleet.target = t.ref
            self.table.set_rows(self.table.rows)
            self.table.refresh()
            self.refresh_title()
            self.app.notify(f"target: {short_ref(t.ref)} — p previews it for {self.fleet.group or 'a group'}")

    def action_diff(self) -> None:
        t = self.table.current_row
        if t is None:
            return
        if not self.fleet.target or self.fleet.target == t.ref:
            self.app.notify("d compares the target with another tag: set the target first (t), then d on another tag")
            return
        self.app.push_screen(DiffScreen(self.fleet.target, t.ref))

    def action_preview(self) -> None:
        if self.fleet.target is None and self.table.current_row is not None:
            self.action_pick_target()
        self.fleet.open_preview()
