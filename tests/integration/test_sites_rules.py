"""The rules a site puts on a rollout, on the simulated fleet with a simulated gateway (fast; the
real caches are test_sites_e2e.py's): a budget counts a site's uplink once, not its devices'
LAN bytes; a warm-up waits for the uplink's window; a monthly cap halts the site, not the rest."""

from __future__ import annotations

import time

import pytest

from tests.support.rollout_env import GROUP, make_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)

N, AT_SITE = 30, 20


def site_env(tmp_path, registry, repo, uplink: str = "", rollout: str = ""):
    ids = [f"sim-{GROUP}-{i:05d}" for i in range(N)]
    extra = (f'[sites.shed]\ncache = "simulated"\ndevices = {ids[:AT_SITE]!r}\n'.replace("'", '"')
             + f"[sites.shed.uplink]\n{uplink}\n")
    return make_env(tmp_path, registry, N, repo, rollout=rollout, extra=extra), ids[:AT_SITE]


def test_a_budget_counts_the_sites_uplink_once(tmp_path, registry, repo_name):
    env, site = site_env(tmp_path, registry, repo_name, rollout='waves = "1,100%"')
    fleet = env.fleet()
    try:
        wait_for(lambda: len(list(env.hub().iter_devices())) == N, what="the fleet registered")
        preview = env.cli_json("preview", env.v2, "--group", GROUP)
        device_bytes = preview["total_bytes"]
        [shed] = preview["sites"]
        with_sites = device_bytes - shed["lan_bytes"] + shed["uplink_bytes"]
        budget = (with_sites + device_bytes) // 2  # enough with the site, not per device
        assert with_sites < budget < device_bytes
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--budget", f"{budget} B")
    finally:
        fleet.stop()
    assert out["state"] == "succeeded", out


def test_a_warm_up_waits_for_the_uplinks_window(tmp_path, registry, repo_name):
    hour = time.gmtime().tm_hour
    closed = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
    env, site = site_env(tmp_path, registry, repo_name, uplink=f'windows = ["{closed}"]', rollout='waves = "100%"')
    fleet = env.fleet()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--detach")
        status = wait_for(lambda: (s := env.cli_json("rollout", "status", out["id"]))["sites"]
                          and s["sites"][0]["state"] == "waiting"
                          and sum(d["state"] == "running" for d in s["devices"].values()) == N - AT_SITE and s,
                          timeout=60, what="the devices of no site updated, the site waiting")
        time.sleep(1.0)
        again = env.cli_json("rollout", "status", out["id"])
        env.cli("rollout", "abort", out["id"])
    finally:
        fleet.stop()
        env.kill_engines()
    assert {again["devices"][d]["state"] for d in site} == {"pending"}, "no site device told outside the window"
    assert again["sites"][0]["state"] == "waiting" and "window" in again["sites"][0]["reason"]
    assert status["sites"][0]["uplink_bytes"] == 0


def test_a_monthly_cap_halts_the_site_and_the_rest_goes_on(tmp_path, registry, repo_name):
    env, site = site_env(tmp_path, registry, repo_name, uplink='monthly_cap = "1 kB"', rollout='waves = "1,100%"')
    fleet = env.fleet()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, codes=(0, 1))
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    assert out["state"] == "halted" and "shed" in status["reason"] and "monthly cap" in status["reason"], status
    assert {status["devices"][d]["state"] for d in site} == {"pending"}
    assert sum(d["state"] == "running" for d in status["devices"].values()) == N - AT_SITE


def test_a_failed_canary_halts_its_site_and_the_rest_goes_on(tmp_path, registry, repo_name):
    # one wave: the rollout's own canary wave would judge whichever device the seeded order puts first
    env, site = site_env(tmp_path, registry, repo_name, rollout='waves = "100%"')
    fleet = env.fleet(fail=tuple(site), fail_image=env.v2)  # every device of the site fails the new image
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, codes=(0, 1))
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    assert out["state"] == "halted" and "shed" in status["reason"] and "canary" in status["reason"], status
    states = [status["devices"][d]["state"] for d in site]
    assert states.count("failed") == 1 and states.count("pending") == AT_SITE - 1, states  # only the canary was told
    assert sum(d["state"] == "running" for d in status["devices"].values()) == N - AT_SITE
