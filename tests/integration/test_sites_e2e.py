"""Sites end to end on real parts: three sites, each behind a real `docker-registry` in proxy mode
(`proxy.remoteurl`) reached through a metered uplink (tests/support/uplink.py counts what it
carried), ten devices of no site, the simulated fleet pulling through the caches.

For the naive and the rebased image: what crossed each uplink, as counted between the upstream
registry and the cache, is within 3% (+64 KiB) of the plan's uplink bytes and within 5%
(+64 KiB) of the unique blobs once — never twice; no site device is told before its cache
holds everything; a site device never pulls from the upstream itself. A cache that is down
halts its site only, with the reason shown; `rollout continue` finishes it once it is back.
Each case prints `[sites] site=NAME devices=N blob_bytes=B uplink_planned=B uplink_measured=B lan=B`.
"""

from __future__ import annotations

import json

import pytest

from tests.support.rollout_env import GROUP, wait_for
from tests.support.sites import PER_SITE, SITES, make_site_env, tag_sites

pytestmark = [pytest.mark.integration, pytest.mark.sites_e2e]


def _target(env, rebased: bool) -> str:
    if not rebased:
        return env.v2
    out = env.cli_json("rebase", env.v2, "--onto", env.v1, "--paths", "/var/azureml-app", "--tag", "2-rebased")
    return out["ref"]


@pytest.mark.parametrize("rebased", [False, True], ids=["naive", "rebased"])
def test_each_blob_crosses_each_uplink_once(tmp_path, registry, repo_name, rebased, capsys):
    env, sites = make_site_env(tmp_path, registry, repo_name)
    fleet = env.fleet()
    try:
        tag_sites(env, sites)
        target = _target(env, rebased)
        preview = env.cli_json("preview", target, "--group", GROUP)
        planned = {p["site"]: p for p in preview["sites"]}
        assert sorted(planned) == sorted(SITES) and {p["cache"] for p in planned.values()} == {"cold"}
        mark = registry.mark()
        out = env.cli_json("rollout", "start", target, "--group", GROUP)
        status = env.cli_json("rollout", "status", out["id"])
        code, text = env.cli("rollout", "report", out["id"], "--format", "json")
        assert code == 0, text
        report = json.loads(text)
        code, csv_text = env.cli("rollout", "report", out["id"], "--format", "csv")
        journal = env.journal()
        events = journal.events(out["id"])
        journal.close()
        direct = {a.agent.removeprefix("fleet-sim/") for a in registry.accesses(mark) if a.agent.startswith("fleet-sim/")}
    finally:
        fleet.stop()
        sites.stop()
    assert out["state"] == "succeeded", out
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    site_devices = {d: s for s in SITES for d in sites.members(env.device_ids, s)}
    assert not direct & set(site_devices), "a site device pulled from the upstream registry itself"
    assert direct, "the unsited devices pull from the upstream registry"
    live = {p["site"]: p for p in status["sites"]}
    assert {p["site"]: p for p in report["sites"]} == live
    assert csv_text.splitlines()[0].endswith(",site") and f",{SITES[0]}\n" in csv_text
    for s in SITES:
        plan = planned[s]
        shown = live[s]  # what the console and `rollout status` show for the site
        assert (shown["state"], shown["running"], shown["devices"]) == ("ready", PER_SITE, PER_SITE)
        assert shown["uplink_bytes"] == plan["blob_bytes"] and shown["items_done"] == shown["items"]
        assert shown["lan_bytes"] == plan["lan_bytes"]
        measured = sites.uplinks[s].down
        lines = (f"[sites] site={s} devices={plan['devices']} blob_bytes={plan['blob_bytes']} "
                 f"uplink_planned={plan['uplink_bytes']} uplink_measured={measured} lan={plan['lan_bytes']} "
                 f"image={'rebased' if rebased else 'naive'}")
        with capsys.disabled():
            print("\n" + lines)
        assert plan["devices"] == PER_SITE
        assert abs(measured - plan["uplink_bytes"]) <= 0.03 * plan["uplink_bytes"] + 64 * 1024, lines
        assert abs(measured - plan["blob_bytes"]) <= 0.05 * plan["blob_bytes"] + 64 * 1024, lines
        assert plan["lan_bytes"] >= PER_SITE * (plan["blob_bytes"] - 64 * 1024) // 1
        # no device of the site was told before its cache was found holding everything
        ready = next(e.seq for e in events if e.kind == "site" and e.data.get("site") == s and e.data.get("ready"))
        told = [e.seq for e in events if e.kind == "target" and e.phase == "intent"
                and set(e.data.get("devices") or []) & set(sites.members(env.device_ids, s))]
        assert told and min(told) > ready
        # canary per site: the first batch telling the site's devices names one of them
        first = next(e for e in events if e.seq == min(told))
        assert len(set(first.data["devices"]) & set(sites.members(env.device_ids, s))) == 1


def test_a_cache_down_halts_its_site_only(tmp_path, registry, repo_name, capsys):
    env, sites = make_site_env(tmp_path, registry, repo_name)
    fleet = env.fleet()
    down = "yard-c"
    try:
        tag_sites(env, sites)
        sites.caches[down].stop()
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, codes=(0, 1))
        status = env.cli_json("rollout", "status", out["id"])
        hub = env.hub()
        digests = {t.device_id: t.digest("scoring") for t in hub.iter_devices()}
        hub.close()
        assert out["state"] == "halted" and down in status["reason"] and "unreachable" in status["reason"], status
        held = set(sites.members(env.device_ids, down))
        assert {digests[d] for d in held} == {env.v1_digest}, "devices of the halted site stay where they were"
        assert {digests[d] for d in digests if d not in held} == {env.v2_digest}
        assert sites.uplinks[down].down < 4096  # its own check of the upstream when it started; no blob
        sites.caches[down].start()  # the gateway is back: continue warms it and finishes the site
        code, text = env.cli("rollout", "continue", "--yes", out["id"], out["id"])
        assert code == 0, text
        final = wait_for(lambda: (s := env.cli_json("rollout", "status", out["id"]))["state"] == "succeeded" and s,
                         timeout=90, what="the held site to finish")
    finally:
        fleet.stop()
        sites.stop()
    assert {d["state"] for d in final["devices"].values()} == {"running"}
    with capsys.disabled():
        print(f"\n[sites] site={down} outage: halted alone, then {sites.uplinks[down].down} bytes over its uplink")
