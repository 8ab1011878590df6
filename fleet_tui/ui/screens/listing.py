"""A sampled screen built around one `VirtualTable`: `/` filters it, `escape` clears the
filter or goes back, `enter` on a row calls `open_row(row)`."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Input, Static

from fleet_tui.ui.bindings import LIST
from fleet_tui.ui.screens.base import SampledScreen
from fleet_tui.ui.widgets.filter_bar import FilterBar
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.safe_static import SafeStatic
from fleet_tui.ui.widgets.virtual_table import VirtualTable


class ListScreen(SampledScreen):
    BINDINGS = textual_bindings(LIST)

    def make_table(self) -> VirtualTable:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield SafeStatic("", id="summary")
        yield self.make_table()
        yield FilterBar(id="filter")
        yield from self.compose_footer()

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_back(self) -> None:
        if self.table.filter_text:
            self.query_one(FilterBar).action_clear()
        elif len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterBar):
            self.table.set_filter(event.value)
            self.update_summary()

    def on_filter_bar_done(self, event: FilterBar.Done) -> None:
        self.table.set_filter(event.text)
        self.update_summary()
        self.table.focus()

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        self.open_row(event.row)

    def open_row(self, row: Any) -> None:
        pass

    def summary_text(self) -> str:
        return ""

    def update_summary(self) -> None:
        text = self.summary_text()
        t = self.table
        if t.filter_text and not t.remote:  # a remote table's holder counts what matched
            text += f"  │ filter “{t.filter_text}”: {len(t.view):,} of {len(t.rows):,}"
        self.query_one("#summary", Static).update(text)
