"""Diff: what changed from image A to image B — Python distributions upgraded, added or
removed, then directories with files added/removed/changed and the bytes each costs a device
(largest first); the highlighted directory's biggest files below. Opened with `d` on Images
(the target → the highlighted tag) and in the rebase safety report (what devices run → the
new image). `escape` goes back."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from fleet_tui.ui.bindings import LIST
from fleet_tui.ui.formatting import short_ref, size
from fleet_tui.ui.screens.base import ConsoleScreen
from fleet_tui.ui.state import DiffView, DirRow
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.safe_static import SafeStatic
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable

FILES_SHOWN = 4


def directory_text(directory: str) -> str:
    """`/usr/lib/python3.11/site-packages/sklearn` → `…/site-packages/sklearn`: the part that
    tells directories apart survives a narrow column."""
    head, sep, tail = directory.partition("site-packages/")
    return f"…/site-packages/{tail}" if sep and head else "/" + directory


class DiffScreen(ConsoleScreen):
    BINDINGS = textual_bindings([k for k in LIST if k.id == "list.back"])
    view: DiffView | None = None
    loaded = False

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.TITLE_TEXT = "Diff"

    def target_label(self) -> str:
        return f"{short_ref(self.a)} → {short_ref(self.b)}"

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield SafeStatic("comparing the two images…", id="summary")
        yield VirtualTable(
            [
                Column("DIRECTORY", lambda d: directory_text(d.directory), 0),
                Column("ADDED", lambda d: d.added, 6, True),
                Column("REMOVED", lambda d: d.removed, 7, True),
                Column("CHANGED", lambda d: d.changed, 7, True),
                Column("BYTES", lambda d: d.bytes, 9, True, size),
            ],
            key=lambda d: d.directory, id="directories",
        )
        yield SafeStatic("", id="files", classes="panel")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.run_blocking(lambda: self.fleet.data.what_changed(self.a, self.b), self.apply, "diff")

    def apply(self, view: DiffView) -> None:
        self.view = view
        table = self.query_one(VirtualTable)
        table.set_rows(view.directories)
        table.focus()
        files = sum(d.added + d.removed + d.changed for d in view.directories)
        text = Text(f"{files:,} files differ, ≈ {size(view.bytes)} for a device holding A", "bold")
        if view.distributions:
            text.append("\n" + ", ".join(f"{n} {b} → {a}" if b != "-" and a != "-" else
                                          (f"+{n} {a}" if b == "-" else f"-{n} {b}")
                                          for n, b, a in view.distributions))
        self.query_one("#summary", SafeStatic).update(text)
        self.show_files(table.current_row)
        self.loaded = True

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self.show_files(event.row)

    def show_files(self, row: DirRow | None) -> None:
        if row is None:
            self.query_one("#files", SafeStatic).update(Text("A and B are the same", "dim"))
            return
        lines = Text()
        for path, change, nbytes in row.files[:FILES_SHOWN]:
            lines.append(f"{change:<9} {size(nbytes):>9}  {path.rsplit('/', 1)[-1]}\n")
        more = len(row.files) - FILES_SHOWN
        if more > 0:
            lines.append(f"… {more} more files (fleet-tui diff A B --files lists them all)", "dim")
        elif not row.files:
            lines.append(f"{row.removed} files removed: nothing to download", "dim")
        self.query_one("#files", SafeStatic).update(lines)

    def action_back(self) -> None:
        self.app.pop_screen()
