"""Compile a parsed IoT Hub condition (fleet_tui.hub.query) to SQLite SQL for the local hub.

Invariant: the SQL has the same three-valued result as `query.evaluate` — a comparison
whose tag is missing or of another type is NULL (CASE … ELSE NULL guards the JSON type),
and SQLite's AND/OR/NOT are three-valued too — so a condition selects the same devices
whether evaluated in Python or in the hub. Paths: `deviceId` and `tags.<name>[.<name>…]`;
anything else is a UsageError. `tags.<group_tag>` compared with text uses the indexed
group column, which mirrors the tag when it is text and is NULL otherwise.
Literals and JSON paths are always bound parameters, never spliced into the SQL.
"""

from __future__ import annotations

from typing import Any

from fleet_tui.errors import UsageError
from fleet_tui.hub.query import Compare, Everything, In, Literal, Node, Not, value_kind


def _json_path(parts: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{p}"' for p in parts)


_SQL_TYPES = {"str": "('text')", "num": "('integer','real')", "bool": "('true','false')"}


def compile_sql(node: Node, group_tag: str = "", group_column: str = "grp") -> tuple[str, list[Any]]:
    """SQL (over columns device_id, tags JSON and `group_column`) with the same
    three-valued result as `evaluate`, and its parameters."""
    params: list[Any] = []

    def cmp_sql(path: tuple[str, ...], op: str, value: Literal) -> str:
        op = "!=" if op == "<>" else op
        if value is None:
            return "NULL"
        if path == ("deviceId",):
            if not isinstance(value, str) or isinstance(value, bool):
                return "NULL"
            params.append(value)
            return f"(device_id {op} ?)"
        if len(path) < 2 or path[0] != "tags":
            raise UsageError(f"condition path {'.'.join(path)!r} is not supported: use deviceId or tags.<name>")
        if path == ("tags", group_tag) and isinstance(value, str) and group_column:
            params.append(value)  # the group column holds the tag when it is text, else NULL
            return f"({group_column} {op} ?)"
        jpath = _json_path(path[1:])
        kind = value_kind(value)
        if kind == "bool" and op not in ("=", "!="):
            return "NULL"
        params.extend([jpath, jpath, int(value) if kind == "bool" else value])
        return f"(CASE WHEN json_type(tags, ?) IN {_SQL_TYPES[kind]} THEN json_extract(tags, ?) {op} ? ELSE NULL END)"

    def walk(n: Node) -> str:
        if isinstance(n, Everything):
            return "1"
        if isinstance(n, Compare):
            return cmp_sql(n.path, n.op, n.value)
        if isinstance(n, In):
            return "(" + " OR ".join(cmp_sql(n.path, "=", v) for v in n.values) + ")"
        if isinstance(n, Not):
            return f"(NOT {walk(n.operand)})"
        return f"({walk(n.left)} {n.op} {walk(n.right)})"

    return walk(node), params
