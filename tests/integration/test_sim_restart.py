"""A simulated fleet started again resumes where its devices were (issue 25.7: a second
`demo` must not silently undo the first one's rollouts): a device keeps the image a rollout
updated it to and still holds what it ran before, as a real device's dockerd does."""

from __future__ import annotations

import pytest

from tests.support.rollout_env import GROUP, make_env, wait_for

pytestmark = pytest.mark.integration


def test_a_restarted_fleet_keeps_what_its_devices_run_and_hold(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 8, repo_name)
    fleet = env.fleet()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "100%")
        assert out["state"] == "succeeded"
    finally:
        fleet.stop()
    hub = env.hub()
    fleet = env.fleet()  # the same fleet, started again
    try:
        wait_for(lambda: all(t.connected for t in hub.iter_devices()), 20, "every device back online")
        for twin in hub.iter_devices():
            report = twin.reported["scoring"]
            assert (report.digest, report.state) == (env.v2_digest, "running"), twin.device_id
            assert report.cached == (env.v1,)  # still holds v1: going back costs no layer
        preview = env.cli_json("preview", env.v1, "--group", GROUP)
        assert {d["bytes"] for d in preview["devices"]} == {0}
        status = env.cli_json("rollout", "status", out["id"])
        assert {d["state"] for d in status["devices"].values()} == {"running"}
    finally:
        fleet.stop()
        hub.close()
