"""Staged rollouts end to end on real parts: registry, local hub, simulated devices, the CLI.

The engine runs in this process (foreground `rollout start`); the simulated fleet
(fleet_tui.devices.SimFleet, pulling real blobs from the registry) in a thread.
"""

from __future__ import annotations

import time

import pytest

from fleet_tui.planning.pullplan import plan_pull
from tests.support.rollout_env import GROUP, make_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)


def test_300_devices_roll_out_in_four_waves(tmp_path, registry, repo_name, capsys):
    env = make_env(tmp_path, registry, 300, repo_name)
    fleet = env.fleet()
    try:
        t0 = time.monotonic()
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP)
        elapsed = time.monotonic() - t0
        status = env.cli_json("rollout", "status", out["id"])  # before the fleet goes offline
    finally:
        fleet.stop()
    assert out["state"] == "succeeded"
    assert set(status) >= {"id", "state", "waves", "devices", "bytes_total"}
    assert [w["size"] for w in status["waves"]] == [1, 29, 120, 150]
    assert all(w["state"] == "passed" for w in status["waves"])
    plan = plan_pull(env.images[env.v2], [env.images[env.v1]]).total_bytes
    assert len(status["devices"]) == 300
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    assert {d["bytes"] for d in status["devices"].values()} == {plan}
    assert status["bytes_total"] == 300 * plan
    hub = env.hub()
    assert {t.digest("scoring") for t in hub.iter_devices()} == {env.v2_digest}
    hub.close()
    with capsys.disabled():
        print(f"\n[rollout-300] {elapsed:.2f}s, {status['bytes_total']} bytes ({plan} per device)")


def test_failing_canary_halts_at_wave_one(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 20, repo_name)
    fleet = env.fleet(fail=tuple(env.device_ids), fail_image=env.v2_digest)
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--on-failure", "halt", codes=(1,))
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    assert out["state"] == "halted"
    assert [w["state"] for w in status["waves"]] == ["failed", "pending", "pending", "pending"]
    states = [d["state"] for d in status["devices"].values()]
    assert states.count("failed") == 1 and states.count("pending") == 19
    hub = env.hub()
    tagged = [t.device_id for t in hub.iter_devices(f"tags.rollout_{out['id']} != ''")]
    assert len(tagged) == 1
    hub.close()


def test_failing_canary_rolls_back_and_touches_nothing_else(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 20, repo_name)
    fleet = env.fleet(fail=tuple(env.device_ids), fail_image=env.v2_digest)
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--on-failure", "rollback", codes=(1,))
        rid = out["id"]
        assert out["state"] == "rolled_back"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = env.cli_json("rollout", "status", rid)
            if "rolled_back" in {d["state"] for d in status["devices"].values()}:
                break
            time.sleep(0.05)
    finally:
        fleet.stop()
    states = {d: v["state"] for d, v in status["devices"].items()}
    canary = [d for d, s in states.items() if s == "rolled_back"]
    assert len(canary) == 1 and list(states.values()).count("pending") == 19
    hub = env.hub()
    twin = hub.get_device(canary[0])
    assert twin.digest("scoring") == env.v1_digest
    assert twin.desired["scoring"].image == env.v1
    for t in hub.iter_devices():
        if t.device_id != canary[0]:
            assert f"rollout_{rid}" not in t.tags and t.etag == "1"  # never written to
            assert t.deployment_id == "base-vans" and t.digest("scoring") == env.v1_digest
    hub.close()


def test_going_back_to_the_previous_release_costs_nothing_and_the_preview_says_so(tmp_path, registry, repo_name):
    """Simulated devices keep the image they ran (and say so): after v1 → v2, the preview of v1
    plans 0 bytes per device and shows a rollback cost of 0, and a rollout of v1 moves 0 bytes."""
    env = make_env(tmp_path, registry, 30, repo_name)
    fleet = env.fleet()
    try:
        ahead = env.cli_json("preview", env.v2, "--group", GROUP)  # before: pulls, and going back is free
        assert ahead["total_bytes"] > 0 and ahead["rollback_bytes"] == 0
        assert {d["rollback_bytes"] for d in ahead["devices"]} == {0}
        first = env.cli_json("rollout", "start", env.v2, "--group", GROUP)
        assert first["state"] == "succeeded"
        assert env.cli_json("rollout", "status", first["id"])["rollback_bytes"] == 0  # devices keep v1
        hub = env.hub()
        assert {t.cached("scoring") for t in hub.iter_devices()} == {(env.v1,)}
        hub.close()
        back = env.cli_json("preview", env.v1, "--group", GROUP)
        assert back["total_bytes"] == 0 and {d["held"][0] for d in back["devices"]} == {env.v1}
        out = env.cli_json("rollout", "start", env.v1, "--group", GROUP)
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    assert out["state"] == "succeeded" and status["bytes_total"] == 0
    assert {d["bytes"] for d in status["devices"].values()} == {0}
