"""The site model's arithmetic and rules, without a network: uplink bytes and billing per site,
cache warm/partial/cold, what a budget is charged per wave, the tag value that keeps a site's
group deployment apart, and config errors that name the site and the fix."""

from __future__ import annotations

import pytest

from fleet_tui.config.load import parse_config
from fleet_tui.errors import FleetError
from fleet_tui.fleet.sites import HEADERS, IN_FLIGHT, SitePlan, warmup_overhead
from fleet_tui.rollout.event_text import EventText
from fleet_tui.rollout.fold import image_key, site_hosts
from fleet_tui.rollout.journal import Assignment, Event
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.site_plan import through, upstream_ref, wave_spend

D = "sha256:" + "a" * 64
BLOBS = {"sha256:" + c * 64: n for c, n in zip("bcde", (50_000_000, 1_000, 700, 400))}
MANIFEST = "sha256:" + "e" * 64


def plan(kind="distribution", cached=(), increment=1, lan=20 * 50_002_100) -> SitePlan:
    return SitePlan("depot", kind, 20, dict(BLOBS), frozenset(cached), lan, 10.0, increment,
                    manifests=frozenset({MANIFEST}))


def test_uplink_is_each_cold_blob_once_plus_the_warmups_overhead():
    p = plan()
    blobs = sum(BLOBS.values())
    expected = blobs + 3 * (2 * HEADERS) + IN_FLIGHT + 1_000 + 700 + 2 * HEADERS  # manifest: headers only
    assert p.uplink_bytes == expected and p.cache == "cold"
    assert p.uplink_cost == pytest.approx(expected / 1e9 * 10.0)
    assert p.lan_bytes > 19 * p.uplink_bytes  # 20 devices share one uplink


def test_a_warm_cache_moves_nothing_and_partial_only_the_rest():
    assert plan(cached=BLOBS).uplink_bytes == 0 and plan(cached=BLOBS).cache == "warm"
    big = next(iter(BLOBS))
    p = plan(cached=[big])
    # the rest once, each small blob again as in-flight bytes, headers for all three (manifest: headers only)
    assert p.cache == "partial" and p.uplink_bytes == (1_000 + 700 + 400) + (1_000 + 700) + 3 * 2 * HEADERS


def test_billing_increment_rounds_up_and_no_cache_means_every_device_pays():
    assert plan(increment=10_000_000).billed_bytes == 60_000_000
    none = plan("none")
    assert none.uplink_bytes == none.lan_bytes and none.overhead == 0 and none.cache == "none"
    assert warmup_overhead(10**9, "simulated") == 0


def test_a_wave_is_charged_a_sites_warmup_once_when_it_first_reaches_the_site():
    variants = {"full": {"image": "r/x@" + D}, "full@depot": {"image": "c:5000/x@" + D, "site": "depot"}}
    sites = {"depot": {"planned_uplink": 1234}}
    a = [Assignment("u1", 0, "full", "", "", 100), Assignment("s1", 0, "full@depot", "", "", 999),
         Assignment("s2", 1, "full@depot", "", "", 999), Assignment("u2", 1, "full", "", "", 100)]
    assert wave_spend(2, a, variants, sites) == [100 + 1234, 100]


def test_images_through_a_cache_and_back_to_the_upstream():
    ref = "registry.example:5000/ml/scoring@" + D
    assert through(ref, "10.3.0.2:5000") == "10.3.0.2:5000/ml/scoring@" + D
    cfg = parse_config({"sites": {"depot": {"cache": "distribution", "cache_address": "10.3.0.2:5000"}}})
    assert upstream_ref("10.3.0.2:5000/ml/scoring@" + D, cfg.sites, "registry.example:5000") == ref
    assert upstream_ref(ref, cfg.sites, "elsewhere") == ref


def test_a_sites_group_deployment_is_keyed_apart_from_the_direct_one():
    spec = {"sites": {"depot": {"kind": "distribution", "ref_host": "10.3.0.2:5000"}}}
    direct, cached = f"registry.example/x@{D}", f"10.3.0.2:5000/x@{D}"
    assert image_key(direct, site_hosts(spec)) == "d-" + "a" * 12
    assert image_key(cached, site_hosts(spec)) == "d-" + "a" * 12 + "-depot"


@pytest.mark.parametrize("sites, words", [
    ({"Depot A": {}}, "Depot A"),
    ({"depot": {"cache": "distribution"}}, "cache_address"),
    ({"depot": {"cache": "redis"}}, "cache"),
    ({"depot": {"cache_address": "http://x/"}}, "host[:port]"),
    ({"depot": {"uplink": {"timezone": "Mars/Olympus"}}}, "Mars/Olympus"),
])
def test_bad_site_config_is_one_line_naming_it(sites, words):
    with pytest.raises(FleetError) as err:
        parse_config({"sites": sites})
    text = str(err.value)
    assert words in text and "\n" not in text.strip() and "Traceback" not in text


def test_site_events_read_as_lines():
    text = EventText(Policy.from_dict({"waves": ["1", "100%"]}), [])
    ev = lambda data, kind="site": Event(1, 0.0, 0, kind, "done", data)  # noqa: E731
    assert text.text(ev({"site": "depot", "halt": "cache http://g:5000: unreachable"}), None, {}) \
        == "site depot halted: cache http://g:5000: unreachable"
    assert "cache holds every blob (4.0 MB" in text.text(ev({"site": "depot", "ready": True, "bytes": 4_000_000}), None, {})
    assert "already held" in text.text(ev({"site": "depot", "digest": D, "bytes": 0, "held": True}, "warm"), None, {})


def test_iot_edge_children_name_images_through_their_parent():
    cfg = parse_config({"sites": {"floor-2": {"cache": "distribution", "upstream_name": "$upstream:443",
                                              "cache_url": "http://parent-gw:5000"}}})
    site = cfg.sites["floor-2"]
    assert site.ref_host() == "$upstream:443" and site.reach() == "http://parent-gw:5000"
    child = through("registry.example/ml/scoring@" + D, site.ref_host())
    assert child == "$upstream:443/ml/scoring@" + D
    assert upstream_ref(child, cfg.sites, "registry.example") == "registry.example/ml/scoring@" + D
