r"""The IoT Hub condition subset: parse, evaluate on a twin dict, compile to SQLite SQL.

Grammar (keywords case-insensitive, as in IoT Hub):

    expr       := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | '(' expr ')' | comparison
    comparison := path OP literal | literal OP path | path [NOT] IN '[' literal (',' literal)* ']'
    OP         := = | != | <> | < | <= | > | >=
    path       := name ('.' name)*          e.g. deviceId, tags.fleetGroup, tags.rollout.r42
    literal    := string | number | true | false | null
    string     := '…' or "…" with IoT Hub's escapes \' \" \\ \uXXXX (and, local only, the
                  legacy '' for a quote inside '…', which fleet-tui no longer writes)

String literals are read by `query_literal.unquote`, and `query_literal.quote` is the one
way fleet-tui writes one (see there for what IoT Hub accepts).

`*` alone matches every device (the target condition of an "all devices" deployment).

Invariants: evaluation is three-valued like IoT Hub and SQL — comparing a missing value,
or a string with a number, is *unknown* (None), which never matches, and NOT unknown is
still unknown. `query_sql.compile_sql` yields SQL with the same three-valued result (CASE … ELSE NULL
guards the types), so Python evaluation and the SQLite hub always agree. A malformed
condition raises `UsageError` with one line naming the position and the offending token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Union

from fleet_tui.errors import UsageError
from fleet_tui.hub.query_literal import unquote

Literal = Union[str, int, float, bool, None]
_OPS = {"=", "!=", "<>", "<", "<=", ">", ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!=", "<>": "<>"}
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:\\.|''|[^'\\])*'|\"(?:\\.|[^\"\\])*\")|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[()\[\],*])"
    r"|(?P<path>[A-Za-z_$][A-Za-z0-9_$-]*(?:\.[A-Za-z0-9_$][A-Za-z0-9_$-]*)*))"
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "TRUE", "FALSE", "NULL"}


@dataclass(frozen=True)
class Compare:
    path: tuple[str, ...]
    op: str
    value: Literal


@dataclass(frozen=True)
class In:
    path: tuple[str, ...]
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" | "OR"
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class Everything:
    pass


Node = Union[Compare, In, BoolOp, Not, Everything]


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise UsageError(f"bad condition {text!r}: unexpected character {text[start]!r} at position {start + 1}")
        kind = m.lastgroup or ""
        value, start = m.group(kind), m.start(kind) + 1
        if kind == "path" and value.upper() in _KEYWORDS:
            kind, value = "kw", value.upper()
        tokens.append((kind, value, start))
        pos = m.end()
    tokens.append(("end", "end of condition", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str) -> UsageError:
        _, value, pos = self.peek()
        return UsageError(f"bad condition {self.text!r}: expected {expected} at position {pos}, found {value!r}")

    def expect(self, kind: str, value: str, expected: str) -> None:
        k, v, _ = self.peek()
        if k != kind or v != value:
            raise self.fail(expected)
        self.i += 1

    def parse(self) -> Node:
        if self.peek()[:2] == ("punct", "*") and self.tokens[1][0] == "end":
            return Everything()
        if self.peek()[0] == "end":
            raise UsageError("empty condition: write one like \"tags.fleetGroup = 'vans'\" (or * for all devices)")
        node = self.or_expr()
        if self.peek()[0] != "end":
            raise self.fail("AND, OR or the end")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.peek()[:2] == ("kw", "OR"):
            self.take()
            node = BoolOp("OR", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.peek()[:2] == ("kw", "AND"):
            self.take()
            node = BoolOp("AND", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        kind, value, _ = self.peek()
        if (kind, value) == ("kw", "NOT"):
            self.take()
            return Not(self.not_expr())
        if (kind, value) == ("punct", "("):
            self.take()
            node = self.or_expr()
            self.expect("punct", ")", "')'")
            return node
        return self.comparison()

    def literal(self) -> Literal:
        kind, value, pos = self.peek()
        if kind == "str":
            self.take()
            return unquote(value, self.text, pos)
        if kind == "num":
            self.take()
            return float(value) if any(c in value for c in ".eE") else int(value)
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            self.take()
            return {"TRUE": True, "FALSE": False, "NULL": None}[value]
        raise self.fail("a literal ('text', number, true, false)")

    def comparison(self) -> Node:
        kind, value, _ = self.peek()
        if kind == "path":
            self.take()
            path = tuple(value.split("."))
            k, v, _ = self.peek()
            negate = (k, v) == ("kw", "NOT")
            if negate:
                self.take()
                k, v, _ = self.peek()
            if (k, v) == ("kw", "IN"):
                self.take()
                node: Node = In(path, self.literal_list())
                return Not(node) if negate else node
            if negate or k != "op":
                raise self.fail("a comparison operator or IN")
            op = self.take()[1]
            return Compare(path, op, self.literal())
        if kind in ("str", "num") or (kind == "kw" and value in ("TRUE", "FALSE", "NULL")):
            lit = self.literal()
            if self.peek()[0] != "op":
                raise self.fail("a comparison operator")
            op = self.take()[1]
            k, v, _ = self.peek()
            if k != "path":
                raise self.fail("a property path like tags.fleetGroup")
            self.take()
            return Compare(tuple(v.split(".")), _FLIP[op], lit)
        raise self.fail("a property path like tags.fleetGroup")

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect("punct", "[", "'['")
        values = [self.literal()]
        while self.peek()[:2] == ("punct", ","):
            self.take()
            values.append(self.literal())
        self.expect("punct", "]", "',' or ']'")
        return tuple(values)


def parse(condition: str) -> Node:
    """Parse a condition; raises UsageError naming the position of the first bad token."""
    return _Parser(condition.strip()).parse()


# --- evaluation on a twin dict ------------------------------------------------------

_MISSING = object()


def _lookup(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    return "other"


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _compare(actual: Any, op: str, expected: Literal) -> bool | None:
    if actual is _MISSING or actual is None or expected is None:
        return None
    kind = value_kind(actual)
    if kind != value_kind(expected) or kind == "other" or (kind == "bool" and op not in ("=", "!=", "<>")):
        return None
    return _CMP[op](actual, expected)


def evaluate(node: Node, doc: dict[str, Any]) -> bool | None:
    """Three-valued result of `node` on a twin dict like {"deviceId": …, "tags": {…}}."""
    if isinstance(node, Everything):
        return True
    if isinstance(node, Compare):
        return _compare(_lookup(doc, node.path), node.op, node.value)
    if isinstance(node, In):
        results = [_compare(_lookup(doc, node.path), "=", v) for v in node.values]
        return True if True in results else (None if None in results else False)
    if isinstance(node, Not):
        inner = evaluate(node.operand, doc)
        return None if inner is None else not inner
    left, right = evaluate(node.left, doc), evaluate(node.right, doc)
    if node.op == "AND":
        return False if False in (left, right) else (None if None in (left, right) else True)
    return True if True in (left, right) else (None if None in (left, right) else False)


def matches(condition: str | Node, doc: dict[str, Any]) -> bool:
    node = parse(condition) if isinstance(condition, str) else condition
    return evaluate(node, doc) is True
