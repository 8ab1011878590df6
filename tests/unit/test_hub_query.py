"""The IoT Hub condition subset: parsing, three-valued evaluation, and SQL that agrees."""

from __future__ import annotations

import json
import sqlite3

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.hub.query import matches, parse
from fleet_tui.hub.query_sql import compile_sql

TWINS = [
    {"deviceId": "van-1", "tags": {"fleetGroup": "vans-west", "wave": 1, "rollout": {"r42": "on"}, "gpu": True}},
    {"deviceId": "van-2", "tags": {"fleetGroup": "vans-west", "wave": 3}},
    {"deviceId": "truck-1", "tags": {"fleetGroup": "trucks", "wave": 2.5, "gpu": False}},
    {"deviceId": "truck-2", "tags": {"fleetGroup": "trucks", "wave": "2"}},  # text, not a number
    {"deviceId": "bare", "tags": {}},
    {"deviceId": "o'brien", "tags": {"fleetGroup": 7}},  # a number where text is usual
]

CASES = [
    ("tags.fleetGroup = 'vans-west' AND tags.wave <= 2", {"van-1"}),
    ("tags.fleetGroup = 'vans-west' OR tags.fleetGroup = 'trucks'", {"van-1", "van-2", "truck-1", "truck-2"}),
    ("tags.wave > 1", {"van-2", "truck-1"}),
    ("tags.wave >= 2.5", {"van-2", "truck-1"}),
    ("tags.wave < 3", {"van-1", "truck-1"}),
    ("tags.wave != 3", {"van-1", "truck-1"}),  # missing or text wave: unknown, never a match
    ("tags.wave <> 3", {"van-1", "truck-1"}),
    ("tags.wave = '2'", {"truck-2"}),
    ("NOT (tags.wave = 3)", {"van-1", "truck-1"}),  # NOT unknown stays unknown
    ("NOT tags.fleetGroup = 'trucks'", {"van-1", "van-2"}),
    ("tags.rollout.r42 = 'on'", {"van-1"}),
    ("tags.fleetGroup IN ['trucks', 'nobody']", {"truck-1", "truck-2"}),
    ("tags.fleetGroup NOT IN ['trucks']", {"van-1", "van-2"}),
    ("deviceId IN ['bare', 'van-2'] AND NOT deviceId = 'van-2'", {"bare"}),
    ("deviceId = 'o''brien'", {"o'brien"}),
    ("tags.fleetGroup = 7", {"o'brien"}),
    ("tags.gpu = true", {"van-1"}),
    ("tags.gpu != TRUE", {"truck-1"}),
    ("2 <= tags.wave", {"van-2", "truck-1"}),
    ("(tags.wave = 1 OR tags.wave = 3) AND (tags.fleetGroup = 'vans-west')", {"van-1", "van-2"}),
    ("tags.wave = 1 OR tags.wave = 3 AND tags.fleetGroup = 'trucks'", {"van-1"}),  # AND binds tighter
    ("tags.fleetgroup = 'trucks'", set()),  # names are case-sensitive
    ("tags.fleetGroup = 'trucks' and tags.wave = 2.5", {"truck-1"}),  # keywords are not
    ("*", {t["deviceId"] for t in TWINS}),
]


@pytest.mark.parametrize("condition,expected", CASES)
def test_evaluate_in_python(condition: str, expected: set[str]) -> None:
    assert {t["deviceId"] for t in TWINS if matches(condition, t)} == expected


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE devices (device_id TEXT, tags TEXT, grp TEXT)")
    for t in TWINS:
        grp = t["tags"].get("fleetGroup")
        conn.execute(
            "INSERT INTO devices VALUES (?, ?, ?)",
            (t["deviceId"], json.dumps(t["tags"]), grp if isinstance(grp, str) else None),
        )
    return conn


@pytest.mark.parametrize("group_tag", ["fleetGroup", ""])
@pytest.mark.parametrize("condition,expected", CASES)
def test_sql_agrees_with_python(db: sqlite3.Connection, condition: str, expected: set[str], group_tag: str) -> None:
    sql, params = compile_sql(parse(condition), group_tag)
    rows = db.execute(f"SELECT device_id FROM devices WHERE {sql}", params).fetchall()
    assert {r[0] for r in rows} == expected


@pytest.mark.parametrize(
    "condition,fragment",
    [
        ("tags.a =", "position 9"),
        ("tags.a == 'x'", "found '='"),
        ("(tags.a = 1", "expected ')'"),
        ("tags.a = 'x' tags.b = 1", "found 'tags.b'"),
        ("tags.a # 1", "'#' at position 8"),
        ("tags.a IN ['x',]", "found ']'"),
        ("tags.a IN 'x'", "expected '['"),
        ("tags.a = 'open", "position 10"),
        ("AND tags.a = 1", "found 'AND'"),
        ("tags.a = 1 OR", "found 'end of condition'"),
        ("", "empty condition"),
        ("'x' = 'y'", "property path"),
    ],
)
def test_malformed_condition_is_one_line_naming_where(condition: str, fragment: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(condition)
    message = str(err.value)
    assert "\n" not in message
    assert fragment in message


def test_unsupported_path_in_sql_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="properties.reported.x"):
        compile_sql(parse("properties.reported.x = 1"))
    # ... but Python evaluation on a full twin dict handles any path
    assert matches("properties.reported.x = 1", {"properties": {"reported": {"x": 1}}})
