"""fleet_tui.terminal_text and the console's SafeStatic: what is escaped, what is kept."""

from __future__ import annotations

import io

import pytest
from rich.table import Table
from rich.text import Text

from fleet_tui.terminal_text import SafeStream, visible
from fleet_tui.ui.widgets.safe_static import safe_renderable, safe_text


@pytest.mark.parametrize("raw, shown", [
    ("\x1b]2;t\x07", "\\x1b]2;t\\x07"),  # OSC set-title, BEL
    ("a\x1b[2Jb", "a\\x1b[2Jb"),  # CSI
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("x\x7fy", "x\\x7fy"),  # DEL
    ("\u202eexe.txt", "\\u202eexe.txt"),  # bidi override
    ("a\u2028b", "a\\u2028b"),  # line separator
    ("\ufeffbom", "\\ufeffbom"),
    ("a\nb\tc\rd", "a\\x0ab\\x09c\\x0dd"),  # one field: line breaks escaped too
])
def test_control_characters_are_shown_as_escapes(raw, shown):
    assert visible(raw) == shown


def test_printable_text_is_returned_unchanged():
    for text in ("vans-lte", "Zürich 中文 🚚", "[red]markup[/] is text here", ""):
        assert visible(text) is text


def test_keep_lines_keeps_newline_and_tab_only():
    assert visible("a\nb\tc\x1b", keep_lines=True) == "a\nb\tc\\x1b"
    assert visible("a\r\nb", keep_lines=True) == "a\\x0d\nb"


def test_safe_stream_escapes_every_write():
    out = io.StringIO()
    stream = SafeStream(out)
    assert stream.write("group \x1b]2;x\x07\n") == len("group \x1b]2;x\x07\n")
    stream.writelines(["\x1b[H", "ok\n"])
    assert out.getvalue() == "group \\x1b]2;x\\x07\n\\x1b[Hok\n"
    assert stream.getvalue() == out.getvalue()  # everything else is the wrapped stream's


def test_safe_text_keeps_styles_around_what_it_escapes():
    text = Text.assemble(("ok ", "green"), ("bad\x1b]2;x", "bold red"), " end")  # (Rich itself drops BEL)
    safe = safe_text(text)
    assert safe.plain == "ok bad\\x1b]2;x end"
    styles = {safe.plain[s.start:s.end]: str(s.style) for s in safe.spans}
    assert styles == {"ok ": "green", "bad\\x1b]2;x": "bold red"}
    assert safe_text(Text("clean", "blue")) is not None and safe_text(Text("clean")).plain == "clean"


def test_safe_renderable_turns_strings_into_plain_text_and_walks_tables():
    shown = safe_renderable("[bold]x[/] \x1b[2J")
    assert isinstance(shown, Text) and shown.plain == "[bold]x[/] \\x1b[2J"  # no markup parsed
    table = Table("A")
    table.add_row("\x1b]52;c;x\x07")
    safe_renderable(table)
    assert table.columns[0]._cells[0].plain == "\\x1b]52;c;x\\x07"
