"""The local hub's SQL listing (fleet_tui.hub.local_listing) agrees with the plain-Python
listing over the same twins (`MemoryListing` fed by `iter_devices`, as Azure is served):
same totals, same counts per state, same windows in the same order — for every sort, both
directions, needles with LIKE's special characters, state filters, offline devices and
devices that never reported. Windows of one query tile the list: no overlap, no gap."""

from __future__ import annotations

import itertools
import time

import pytest

from fleet_tui.hub.listing import SORTS, ListQuery, MemoryListing, listed, stream
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.hub.query_literal import group_condition

DIGESTS = ["sha256:" + c * 64 for c in "abc"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> LocalHub:
    hub = LocalHub(tmp_path_factory.mktemp("listing") / "hub.sqlite", stale_after=60)
    ids = [f"dev-{i:04d}" for i in range(240)] + ["odd_1%", "odd-x1", "we'ird", "Upper-CASE"]
    groups = ["vans", "trucks", "it's quoted"]
    hub.register_devices((d, {"fleetGroup": groups[i % 3], **({"link": "wifi"} if i % 5 == 0 else {})})
                         for i, d in enumerate(ids))
    states = ["running", "downloading", "failed", "applying", ""]
    reports = []
    for i, d in enumerate(ids):
        if i % 11 == 7:
            continue  # never reported: pending, or offline once stale
        state = states[i % len(states)]
        reports.append((d, {"scoring": ModuleReport("scoring", f"reg/ml/scoring@{DIGESTS[i % 3]}", DIGESTS[i % 3], state,
                                                    link="lte" if i % 4 == 0 else "")}, i % 13 != 0))
    hub.report_many(reports)
    with hub.store.write() as conn:  # a few devices last seen long ago: offline though "connected"
        conn.execute("UPDATE devices SET last_seen = ? WHERE device_id LIKE 'dev-00_3'", (time.time() - 3600,))
    yield hub
    hub.close()


def oracle(hub: LocalHub) -> MemoryListing:
    return MemoryListing(lambda cond: [listed(t, hub.module, hub.group_tag) for t in hub.iter_devices(cond or None)])


QUERIES = [
    ListQuery(group_condition("fleetGroup", g), needle, (), sort, desc, state)
    for g, needle, sort, desc, state in itertools.product(
        ["vans", "it's quoted"], ["", "1%", "_", "ODD", "wifi", "offline", "cccc"], SORTS, [False, True], ["", "running"])
] + [ListQuery("", "dev-01"), ListQuery("tags.link = 'wifi'", sort="state")]


@pytest.mark.parametrize("q", QUERIES, ids=lambda q: f"{q.condition[-14:]}|{q.needle}|{q.sort}|{q.descending}|{q.state}")
def test_sql_listing_agrees_with_python(hub: LocalHub, q: ListQuery) -> None:
    sql, py = hub.listing(), oracle(hub)
    assert sql.total(q) == py.total(q)
    assert sql.state_counts(q) == py.state_counts(q)
    assert list(sql.window(q, 0, 10_000)) == list(py.window(q, 0, 10_000))


def test_windows_tile_the_list_and_survive_odd_bounds(hub: LocalHub) -> None:
    q = ListQuery(group_condition("fleetGroup", "vans"), sort="state")
    sql = hub.listing()
    whole = list(sql.window(q, 0, 10_000))
    tiled = [d for off in range(0, len(whole), 7) for d in sql.window(q, off, 7)]
    assert tiled == whole and len({d.id for d in whole}) == len(whole) == sql.total(q) > 50
    assert list(sql.window(q, len(whole) + 5, 10)) == [] and list(sql.window(q, -3, 2)) == whole[:2]


def test_needle_is_a_substring_not_a_pattern(hub: LocalHub) -> None:
    ids = [d.id for d in hub.listing().window(ListQuery(needle="1%"), 0, 100)]
    assert ids == ["odd_1%"]  # "%" is literal: dev-0001 … do not match
    assert [d.id for d in hub.listing().window(ListQuery(needle="d_1"), 0, 100)] == ["odd_1%"]


def test_states_follow_the_twin_rules(hub: LocalHub) -> None:
    by_id = {d.id: d for d in hub.listing().window(ListQuery(), 0, 10_000)}
    for twin in hub.iter_devices():
        assert by_id[twin.device_id].state == twin.state("scoring"), twin.device_id
    assert {"offline", "pending", "running"} <= {d.state for d in by_id.values()}


def test_stream_pages_everything_in_id_order(hub: LocalHub) -> None:
    from fleet_tui.hub import local_listing

    q = ListQuery(group_condition("fleetGroup", "trucks"), state="running")
    old, local_listing.CHUNK = local_listing.CHUNK, 4  # many pages of a small hub
    try:
        got = [d.id for d in stream(hub, q, "scoring")]
    finally:
        local_listing.CHUNK = old
    assert got == sorted(got) == [d.id for d in oracle(hub).window(q, 0, 10_000)] and len(got) > 8
