"""`SafeStatic`: a Static for text that may carry hub, registry or device data.

Markup is off (a group named `[red]x[/]` is shown as typed, and `[/]` cannot break a
screen) and every control character is drawn as an escape (fleet_tui.terminal_text), so
nothing a device or hub user writes reaches the operator's terminal as a command. Strings,
Rich `Text` (styles kept), `Table`s (each cell) and `Group`s (each part) are made safe; other renderables
are drawn as given. `safe_renderable` is the same rule for other widgets.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from fleet_tui.terminal_text import visible


def safe_text(text: Text) -> Text:
    """`text` with control characters escaped, each span's style kept on what replaces it."""
    plain = text.plain
    if visible(plain, keep_lines=True) == plain:
        return text
    styles: list[list[Any]] = [[] for _ in plain]
    for span in text.spans:
        for i in range(span.start, min(span.end, len(plain))):
            styles[i].append(span.style)
    out = Text(style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap, end=text.end)
    run, run_style = "", None
    for ch, char_styles in zip(plain, styles):
        style = " ".join(str(s) for s in char_styles) or None
        if style != run_style and run:
            out.append(run, style=run_style)
            run = ""
        run, run_style = run + visible(ch, keep_lines=True), style
    if run:
        out.append(run, style=run_style)
    return out


def safe_renderable(content: Any) -> Any:
    if isinstance(content, str):
        return Text(visible(content, keep_lines=True))
    if isinstance(content, Text):
        return safe_text(content)
    if isinstance(content, Group):
        return Group(*(safe_renderable(r) for r in content.renderables))
    if isinstance(content, Table):
        for column in content.columns:
            column._cells = [safe_renderable(c) for c in column._cells]
        return content
    return content


class SafeStatic(Static):
    def __init__(self, content: Any = "", **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(safe_renderable(content), **kwargs)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        super().update(safe_renderable(content), layout=layout)
