"""`rollout start --rehearse` against the real rollout it forecasts: a 1,000-device group of
simulated devices (real registry, local hub) with the fleet model written in the config's
`[sim]` — the same model the simulated fleet runs. The rehearsal must touch nothing, return
quickly, predict exactly the bytes the rollout then moves, and its duration within ±25 %."""

from __future__ import annotations

import time

import pytest

from fleet_tui.demo.setup import LINKS
from tests.support.rollout_env import GROUP, make_env

pytestmark = pytest.mark.integration

DEVICES = 1000


def sim_section(image: str) -> str:
    """The demo's fleet model (its cellular link profile, apply time and hub poll) for one group, at
    real-time speed. (At the demo's 4x, the simulator's own CPU — about 4 ms per device update in
    one process — stretched the big waves to 1.5x the model, which does not model the simulator.)"""
    cellular = LINKS["cellular"]
    return (f'[sim]\nimage = "{image}"\nseed = 3\nspeed = 1.0\npoll_seconds = 1.0\napply_seconds = 3.0\n'
            f'[sim.groups.{GROUP}]\ndevices = {DEVICES}\nlink = "cellular"\n[sim.links.cellular]\n'
            + "".join(f"{k} = {v}\n" for k, v in cellular.items()))


def test_rehearsal_predicts_the_rollouts_bytes_exactly_and_its_duration_within_a_quarter(
        tmp_path, registry, repo_name, capsys):
    env = make_env(tmp_path, registry, DEVICES, repo_name)
    env.config_path.write_text(env.config_path.read_text() + sim_section(env.v1))
    up = env.cli_proc("sim", "up")  # its own process, as in the demo: devices do not share the engine's CPU
    assert up.returncode == 0, up.stderr
    journal = env.journal()
    try:
        hub = env.hub()
        before = {t.device_id: (t.etag, t.tags) for t in hub.iter_devices()}
        hub.close()
        t0 = time.monotonic()
        forecast = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--auto-rebase", "--rehearse")
        rehearsal_s = time.monotonic() - t0
        hub = env.hub()
        after = {t.device_id: (t.etag, t.tags) for t in hub.iter_devices()}
        hub.close()
        assert after == before and journal.list_rollouts() == []  # nothing touched, nothing journalled
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--auto-rebase")
        events = journal.events(out["id"])
        status = env.cli_json("rollout", "status", out["id"])
        # the rollout's own duration, from its first hub write to its last gate (planning excluded on both sides)
        real_s = [e.ts for e in events if e.kind == "finish"][0] - [e.ts for e in events if e.kind == "deploy"][0]
    finally:
        env.cli_proc("sim", "down")
    assert out["state"] == "succeeded"
    real_waves = [round(w.judged - w.started, 1) for w in journal.waves(out["id"])]
    assert rehearsal_s < 10
    assert [w["verdict"] for w in forecast["waves"]] == ["passes"] * 4
    assert [w["size"] for w in forecast["waves"]] == [w["size"] for w in status["waves"]]
    # the rollout's own plan; every device that finished fetched exactly its part of it (the gate passes at 95 %:
    # a few may still sit out a link outage of the demo's cellular profile)
    assert forecast["bytes"] == status["bytes_planned"]
    done = [d for d in status["devices"].values() if d["state"] == "running"]
    assert len(done) >= 0.95 * DEVICES and all(d["bytes"] == d["planned"] for d in done)
    assert abs(forecast["seconds"] - real_s) <= 0.25 * real_s, (forecast["seconds"], real_s)
    with capsys.disabled():
        print(f"\n[rehearsal] {DEVICES} devices: rehearsed in {rehearsal_s:.2f}s; predicted {forecast['seconds']:.1f}s "
              f"and {forecast['bytes']} B, the rollout took {real_s:.1f}s and moved {status['bytes_total']} B; waves "
              f"{[round(w['end_s'] - w['start_s'], 1) for w in forecast['waves']]}s predicted, {real_waves}s real")
