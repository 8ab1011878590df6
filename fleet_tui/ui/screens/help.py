"""`?`: every key of the console, by section, read from the same data as the bindings.
Actions that change the fleet are marked, and struck out when the console is read-only."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from fleet_tui.ui.bindings import SECTIONS, key_label


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, read_only: bool) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table("KEY", "ACTION", box=None, pad_edge=False, expand=True)
        for section, keys in SECTIONS.items():
            table.add_row(Text(section, "bold underline"), "")
            for k in keys:
                text = Text(k.description)
                if k.danger:
                    text.append("  (changes the fleet" + (": disabled, read-only)" if self.read_only else ")"),
                                "dim" if self.read_only else "yellow")
                table.add_row(key_label(k.keys), text)
        with VerticalScroll(classes="dialog", id="help"):
            yield Static(Text("Keys — esc closes; ctrl+p lists every action by name", "bold"))
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
