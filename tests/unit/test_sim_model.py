"""Link model, content store, failure model and [sim] config parsing (no network)."""

from __future__ import annotations

import random

import pytest

from fleet_tui.devices.contentstore import ContentStore
from fleet_tui.devices.linkmodel import IdleOutages, Link, LinkProfile
from fleet_tui.devices.simconfig import FailureRule, parse_sim
from fleet_tui.devices.simulated import FailureModel
from fleet_tui.errors import UsageError
from fleet_tui.oci.digest import sha256

IMAGE = "127.0.0.1:5000/ml/scoring@sha256:" + "a" * 64


def test_scripted_outage_cuts_a_transfer_at_the_right_byte():
    link = Link(LinkProfile(bandwidth=1000.0, outages=((2.5, 7.0),)), random.Random(1))
    assert link.transfer(2000) == (2000, 2.0, 0.0)
    delivered, seconds, outage = link.transfer(2000)
    assert (delivered, seconds, outage) == (500, 0.5, 7.0)
    assert link.transfer(1000) == (1000, 1.0, 0.0)  # back online, no more outages


def test_random_outages_repeat_with_the_seed():
    profile = LinkProfile(bandwidth=10_000.0, offline_per_hour=3600.0, offline_seconds=5.0)

    def cuts(seed: str) -> list:
        link = Link(profile, random.Random(seed))
        return [link.transfer(5000) for _ in range(50)]

    assert cuts("a") == cuts("a")
    assert cuts("a") != cuts("b")
    assert any(outage for _, _, outage in cuts("a"))


def test_idle_outages_are_ordered_windows():
    idle = IdleOutages(LinkProfile(offline_per_hour=60.0, offline_seconds=30.0), random.Random(3))
    start, end = idle.window(0.0)
    assert 0 < start < end
    later = idle.window(end + 1)
    assert later[0] >= end and later[1] > later[0]
    never = IdleOutages(LinkProfile(), random.Random(3))
    assert never.window(1e9)[0] == float("inf")


def test_content_store_resume_point_continues_the_hash():
    data = bytes(range(256)) * 40
    digest = sha256(data)
    store = ContentStore()
    offset, verifier = store.resume_point(digest, len(data))
    verifier.update(data[:3000])
    store.keep_partial(digest, 3000, verifier)
    offset, resumed = store.resume_point(digest, len(data))
    assert offset == 3000
    resumed.update(data[3000:])
    resumed.finish()
    store.complete(digest)
    assert store.has(digest) and not store.partial


def test_failure_model_fraction_and_named_devices():
    model = FailureModel((FailureRule(image="sha256:bb", fraction=0.3), FailureRule(devices=("dev-1",))), seed=4)
    ids = [f"dev-{i}" for i in range(2000)]
    hit = sum(model.crashes(d, "repo@sha256:bb") for d in ids)
    assert 500 < hit < 700
    assert model.crashes("dev-1", "repo@sha256:cc")  # named: any image
    assert sum(model.crashes(d, "repo@sha256:cc") for d in ids) == 1


def test_parse_sim_builds_groups_links_and_failures():
    spec = parse_sim({
        "image": IMAGE, "seed": 9, "speed": 10, "chunk_kb": 64,
        "links": {"cellular": {"bandwidth_kbps": 800, "latency_ms": 200, "offline_per_hour": 2, "outages": [[30, 60]]}},
        "groups": {"vans": {"devices": 3, "link": "cellular"}, "depot": {"devices": 1}},
        "failures": [{"image": "sha256:ab", "fraction": 0.1}],
    })
    link = spec.links["cellular"]
    assert (link.bandwidth, link.latency, link.outages) == (100_000.0, 0.2, ((30.0, 60.0),))
    assert [i for i, _ in spec.device_ids()] == ["sim-vans-00000", "sim-vans-00001", "sim-vans-00002", "sim-depot-00000"]
    assert spec.chunk_bytes == 65536 and spec.failures[0].fraction == 0.1 and spec.total == 4


@pytest.mark.parametrize("data, words", [
    ({}, "no [sim] section"),
    ({"image": "repo:latest", "groups": {"a": {"devices": 1}}}, "digest-pinned"),
    ({"image": IMAGE, "groups": {"a": {"devices": 1, "link": "sat"}}}, "not a [sim.links.*] profile"),
    ({"image": IMAGE, "groups": {}}, "at least one group"),
    ({"image": IMAGE, "groups": {"a": {"devices": -1}}}, "sim.groups.a.devices"),
    ({"image": IMAGE, "groups": {"a": {"devices": 1}}, "sped": 2}, "unknown key sim.sped"),
    ({"image": IMAGE, "groups": {"a": {"devices": 1}}, "failures": [{"fraction": 2}]}, "from 0 to 1"),
])
def test_parse_sim_rejects_bad_input_in_one_line(data, words):
    with pytest.raises(UsageError) as err:
        parse_sim(data)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_fleet_that_would_not_fit_in_memory_is_refused_before_it_starts():
    from fleet_tui.devices.simconfig import BYTES_PER_DEVICE, check_memory

    gib = 2**30
    check_memory(100_000, available=8 * gib)  # ~1.2 GB: fine
    with pytest.raises(UsageError) as err:
        check_memory(10_000_000, available=8 * gib)
    text = str(err.value)
    assert "\n" not in text and "10,000,000 simulated devices need about" in text
    fits = int(8 * gib * 0.8 // BYTES_PER_DEVICE)
    assert f"use --devices {fits:,} or fewer" in text
    check_memory(10_000_000, available=None)  # no /proc/meminfo: nothing to check against
