r"""String literals of IoT Hub conditions: `quote` writes one, `unquote` reads one back.

What IoT Hub accepts (learn.microsoft.com/azure/iot-hub/iot-hub-devguide-query-language,
"Expressions and conditions"): string literals are enclosed in single or double quotes, and
the allowed escapes are \' \" \\ and \uXXXX (4 hex digits). SQL's doubled quote ('') is
not in that grammar, so `quote` never writes it.

Invariants: `quote` is the one way fleet-tui puts text (group names, tag values, device ids)
into a condition, for the local hub and Azure alike, and `unquote(quote(s)) == s` for every
string. `unquote` also reads the legacy '' inside '…' (conditions an older fleet-tui stored
in a local hub), and rejects any escape IoT Hub does not document with one clear line.
"""

from __future__ import annotations

import re

from fleet_tui.errors import UsageError

_ESCAPE_SQ = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)|''", re.S)  # in '…' (with the legacy '')
_ESCAPE_DQ = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.S)  # in "…"
_SIMPLE_ESCAPES = {"'": "'", '"': '"', "\\": "\\"}


def quote(value: str) -> str:
    """`value` as an IoT Hub string literal: '…' with \\ and ' backslash-escaped and control
    characters as \\uXXXX. The local parser reads back exactly `value`."""
    out = ["'"]
    for ch in str(value):
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append("'")
    return "".join(out)


def group_condition(group_tag: str, group: str) -> str:
    """The condition selecting one device group: `tags.<group_tag> = '<group>'`."""
    return f"tags.{group_tag} = {quote(group)}"


def unquote(token: str, text: str, pos: int) -> str:
    """The value of a string token ('…' or "…"), escapes resolved; unknown escapes are an error."""

    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc is None:  # the legacy '' inside '…'
            return "'"
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        if len(esc) == 5:
            return chr(int(esc[1:], 16))
        raise UsageError(
            f"bad condition {text!r}: unknown escape \\{esc} in the string at position {pos}; "
            "IoT Hub allows only \\' \\\" \\\\ and \\uXXXX"
        )

    return (_ESCAPE_SQ if token[0] == "'" else _ESCAPE_DQ).sub(one, token[1:-1])
