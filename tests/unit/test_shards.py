"""Stable shard tags (hub/shards.py): a pure function of the id, set at enrollment, and a
backfill that writes only the missing or wrong ones and can be run again."""

from __future__ import annotations

from collections import Counter

from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.shards import SHARDS, backfill, census, current_shards, shard_of, valid_shard


def test_shard_is_stable_two_digits_and_spread():
    ids = [f"van-{i:06d}" for i in range(20_000)]
    shards = [shard_of(d) for d in ids]
    assert shards == [shard_of(d) for d in ids]
    assert all(valid_shard(s) for s in shards)
    counts = Counter(shards)
    assert len(counts) == SHARDS
    assert max(counts.values()) < 1.3 * 20_000 / SHARDS and min(counts.values()) > 0.7 * 20_000 / SHARDS


def test_enrollment_sets_the_shard_and_keeps_a_given_one(tmp_path):
    hub = LocalHub(tmp_path / "hub.sqlite")
    hub.register_devices([("a-1", {"fleetGroup": "vans"}), ("a-2", {"fleetGroup": "vans", "fleetShard": "zz"})])
    assert hub.get_device("a-1").tags["fleetShard"] == shard_of("a-1")
    assert hub.get_device("a-2").tags["fleetShard"] == "zz"  # enrollment never overwrites
    hub.close()


def test_backfill_writes_missing_and_wrong_only_then_nothing(tmp_path):
    hub = LocalHub(tmp_path / "hub.sqlite", shard_tag="")  # enrolled elsewhere: no shard tags
    ids = [f"d-{i:04d}" for i in range(300)]
    hub.register_devices((d, {"fleetGroup": "vans"}) for d in ids)
    hub.update_tags(ids[0], {"fleetShard": shard_of(ids[0])})
    hub.update_tags(ids[1], {"fleetShard": "not-a-shard"})
    found = census(current_shards(hub, "fleetShard", None))
    assert (found.devices, found.right, found.wrong, found.missing) == (300, 1, 1, 298)
    seen = []
    written = backfill(hub, "fleetShard", found, 0.0, lambda done, total, eta: seen.append((done, total)))
    assert written == 299 and seen[-1] == (299, 299) and len(seen) == len(found.todo)
    assert all(hub.get_device(d).tags["fleetShard"] == shard_of(d) for d in ids)
    again = census(current_shards(hub, "fleetShard", None))
    assert (again.right, again.missing, again.wrong, again.todo) == (300, 0, 0, {})
    hub.close()
