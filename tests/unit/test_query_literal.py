"""`quote` writes IoT Hub string literals (backslash escapes, as the query language documents)
and the local condition parser reads back exactly what was quoted."""

from __future__ import annotations

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.hub.query import matches, parse
from fleet_tui.hub.query_literal import quote

NAMES = ["vans", "o'brien", "back\\slash", "\\'", "''", 'say "hi"', "tab\tnew\nline", "ünïcødé ✓", ""]


@pytest.mark.parametrize("name", NAMES)
def test_quote_round_trips_through_the_local_parser(name: str) -> None:
    node = parse(f"tags.fleetGroup = {quote(name)}")
    assert node.value == name
    assert matches(node, {"tags": {"fleetGroup": name}}) and not matches(node, {"tags": {"fleetGroup": name + "x"}})


def test_quote_uses_iot_hub_escapes_never_a_doubled_quote() -> None:
    assert quote("o'brien") == "'o\\'brien'" and quote("a\\b") == "'a\\\\b'" and quote("t\tx") == "'t\\u0009x'"
    assert quote("it's ''") == "'it\\'s \\'\\''"  # no '' between the outer quotes


def test_the_parser_reads_every_documented_escape_and_both_quote_styles() -> None:
    assert parse(r"deviceId = 'it\'s'").value == "it's"
    assert parse('deviceId = "say \\"hi\\" it\'\'s"').value == "say \"hi\" it''s"  # '' is no escape in "…"
    assert parse(r"deviceId = 'a\\b'").value == "a\\b" and parse(r"deviceId = '\u00e9\u0041'").value == "éA"
    assert parse("deviceId IN ['a\\'b', \"c\"]").values == ("a'b", "c")
    assert parse("deviceId = 'o''brien'").value == "o'brien"  # legacy local conditions still read


def test_an_undocumented_escape_is_one_line_naming_it() -> None:
    with pytest.raises(UsageError) as err:
        parse(r"tags.fleetGroup = 'a\nb'")
    assert "unknown escape \\n" in str(err.value) and "position 19" in str(err.value) and "\n" not in str(err.value)
