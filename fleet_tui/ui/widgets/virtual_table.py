"""A virtual table (toolong style): draws only the rows on screen, so 100,000 rows cost
what 24 do. Rows are any objects; each `Column` says how to get and format its cell.

Invariants: `set_rows` never copies or formats rows beyond the filtered/sorted *index*
(a list of references); the cursor stays on the same row key across snapshots; when a new
snapshot arrives only lines whose text or style changed are redrawn (a 1,000-device
rollout updating at 4 Hz writes little to a slow SSH link). Row colour comes from the
state name `state_of(row)` through component classes `virtual-table--<state>`.

With `remote=True` the rows are a window onto a list held elsewhere (fleet_tui.ui.paged_rows):
the table never iterates them, filter and sort are left to whoever holds the list (the table
posts `QueryChanged`), a row that is not loaded yet is None and drawn as a dim placeholder,
and the rows on screen are written to `rows.viewport` so the holder knows what to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from fleet_tui.terminal_text import visible
from fleet_tui.ui.bindings import TABLE
from fleet_tui.ui.widgets.keys import textual_bindings

STATES = ("running", "succeeded", "downloading", "applying", "pending", "paused", "failed", "halted",
          "offline", "rolled_back", "aborted", "untouched", "loading")


@dataclass(frozen=True)
class Column:
    label: str
    get: Callable[[Any], Any]
    width: int = 10  # 0: take the remaining width
    right: bool = False
    fmt: Callable[[Any], str] = str
    fit: Callable[[Any, int], str] | None = None  # (row, width) → text that fits; default: cut with …
    keep_tail: bool = False  # cut in the middle (ids: `sim-dro…-00011` keeps the part that tells them apart)
    give_way: int = 0  # when too narrow, columns with give_way go, 1 first, before the others shrink (0: stays)
    min_width: int = 4  # a flexible column (width 0) asks for this much before others give way


def cut_middle(text: str, width: int) -> str:
    """`sim-drones-00011` in 14 columns → `sim-dro…-00011`."""
    if len(text) <= width:
        return text
    if width < 4:
        return text[:width]
    head = width // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


class VirtualTable(ScrollView, can_focus=True):
    DEFAULT_CSS = "VirtualTable { overflow-x: hidden; }"
    BINDINGS = textual_bindings(TABLE)
    COMPONENT_CLASSES = {"virtual-table--header", "virtual-table--cursor"} | {f"virtual-table--{s}" for s in STATES}
    cursor = reactive(0, repaint=False)

    class Selected(Message):
        def __init__(self, table: "VirtualTable", row: Any) -> None:
            super().__init__()
            self.table, self.row = table, row

    class QueryChanged(Message):
        """The filter text or sort column changed (a remote table's holder reloads)."""

        def __init__(self, table: "VirtualTable") -> None:
            super().__init__()
            self.table = table

    class Highlighted(Message):
        def __init__(self, table: "VirtualTable", row: Any) -> None:
            super().__init__()
            self.table, self.row = table, row

    def __init__(self, columns: Sequence[Column], key: Callable[[Any], Any],
                 state_of: Callable[[Any], str] | None = None, remote: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns, self.key, self.state_of, self.remote = list(columns), key, state_of, remote
        self.rows: Sequence[Any] = ()
        self.view: list[Any] = []
        self.filter_text = ""
        self.sort_column: int | None = None
        self._drawn: dict[int, tuple] = {}  # y → what was drawn there (for partial refresh)
        self._view_len = 0

    # --- data ----------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[Any]) -> None:
        old_key = None if self.remote else self.current_key  # a remote table keeps the cursor's index
        self.rows = rows
        self._rebuild(old_key)

    def set_filter(self, text: str) -> None:
        changed = text.strip().lower() != self.filter_text
        self.filter_text = text.strip().lower()
        if changed and self.remote:
            self.post_message(self.QueryChanged(self))
        self._rebuild(None)
        self.cursor = 0
        self.scroll_to(y=0, animate=False)

    def cycle_sort(self) -> None:
        self.sort_column = 0 if self.sort_column is None else (self.sort_column + 1) % len(self.columns)
        if self.remote:
            self.post_message(self.QueryChanged(self))
        self._rebuild(self.current_key)

    def _rebuild(self, keep_key: Any) -> None:
        if self.remote:
            view: Any = self.rows  # filtered and sorted by its holder; never copied
        else:
            view = list(self.rows)
            if self.filter_text:
                needle, cols = self.filter_text, self.columns
                view = [r for r in view if needle in " ".join(c.fmt(c.get(r)) for c in cols).lower()]
            if self.sort_column is not None:
                get = self.columns[self.sort_column].get
                view.sort(key=get)
        size_changed = len(view) != self._view_len
        self.view, self._view_len = view, len(view)
        if keep_key is not None and not self.remote:  # remote rows outside the window are misses: never searched
            for i in range(max(0, self.cursor - 50), min(len(view), self.cursor + 50)):
                if view[i] is not None and self.key(view[i]) == keep_key:
                    self.cursor = i
                    break
        self.cursor = min(self.cursor, max(0, len(view) - 1))
        self.virtual_size = Size(0, len(view) + 1)
        self._note_viewport()
        self._refresh_changed(full=size_changed)

    def _note_viewport(self) -> None:
        if self.remote and hasattr(self.rows, "viewport"):
            self.rows.viewport = (int(self.scroll_offset.y), max(1, self.size.height - 1))  # type: ignore[attr-defined]

    @property
    def current_key(self) -> Any:
        row = self.current_row
        return self.key(row) if row is not None else None

    @property
    def current_row(self) -> Any:
        return self.view[self.cursor] if 0 <= self.cursor < len(self.view) else None

    # --- drawing -------------------------------------------------------------------------
    def _widths(self) -> list[int]:
        """Width of each column; 0 for a column that gave way to fit the rest (80 columns)."""
        room = self.scrollable_content_region.width
        shown = [True] * len(self.columns)

        def needed() -> int:
            return sum((c.width or c.min_width) + 1 for c, s in zip(self.columns, shown) if s)

        for _, i in sorted((c.give_way, i) for i, c in enumerate(self.columns) if c.give_way):
            if needed() <= room + 1:
                break
            shown[i] = False
        fixed = sum(c.width + 1 for c, s in zip(self.columns, shown) if s and c.width)
        return [0 if not s else (c.width or max(4, room - fixed)) for c, s in zip(self.columns, shown)]

    def _line(self, y: int) -> tuple:
        if y == 0:
            labels = [c.label + (" ▼" if i == self.sort_column else "") for i, c in enumerate(self.columns)]
            return ("header", self._text(labels), "header")
        idx = int(self.scroll_offset.y) + y - 1
        if idx >= len(self.view):
            return ("", "", "")
        row = self.view[idx]
        if row is None:  # a remote row not loaded yet
            return (idx, self._text(["…"] + [""] * (len(self.columns) - 1)), "loading", idx == self.cursor)
        cells = [visible(c.fmt(c.get(row))) for c in self.columns]  # hub data: never raw escapes
        return (idx, self._text(cells, row), self.state_of(row) if self.state_of else "", idx == self.cursor)

    def _text(self, cells: list[str], row: Any = None) -> str:
        out = []
        for c, w, text in zip(self.columns, self._widths(), cells):
            if not w:
                continue  # gave way
            if len(text) > w:
                if c.fit is not None and row is not None:
                    text = visible(c.fit(row, w))[:w]
                else:
                    text = cut_middle(text, w) if c.keep_tail else text[: w - 1] + "…"
            out.append(text.rjust(w) if c.right else text.ljust(w))
        return " ".join(out)

    def render_line(self, y: int) -> Strip:
        line = self._line(y)
        self._drawn[y] = line
        width, base = self.scrollable_content_region.width, self.rich_style
        style = base
        if line[0] == "header":
            style = base + self.get_component_rich_style("virtual-table--header")
        elif line[2] in STATES:
            style = base + self.get_component_rich_style(f"virtual-table--{line[2]}", partial=True)
        if len(line) > 3 and line[3]:
            style = style + self.get_component_rich_style("virtual-table--cursor", partial=True)
        return Strip([Segment(line[1], style)]).crop_extend(0, width, base or Style())

    def _refresh_changed(self, full: bool = False) -> None:
        """Redraw the lines whose content differs from what was last drawn (all if `full`)."""
        width = self.size.width
        if full or not self._drawn:
            self._drawn = {y: self._line(y) for y in range(self.size.height)}
            self.refresh()
            return
        for y in range(self.size.height):
            line = self._line(y)
            if self._drawn.get(y) != line:
                self._drawn[y] = line
                self.refresh(Region(0, y, width, 1))

    def on_resize(self) -> None:
        self.virtual_size = Size(0, len(self.view) + 1)
        self._drawn.clear()
        self._note_viewport()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._drawn.clear()
        self._note_viewport()

    # --- keys ----------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        top, body = int(self.scroll_offset.y), max(1, self.size.height - 1)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + body:
            self.scroll_to(y=new - body + 1, animate=False, immediate=True)
        self._refresh_changed()
        self.post_message(self.Highlighted(self, self.current_row))

    def action_cursor(self, delta: int) -> None:
        self.cursor = max(0, min(len(self.view) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self.cursor = max(0, len(self.view) - 1) if end else 0

    def action_select(self) -> None:
        if self.current_row is not None:
            self.post_message(self.Selected(self, self.current_row))

    def action_sort(self) -> None:
        self.cycle_sort()

    def on_click(self, event: Any) -> None:
        if event.y >= 1:
            self.cursor = min(len(self.view) - 1, int(self.scroll_offset.y) + event.y - 1)
