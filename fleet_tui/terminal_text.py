"""Text from hubs, registries and devices on its way to an operator's terminal.

Group names, device ids, tags, error texts a device reports, image labels: anyone who can
write to the hub or push to the registry chooses them. Printed raw, an escape sequence in
one sets the terminal's title, rewrites its clipboard (OSC 52) or hides lines. So every
such string is shown *visibly*: control characters (C0 but tab/newline where lines are
kept, DEL, C1), line/paragraph separators and bidirectional overrides become escapes like
`\\x1b` or `\\u202e`, never interpreted. `--json` output needs nothing: JSON escapes them.

`visible()` is for one field (a table cell, a line); `SafeStream` wraps the CLI's stdout and
stderr so every line a command prints goes through the same rule (newlines and tabs kept).
Pure Python: the console (fleet_tui.ui) applies the same function to what it draws.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

# C0 except \t \n, DEL, C1; U+2028/2029; bidi embeddings/overrides/isolates; BOM
_UNSAFE_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, keep_lines: bool = False) -> str:
    """`text` with every control character shown as an escape (tab and newline kept with
    `keep_lines`). Text without any is returned as it is (the common case costs one scan)."""
    pattern = _UNSAFE_KEEP_LINES if keep_lines else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


class SafeStream:
    """A text stream whose writes pass through `visible(…, keep_lines=True)`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(visible(text, keep_lines=True))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer …
        return getattr(self._stream, name)


def raw_stream(stream: Any) -> Any:
    """The stream under a `SafeStream` (or `stream` itself): for output that is escaped
    already — JSON from `json.dumps`, ASCII with every control character as `\\uXXXX` — and
    large enough that a second pass over it would cost the operator's wait."""
    return stream._stream if isinstance(stream, SafeStream) else stream
