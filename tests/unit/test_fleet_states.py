"""Planning by distinct device state (fleet_tui.fleet.states, fleet_tui.hub.local_facts):

- the local hub's SQL fast path gives every device exactly the facts its twin gives (online
  and stale devices, no report, another module's report, cached images, platforms, links,
  deployments), also on a hub file from before the plan mirror existed;
- a group's plan by state prices every device as planning that device alone would;
- the bytes-key device order is the tuple-key order it replaced (seeded canary, offline and
  metered devices last);
- `preview --json`, streamed, is the document the per-device plans make, `--by state` its sum.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sqlite3

from fleet_tui.commands.preview_json import _id, write_preview
from fleet_tui.config import Config
from fleet_tui.fleet.groupplan import plan_states
from fleet_tui.fleet.states import group_states
from fleet_tui.hub.facts import facts_of, group_facts
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleReport, ModuleSpec
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import files_layer
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rollout.policy import order_devices, order_ranked

COND = "tags.fleetGroup = 'vans'"


def _images(root) -> dict[str, str]:
    store = LayoutStore(root, create=True)
    refs = {}
    for tag in ("0", "1", "2"):
        b = ImageBuilder(family=mt.OCI, created=f"2026-0{int(tag) + 1}-01T00:00:00Z")
        b.add_layer(files_layer({"base": "b" * 2000}), "ADD base")
        b.add_layer(files_layer({"deps": random.Random(7).randbytes(20_000), "build": tag}), "RUN pip")
        b.add_layer(files_layer({"app": tag * 300}), "COPY app")
        refs[tag] = f"oci:{root}@{b.push(store, '', tag)}"
    return refs


def _fleet(tmp_path, n: int = 400) -> tuple[LocalHub, dict[str, str]]:
    refs = _images(tmp_path / "store")
    hub = LocalHub(tmp_path / "hub.sqlite", module="scoring", stale_after=300.0)
    rng = random.Random(3)
    ids = [f"dev-{i:04d}" for i in range(n)]
    hub.register_devices((d, {"fleetGroup": "vans" if i % 10 else "other"}) for i, d in enumerate(ids))
    hub.create_deployment(Deployment("base", COND, 1, {"scoring": ModuleSpec("scoring", refs["1"], "{}")}))
    reports = []
    for d in ids:
        roll = rng.random()
        if roll < 0.05:
            modules = {}  # reports nothing
        elif roll < 0.1:
            modules = {"other": ModuleReport("other", refs["0"], refs["0"][-71:], "running")}  # another module only
        else:
            runs = rng.choice("012")
            cached = tuple(refs[t] for t in rng.sample("012", rng.randint(0, 2)) if t != runs)
            modules = {"scoring": ModuleReport("scoring", refs[runs], refs[runs][-71:], "running",
                                               platform=rng.choice(["", "linux/amd64", "linux/arm64"]),
                                               cached=cached, link=rng.choice(["", "lte", "wifi"]))}
        reports.append((d, modules, rng.random() > 0.1))
    hub.report_many(reports)
    with hub.store.write() as conn:  # some devices last seen long ago: stale, so offline
        conn.execute("UPDATE devices SET last_seen = last_seen - 9999 WHERE device_id LIKE '%7'")
    return hub, refs


def _by_device(groups) -> dict[str, tuple]:
    return {d: g.facts[1:] for g in groups for d in g.device_ids}


def test_sql_fact_groups_equal_the_twins_facts(tmp_path):
    hub, _ = _fleet(tmp_path)
    for cond in (COND, "tags.fleetGroup = 'other'", "*"):
        fast = _by_device(hub.fact_groups(cond, "scoring"))
        slow = _by_device(group_facts(facts_of(t, "scoring") for t in hub.iter_devices(cond)))
        assert fast == slow and fast
    other = _by_device(hub.fact_groups(COND, "other"))  # not the hub's module: read from twins, same facts
    assert other == _by_device(group_facts(facts_of(t, "other") for t in hub.iter_devices(COND)))
    assert sum(1 for f in fast.values() if not f[5]) > 10  # offline devices (not connected, or stale) are there


def test_a_hub_file_from_before_the_plan_mirror_gains_it_on_open(tmp_path):
    hub, _ = _fleet(tmp_path, 120)
    before = _by_device(group_facts(facts_of(t, "scoring") for t in hub.iter_devices(COND)))
    hub.close()
    conn = sqlite3.connect(tmp_path / "hub.sqlite")
    conn.executescript("DROP INDEX devices_plan; DROP TABLE plans; ALTER TABLE devices DROP COLUMN plan_id; "
                       "DELETE FROM meta WHERE key = 'plans';")
    conn.close()
    reopened = LocalHub(tmp_path / "hub.sqlite", module="scoring")
    assert _by_device(reopened.fact_groups(COND, "scoring")) == before


def test_a_plan_by_state_prices_every_device_as_planning_it_alone(tmp_path):
    hub, refs = _fleet(tmp_path)
    config = Config()
    target = load_image(refs["2"], config)
    plan = plan_states(target, group_states(hub.fact_groups(COND, "scoring")), config)
    assert 0 < len(plan.cohorts) < 40 and plan.devices == sum(1 for _ in hub.iter_devices(COND))
    got = {d: c.bytes_per_device for c in plan.cohorts for d in c.device_ids}
    for twin in hub.iter_devices(COND):
        report = twin.reported.get("scoring")
        held = [report.image, *report.cached] if report and report.digest else []
        platform = twin.platform("scoring")
        want = 0 if report and report.digest == target.digest else \
            plan_pull(load_image(refs["2"], config, platform), [load_image(r, config, platform) for r in held]).total_bytes
        assert got[twin.device_id] == want, twin.device_id


def _old_order(device_ids, offline, seed, metered):
    def key(d):
        return d in offline, d in metered, hashlib.sha256(f"{seed}:{d}".encode()).hexdigest()
    return sorted(device_ids, key=key)


def test_the_bytes_key_order_is_the_tuple_key_order():
    rng = random.Random(11)
    for seed in (0, 1, 42):
        ids = [f"d{rng.randrange(10**9)}" for _ in range(2000)]
        offline = set(rng.sample(ids, 300))
        metered = set(rng.sample(ids, 700))
        want = _old_order(ids, offline, seed, metered)
        assert order_devices(ids, offline, seed, metered) == want
        # ranks given per part (a state's devices share one) or per device: the same order
        per_device = order_ranked([(ids, [2 * (d in offline) + (d in metered) for d in ids])], seed)
        assert [d for d, _ in per_device] == want
        parts = [([d for d in ids if (d in offline, d in metered) == k], 2 * k[0] + k[1])
                 for k in ((False, False), (False, True), (True, False), (True, True))]
        ranked = order_ranked(parts, seed)
        assert [d for d, _ in ranked] == want
        assert all(d in parts[i][0] for d, i in ranked)  # each device comes with its part


def test_streamed_preview_json_is_the_per_device_document(tmp_path):
    hub, refs = _fleet(tmp_path)
    config = Config()
    states = group_states(hub.fact_groups(COND, "scoring"))
    plan = plan_states(load_image(refs["2"], config), states, config)
    other = plan_states(load_image(refs["1"], config), states, config)
    extra = {"group": "vans", "waves": [{"size": 1}], "budget": None}
    out = io.StringIO()
    write_preview(out, plan, other, extra, 400.0, "$", by_state=False)
    doc = json.loads(out.getvalue())
    assert list(doc) == ["target", "target_digest", "devices", "total_bytes", "rollback_bytes", "cost", "currency",
                         "group", "compare", "waves", "budget"]
    devices = {d["id"]: d for d in doc["devices"]}
    assert len(devices) == plan.devices == len(doc["devices"])
    for c in plan.cohorts:
        for d in c.device_ids:
            assert devices[d]["bytes"] == c.bytes_per_device and devices[d]["held"] == list(c.held)
    assert sum(d["bytes"] for d in doc["devices"]) == doc["total_bytes"] == plan.total_bytes
    assert doc["compare"]["total_bytes"] == other.total_bytes and len(doc["compare"]["devices"]) == plan.devices
    summary = io.StringIO()
    write_preview(summary, plan, None, extra, 400.0, "$", by_state=True)
    states_doc = json.loads(summary.getvalue())
    assert "devices" not in states_doc and "compare" not in states_doc
    assert sum(s["devices"] for s in states_doc["states"]) == plan.devices
    assert sum(s["total_bytes"] for s in states_doc["states"]) == states_doc["total_bytes"] == plan.total_bytes


def test_device_ids_outside_the_safe_charset_are_escaped():
    for hostile in ('a"b', "a\\b", "x\x1b]52;c;evil\x07", "é\u202e"):
        text = _id(hostile)
        assert json.loads(text) == hostile and text.isascii() and "\x1b" not in text and "\x07" not in text
    assert _id("dev-0001") == '"dev-0001"'
