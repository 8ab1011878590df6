"""The Azure fast path of planning facts (fleet_tui.hub.azure_facts) against the fake hub through
the real SDK: each device's facts equal what the per-page twin join gives, in the same order,
and the queries it spends grow with pages of 1000, not with `IN` lists of ~450 ids."""

from __future__ import annotations

import pytest

from fleet_tui.hub.azure import AzureHub
from fleet_tui.hub.azure_retry import HubLimits
from fleet_tui.hub.facts import facts_of, group_facts
from fleet_tui.secrets import Secret
from tests.support.edge_twins import deploy, module, report
from tests.support.fake_iothub import FakeIotHub

OLD = "myacr.azurecr.io/scoring@sha256:" + "a" * 64
NEW = "myacr.azurecr.io/scoring@sha256:" + "b" * 64
FAST = HubLimits(queries_per_s=1e6, config_writes_per_s=1e6, twin_updates_per_s=1e6, other_per_s=1e6, burst=1e6,
                 backoff_base=0.01, job_poll_interval=0.01, max_attempts=4)
VANS = "tags.fleetGroup = 'vans'"
LONG_AGO = "2026-01-01T00:00:00Z"


def _stale(fake: FakeIotHub, device_id: str) -> None:
    """The agent last reported long before the liveness window."""
    with fake.lock:
        fake.modules[(device_id, "$edgeAgent")]["properties"]["reported"]["$metadata"] = {"$lastUpdated": LONG_AGO}


@pytest.fixture
def fake(tmp_path):
    hub = FakeIotHub(tmp_path, throttle=False).start()
    yield hub
    hub.stop()


def _hub(fake: FakeIotHub, **kw) -> AzureHub:
    return AzureHub(Secret(fake.connection_string), limits=FAST, ca_bundle=str(fake.cert), **kw)


def _by_device(groups) -> dict[str, tuple]:
    """device id → its facts with the desired module compared by content, not identity."""
    out = {}
    for g in groups:
        f = g.facts
        desired = None if f.desired is None else (f.desired.name, f.desired.image, f.desired.create_options)
        for d in g.device_ids:
            out[d] = (*f._replace(desired=None), desired)
    return out


def _in_listing_order(groups, listing: list[str]) -> bool:
    """Every group's devices in the order the hub lists them (what plan ordering starts from)."""
    rank = {d: i for i, d in enumerate(listing)}
    return all(g.device_ids == sorted(g.device_ids, key=rank.__getitem__) for g in groups)


def _queries(fake: FakeIotHub, mark: int) -> list[str]:
    return [r.body["query"] for r in fake.requests[mark:] if r.path == "/devices/query"]


def test_facts_equal_the_twin_join_for_every_kind_of_device(fake):
    """Recent reports, stale agents with edgeHub up or down, agents that never reported, a device
    whose runtime twins are gone, two deployments applied, sites and links, other groups."""
    deploy(fake, "base", VANS, 1, {"scoring": module(OLD)})
    deploy(fake, "release", VANS + " AND tags.ring = 'early'", 5, {"scoring": module(NEW)}, base=False)
    kinds = {}
    for i in range(12):
        kind = ("recent", "stale-up", "stale-down", "silent", "no-runtime-twins", "early")[i % 6]
        tags = {"fleetGroup": "vans", "site": f"depot-{i % 2}", **({"ring": "early"} if kind == "early" else {})}
        with fake.lock:  # the fake's own evaluation thread reads its twins meanwhile
            fake.add_device(f"van-{i}", tags, connected=kind != "stale-down")
        kinds[f"van-{i}"] = kind
    with fake.lock:
        fake.add_device("truck-1", {"fleetGroup": "trucks"})
        fake.add_device("sensor-1", {"fleetGroup": "vans"}, edge=False)
    fake.settle()
    for device_id, kind in kinds.items():
        if kind in ("recent", "stale-up", "stale-down"):
            report(fake, device_id, {"scoring": OLD}, arch="aarch64" if device_id == "van-6" else "x86_64")
        if kind == "early":
            report(fake, device_id, {"scoring": NEW})
        if kind.startswith("stale"):
            _stale(fake, device_id)
        if kind == "no-runtime-twins":
            with fake.lock:
                del fake.modules[(device_id, "$edgeAgent")], fake.modules[(device_id, "$edgeHub")]
        fake.devices[device_id]["properties"]["reported"]["network"] = {"kind": "lte" if kind == "recent" else "wifi"}
    azure = _hub(fake, link_property="network.kind")
    try:
        fast = azure.fact_groups(VANS, "scoring", "site")
        twins = list(azure.iter_devices(VANS))
    finally:
        azure.close()
    slow = group_facts(facts_of(t, "scoring", "site") for t in twins)
    assert _by_device(fast) == _by_device(slow) and len(_by_device(fast)) == 12
    assert _in_listing_order(fast, [t.device_id for t in twins]) and len(fast) < len(slow)
    seen = _by_device(fast)
    assert seen["van-1"][6] and not seen["van-2"][6]  # stale agent: edgeHub decides (up / down)
    assert seen["van-5"][8] == "release" and seen["van-0"][8] == "base"  # the higher priority wins
    assert seen["van-0"][7] == "lte" and seen["van-6"][4] == "linux/arm64" and seen["van-0"][9] == "depot-0"


def _counted(fake: FakeIotHub, read) -> tuple:
    """What `read()` returns, and the query texts it sent."""
    mark = len(fake.requests)
    return read(), _queries(fake, mark)


def _fleet(fake: FakeIotHub, vans: int, trucks: int, vans_run: str) -> AzureHub:
    """Vans and trucks on one base deployment, every agent reporting; the hub to read them."""
    deploy(fake, "base", "tags.fleetGroup = 'vans' OR tags.fleetGroup = 'trucks'", 1, {"scoring": module(OLD)})
    for group, n, image in (("vans", vans, vans_run), ("trucks", trucks, OLD)):
        with fake.lock:  # the fake's own evaluation thread reads its twins meanwhile
            for i in range(n):
                fake.add_device(f"{group}-device-{i:06d}", {"fleetGroup": group})
        fake.settle()
        for i in range(n):
            report(fake, f"{group}-device-{i:06d}", {"scoring": image})
    return _hub(fake)


def test_a_group_that_is_most_of_the_hub_is_read_by_pages_not_in_lists(fake):
    azure = _fleet(fake, 2100, 10, OLD)
    try:
        fast, queries = _counted(fake, lambda: azure.fact_groups(VANS, "scoring"))
        slow, joined = _counted(fake, lambda: group_facts(facts_of(t, "scoring") for t in azure.iter_devices(VANS)))
    finally:
        azure.close()
    assert _by_device(fast) == _by_device(slow) and len(_by_device(fast)) == 2100
    # 3 pages of device twins + 1 count of the hub's Edge devices + 3 pages of every $edgeAgent
    assert len(queries) == 7 and not any("deviceId IN" in q for q in queries), queries
    assert len(joined) > len(queries)  # the per-page join: IN lists of both runtime twins
    assert len(fast) == 1 and len(slow) == 2100  # one state: the same module, interned
    assert fast[0].device_ids == [g.device_ids[0] for g in slow]  # in the hub's order


def test_a_small_group_of_a_big_hub_is_read_by_in_lists(fake):
    azure = _fleet(fake, 600, 3000, NEW)
    try:
        groups, queries = _counted(fake, lambda: azure.fact_groups(VANS, "scoring"))
    finally:
        azure.close()
    assert len(_by_device(groups)) == 600 and {g.facts.image for g in groups} == {NEW}
    scans = [q for q in queries if q.startswith("SELECT * FROM devices.modules") and "deviceId IN" not in q]
    assert not scans and sum("deviceId IN" in q for q in queries) == 2, queries
