"""The IoT Hub query subset the fake hub evaluates: `SELECT * | path [AS alias], …
FROM devices | devices.modules [WHERE atom AND atom …]`, atoms `path = literal`,
`path != literal` and `path IN [literal, …]`, string literals with backslash escapes and
numbers. Anything else raises ValueError (the route answers 400, like the hub would)."""

from __future__ import annotations

import re
from typing import Any, Iterable

_QUERY = re.compile(r"^\s*SELECT\s+(?P<sel>.+?)\s+FROM\s+(?P<coll>devices(?:\.modules)?)(?:\s+WHERE\s+(?P<where>.+))?\s*$", re.I | re.S)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:\\.|[^'\\])*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>!=|=|IN\b|AND\b|\[|\]|,)|(?P<path>[$A-Za-z_][\w.$-]*))", re.I)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse query near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("str"):
            out.append(("lit", re.sub(r"\\(.)", r"\1", m.group("str")[1:-1])))
        elif m.group("num"):
            out.append(("lit", float(m.group("num")) if "." in m.group("num") else int(m.group("num"))))
        elif m.group("op"):
            out.append(("op", m.group("op").upper()))
        else:
            out.append(("path", m.group("path")))
    return out


def resolve(row: dict, path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _atoms(where: str) -> list[tuple[str, str, Any]]:
    toks = _tokens(where)
    atoms: list[tuple[str, str, Any]] = []
    i = 0
    while i < len(toks):
        kind, path = toks[i]
        if kind != "path" or i + 2 >= len(toks) + 1:
            raise ValueError("expected a property path")
        op = toks[i + 1][1]
        if op in ("=", "!="):
            atoms.append((path, op, toks[i + 2][1]))
            i += 3
        elif op == "IN":
            if toks[i + 2] != ("op", "["):
                raise ValueError("expected [ after IN")
            j, values = i + 3, []
            while toks[j] != ("op", "]"):
                if toks[j][0] == "lit":
                    values.append(toks[j][1])
                j += 1
            atoms.append((path, "IN", values))
            i = j + 1
        else:
            raise ValueError(f"unsupported operator {op}")
        if i < len(toks):
            if toks[i] != ("op", "AND"):
                raise ValueError("only AND is supported between conditions")
            i += 1
    return atoms


def _match(row: dict, atoms: Iterable[tuple[str, str, Any]]) -> bool:
    for path, op, value in atoms:
        got = resolve(row, path)
        if op == "=" and got != value or op == "!=" and got == value or op == "IN" and got not in value:
            return False
    return True


def run_query(sql: str, devices: list[dict], modules: list[dict]) -> list[dict]:
    m = _QUERY.match(sql)
    if not m:
        raise ValueError("not a SELECT … FROM devices query")
    rows = modules if m.group("coll").lower() == "devices.modules" else devices
    atoms = _atoms(m.group("where")) if m.group("where") else []
    rows = [r for r in rows if _match(r, atoms)]
    sel = m.group("sel").strip()
    if sel == "*":
        return rows
    fields = []
    for item in sel.split(","):
        parts = item.strip().split()
        path = parts[0]
        alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else path.split(".")[-1]
        fields.append((path, alias))
    out = []
    for row in rows:
        projected = {alias: resolve(row, path) for path, alias in fields}
        out.append({k: v for k, v in projected.items() if v is not None})
    return out
