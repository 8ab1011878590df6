"""LocalHub: tag queries, paging, etags, deployment precedence, materialised desired state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet_tui.errors import Conflict, NotFound, RemoteError, UsageError
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleReport, ModuleSpec
from fleet_tui.hub.shards import shard_of

A, B, C = ("sha256:" + c * 64 for c in "abc")


def spec(digest: str) -> dict[str, ModuleSpec]:
    return {"scoring": ModuleSpec("scoring", f"reg.local/ml/scoring@{digest}")}


@pytest.fixture
def hub(tmp_path: Path) -> LocalHub:
    h = LocalHub(tmp_path / "hub.sqlite")
    h.register_devices(
        (f"dev-{i:03d}", {"fleetGroup": ["vans", "trucks", "drones"][i % 3], "wave": i % 4}) for i in range(30)
    )
    yield h
    h.close()


def ids(twins) -> list[str]:
    return [t.device_id for t in twins]


def test_tag_queries(hub: LocalHub) -> None:
    vans = ids(hub.iter_devices("tags.fleetGroup = 'vans'"))
    assert vans == [f"dev-{i:03d}" for i in range(0, 30, 3)]
    early_trucks = ids(hub.iter_devices("tags.fleetGroup = 'trucks' AND tags.wave <= 1"))
    assert early_trucks == [f"dev-{i:03d}" for i in range(30) if i % 3 == 1 and i % 4 <= 1]
    assert len(ids(hub.iter_devices("NOT tags.fleetGroup IN ['vans', 'drones']"))) == 10
    assert len(ids(hub.iter_devices())) == 30
    with pytest.raises(UsageError, match="position"):
        hub.query_devices("tags.fleetGroup = ")


def test_paging_visits_every_match_once(hub: LocalHub) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = hub.query_devices("tags.wave != 0", page_size=4, continuation=token)
        seen += ids(page.items)
        pages += 1
        token = page.continuation
        if token is None:
            break
    expected = [f"dev-{i:03d}" for i in range(30) if i % 4 != 0]
    assert seen == expected and pages == (len(expected) + 3) // 4
    with pytest.raises(UsageError, match="continuation token"):
        hub.query_devices(None, continuation="garbage!")


def test_etag_conflict_rejects_stale_write(hub: LocalHub) -> None:
    twin = hub.get_device("dev-001")
    updated = hub.update_tags("dev-001", {"site": "north"}, etag=twin.etag)
    assert updated.tags == {"fleetGroup": "trucks", "wave": 1, "site": "north", "fleetShard": shard_of("dev-001")}
    assert updated.etag != twin.etag
    with pytest.raises(Conflict, match="stale"):
        hub.update_tags("dev-001", {"site": "south"}, etag=twin.etag)
    assert hub.get_device("dev-001").tags["site"] == "north"
    removed = hub.update_tags("dev-001", {"site": None})  # no etag: unconditional; None removes
    assert "site" not in removed.tags
    with pytest.raises(NotFound):
        hub.update_tags("nope", {"a": 1})
    with pytest.raises(UsageError, match="tag name"):
        hub.update_tags("dev-001", {"bad.name": 1})


def test_reports_do_not_move_the_etag(hub: LocalHub) -> None:
    etag = hub.get_device("dev-002").etag
    hub.report("dev-002", {"scoring": ModuleReport("scoring", "img", A, "downloading", bytes_downloaded=10)})
    twin = hub.get_device("dev-002")
    assert twin.etag == etag
    assert twin.reported["scoring"].bytes_downloaded == 10 and twin.state("scoring") == "downloading"


def test_deployment_precedence_by_priority_then_creation(hub: LocalHub) -> None:
    hub.create_deployment(Deployment("base", "tags.fleetGroup = 'vans'", 10, spec(A), created=100.0))
    hub.create_deployment(Deployment("early", "tags.fleetGroup = 'vans' AND tags.wave <= 1", 20, spec(B)))
    hub.create_deployment(Deployment("low", "*", 5, spec(C)))
    assert hub.desired_for("dev-000") == ("early", spec(B))  # wave 0: priority 20 beats 10
    assert hub.desired_for("dev-003")[0] == "base"  # wave 3
    assert hub.desired_for("dev-001")[0] == "low"  # a truck: only "*" matches
    # equal priority: the later-created deployment wins
    hub.create_deployment(Deployment("base-2", "tags.fleetGroup = 'vans'", 10, spec(C), created=200.0))
    assert hub.desired_for("dev-003")[0] == "base-2"
    hub.update_deployment("base", priority=30)
    assert hub.desired_for("dev-003")[0] == "base" and hub.desired_for("dev-000")[0] == "base"
    hub.delete_deployment("base")
    assert hub.desired_for("dev-000")[0] == "early"
    hub.update_deployment("early", target_condition="tags.wave = 99")
    assert hub.desired_for("dev-000")[0] == "base-2"
    assert [d.id for d in hub.list_deployments()] == ["early", "base-2", "low"]


def test_deployment_validation(hub: LocalHub) -> None:
    with pytest.raises(UsageError, match="digest-pinned"):
        hub.create_deployment(Deployment("x", "*", 1, {"scoring": ModuleSpec("scoring", "reg/ml/scoring:2")}))
    with pytest.raises(UsageError, match="position"):
        hub.create_deployment(Deployment("x", "tags.a = = 1", 1, spec(A)))
    with pytest.raises(UsageError, match="priority"):
        hub.create_deployment(Deployment("x", "*", -1, spec(A)))
    with pytest.raises(UsageError, match="deployment id"):
        hub.create_deployment(Deployment("Has Spaces", "*", 1, spec(A)))
    hub.create_deployment(Deployment("x", "*", 1, spec(A)))
    with pytest.raises(Conflict, match="immutable"):
        hub.create_deployment(Deployment("x", "*", 1, spec(B)))
    with pytest.raises(NotFound):
        hub.update_deployment("y", priority=3)
    with pytest.raises(NotFound):
        hub.delete_deployment("y")
    assert hub.get_deployment("x").modules == spec(A)


def test_bulk_tag_update_rematerialises_desired(hub: LocalHub) -> None:
    hub.create_deployment(Deployment("r42", "tags.rollout.r42 = 'on'", 50, spec(B)))
    hub.create_deployment(Deployment("base", "*", 1, spec(A)))
    wave = [f"dev-{i:03d}" for i in range(0, 10)]
    assert hub.bulk_update_tags(wave + ["unknown-device"], {"rollout": {"r42": "on"}}) == 10
    desired = hub.desired_for_many([f"dev-{i:03d}" for i in range(30)] + ["unknown-device"])
    assert len(desired) == 30
    assert {d for d, (dep, _) in desired.items() if dep == "r42"} == set(wave)
    assert desired["dev-000"][1] == spec(B) and desired["dev-020"][1] == spec(A)
    # other tags survive the merge patch; removing the tag rolls the devices back
    assert hub.get_device("dev-000").tags["fleetGroup"] == "vans"
    hub.bulk_update_tags(wave[:5], {"rollout": {"r42": None}})
    assert [hub.desired_for(d)[0] for d in wave[:6]] == ["base"] * 5 + ["r42"]
    # a changed group tag moves the device between groups and deployments
    hub.create_deployment(Deployment("drones", "tags.fleetGroup = 'drones'", 60, spec(C)))
    hub.bulk_update_tags(["dev-001"], {"fleetGroup": "drones"})
    assert hub.desired_for("dev-001")[0] == "drones"
    assert hub.get_device("dev-001").desired == spec(C)


def test_registration_is_idempotent_and_materialises(hub: LocalHub) -> None:
    hub.create_deployment(Deployment("vans", "tags.fleetGroup = 'vans'", 1, spec(A)))
    assert hub.register_devices([("dev-000", {"fleetGroup": "other"}), ("new-1", {"fleetGroup": "vans"})]) == 1
    assert hub.get_device("dev-000").tags["fleetGroup"] == "vans"  # existing device untouched
    assert hub.desired_for("new-1")[0] == "vans"
    with pytest.raises(UsageError, match="device id"):
        hub.register_devices([("bad id/with slash", {})])
    with pytest.raises(NotFound):
        hub.desired_for("never-registered")


def test_group_summaries_count_images_and_online(tmp_path: Path) -> None:
    hub = LocalHub(tmp_path / "h.sqlite", stale_after=60)
    hub.register_devices((f"d{i}", {"fleetGroup": "vans" if i < 6 else "trucks"}) for i in range(10))
    hub.register_devices([("loose", {})])
    reports = [(f"d{i}", {"scoring": ModuleReport("scoring", "i", A if i % 2 else B, "running")}, True) for i in range(8)]
    assert hub.report_many(reports + [("ghost", {}, True)]) == 8
    hub.report("d0", {"scoring": ModuleReport("scoring", "i", B, "running")}, connected=False)
    # d1 was last seen long ago: offline although it said connected
    hub.store.conn.execute("UPDATE devices SET last_seen = ? WHERE device_id = 'd1'", (time.time() - 3600,))
    summary = {g.name: g for g in hub.group_summaries("scoring")}
    assert summary["vans"].devices == 6 and summary["vans"].images == {A: 3, B: 3}
    assert (summary["vans"].online, summary["vans"].offline) == (4, 2)
    assert summary["trucks"].images == {B: 1, A: 1} and summary["trucks"].offline == 2  # d8, d9 never reported
    assert summary[""].devices == 1
    assert hub.get_device("d1").state("scoring") == "offline" and hub.get_device("d2").state("scoring") == "running"
    assert hub.get_device("d9").state("scoring") == "offline"
    other = {g.name: g for g in hub.group_summaries("other-module")}  # unindexed path, same shape
    assert other["vans"].devices == 6 and other["vans"].images == {}
    hub.close()


def test_reopening_with_another_group_tag_recomputes_groups(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    first = LocalHub(path)
    first.register_devices([("a", {"fleetGroup": "vans", "site": "north"}), ("b", {"site": "south"})])
    first.create_deployment(Deployment("north", "tags.site = 'north'", 1, spec(A)))
    first.close()
    second = LocalHub(path, group_tag="site")
    assert sorted(g.name for g in second.group_summaries("scoring")) == ["north", "south"]
    assert ids(second.iter_devices("tags.site = 'south'")) == ["b"]
    assert second.desired_for("a")[0] == "north"
    second.close()


def test_unopenable_file_is_one_line_remote_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RemoteError, match="cannot be opened") as err:
        LocalHub(bad)
    assert "\n" not in str(err.value)


def test_worker_threads_may_share_one_hub(hub: LocalHub) -> None:
    import threading

    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(50):
                hub.report_many([(f"dev-{n:03d}", {"scoring": ModuleReport("scoring", "i", A, "running")}, True)])
                hub.group_summaries("scoring")
                hub.bulk_update_tags([f"dev-{n:03d}"], {"touched": n})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [hub.get_device(f"dev-{n:03d}").tags["touched"] for n in range(6)] == list(range(6))
    assert hub.desired_for("dev-000") == ("", {})  # no deployments: nothing desired


def test_unreachable_hub_location_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RemoteError, match="check hub.path") as err:
        LocalHub(blocker / "sub" / "hub.sqlite")  # parent is a file: cannot be created
    assert "\n" not in str(err.value)
