"""A two-column label/value table (labels dim, values folded), as the device story and the
rollout report show their facts; a value whose label is in `alarm` is drawn bold red."""

from __future__ import annotations

from typing import Iterable

from rich.table import Table
from rich.text import Text


def facts_table(facts: Iterable[tuple[str, str]], alarm: tuple[str, ...] = ()) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in facts:
        table.add_row(label, Text(value, "bold red" if label in alarm else ""))
    return table
