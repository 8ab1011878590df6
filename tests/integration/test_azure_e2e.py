"""Rollouts on "Azure" end to end: the real azure-iot-hub SDK (fleet-tui, detached engines)
against the strict fake hub, with IoT Edge devices emulated as edgeAgent behaves — three on
real dockerds, a hundred lightweight — pulling from the real registry.

Each test prints one `[azure-e2e]` line with its figures (`pytest -m azure_e2e -s`).
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from fleet_tui.hub.azure_edge import join_create_options
from tests.support.azure_bed import CREATE_OPTIONS, GROUP, AzureBed

pytestmark = [pytest.mark.integration, pytest.mark.azure_e2e]


def test_rebased_four_wave_rollout_on_edge_devices(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=3, light=100).start()
    try:
        bed.wait_all_running(bed.v1, 240)
        marks = {d: registry.mark() for d in bed.real_ids}
        t0 = time.monotonic()
        rid = bed.start_rollout(bed.v2_tag, "--auto-rebase", "--waves", "1,10%,50%,100%")
        status = bed.wait_terminal(rid, 420)
        seconds = time.monotonic() - t0
        assert status["state"] == "succeeded", status
        assert status["bytes_source"] == "planned"
        planned = fetched = 0
        for device_id in bed.real_ids:  # each real device fetched exactly its plan (registry access log)
            served = registry.served_bytes(marks[device_id], agent=f"edge-device/{device_id}")
            assert served == status["devices"][device_id]["planned"], (device_id, served, status["devices"][device_id])
            planned, fetched = planned + status["devices"][device_id]["planned"], fetched + served
        assert 0 < planned < 20_000  # rebased: the 400 kB dependency layer stayed home
        with bed.fake.lock:
            configs = {cid: dict(c) for cid, c in bed.fake.configurations.items()}
            tags = [dict(d.get("tags") or {}) for d in bed.fake.devices.values()]
            desired = json.loads(json.dumps(bed.fake.modules[(bed.real_ids[0], "$edgeAgent")]["properties"]["desired"]))
        group = [c for c in configs.values() if (c.get("labels") or {}).get("fleet-tui.kind") == "group"]
        assert len(group) == 1 and len(configs) == 2, sorted(configs)  # the base + the group's one deployment
        content = group[0]["content"]["modulesContent"]["$edgeAgent"]
        assert list(content) == ["properties.desired.modules.scoring"]  # the sibling module is never written
        entry = content["properties.desired.modules.scoring"]
        assert entry["env"] == {"MODE": {"value": "edge"}} and entry["startupOrder"] == 1
        assert entry["restartPolicy"] == "on-failure" and entry["imagePullPolicy"] == "on-create"
        assert join_create_options(entry["settings"]) == CREATE_OPTIONS and "createOptions01" in entry["settings"]
        assert desired["modules"]["sidecar"] == bed.sidecar_entry  # untouched on the devices
        assert not any(k.startswith("rollout_") for t in tags for k in t)  # folded: no rollout tag left
        assert not bed.agent_errors()
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] devices={len(bed.all_ids)} (3 on dockerd) waves=4 rebased: bytes planned={planned} "
              f"fetched={fetched} (real devices) seconds={seconds:.1f} configurations_left={len(configs)}")


def test_a_failing_canary_halts_and_rolls_back_on_azure(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=0, light=12, crash_v2=True, policy="on_failure = \"rollback\"").start()
    try:
        bed.wait_all_running(bed.v1, 120)
        t0 = time.monotonic()
        rid = bed.start_rollout(bed.v2_tag, "--waves", "1,50%,100%")
        status = bed.wait_terminal(rid, 240)
        assert status["state"] == "rolled_back", status
        touched = [d for d, s in status["devices"].items() if s["state"] != "pending"]
        assert len(touched) == 1 and status["devices"][touched[0]]["state"] == "rolled_back"
        bed.wait_all_running(bed.v1, 120)  # the canary runs its old image again; nobody else moved
        with bed.fake.lock:
            left = len(bed.fake.configurations)
            kinds = sorted((c.get("labels") or {}).get("fleet-tui.kind", "other") for c in bed.fake.configurations.values())
        assert kinds == ["group", "other"], kinds  # the base + the canary's rollback pin, folded
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] devices=12 canary failed → rolled back in {time.monotonic() - t0:.1f}s; "
              f"bytes planned={status['bytes_planned']} configurations_left={left}")


def test_sigkill_mid_wave_resumes_without_tagging_twice(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=0, light=40, slow_jobs=True).start()
    try:
        bed.wait_all_running(bed.v1, 120)
        rid = bed.start_rollout(bed.v2_tag, "--waves", "1,25%,100%")
        kills = 0
        for wave in (1, 2):
            bed.wait_wave_started(rid, wave, 120)
            pid = bed.engine_pid(rid)
            if pid:
                os.kill(pid, signal.SIGKILL)
                kills += 1
            time.sleep(0.3)
            assert bed.cli("rollout", "resume", rid).returncode == 0
        status = bed.wait_terminal(rid, 300)
        assert status["state"] == "succeeded", status
        tagged = bed.tagging_counts(rid)
        assert tagged and max(tagged.values()) == 1, tagged  # no device tagged twice for this rollout
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] devices=40 {kills} SIGKILLs mid-wave, resumed: succeeded, every device tagged once")


@pytest.mark.timeout(1200)
def test_many_rollouts_leave_no_pile_up_and_the_limit_is_one_line(registry, tmp_path, capsys):
    """More rollouts than the hub's 100 configurations: none may be left behind. Then a hub
    filled by someone else (the 413 comes from the create, past fleet-tui's own count) must
    end the start in one line, not an engine retrying forever."""
    bed = AzureBed(tmp_path, registry, real=0, light=3, units=20, tick=0.1).start()  # 20 units: 400 config ops/min
    try:
        bed.wait_all_running(bed.v1, 120)
        rollouts = int(os.environ.get("FLEET_TEST_ROLLOUTS", "110"))
        t0 = time.monotonic()
        for i in range(rollouts):
            target = bed.v2_tag if i % 2 == 0 else bed.v1_tag
            rid = bed.start_rollout(target, "--waves", "100%", detach=False)
            assert bed.status(rid)["state"] == "succeeded", (i, bed.status(rid))
        with bed.fake.lock:
            ours = [c for c in bed.fake.configurations.values() if (c.get("labels") or {}).get("fleet-tui.kind")]
            tags = [k for d in bed.fake.devices.values() for k in (d.get("tags") or {})]
            bed.fake.max_configurations = len(bed.fake.configurations)  # the hub is full now
        assert len(ours) <= 5 and not [k for k in tags if k.startswith("rollout_")]
        done = bed.cli("rollout", "start", bed.v2_tag, "--group", GROUP, "--waves", "100%")
        assert done.returncode != 0 and done.stderr.count("\n") == 1
        assert "configurations" in done.stderr and "fleet-tui deployments --prune" in done.stderr, done.stderr
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] {rollouts} rollouts in a row in {time.monotonic() - t0:.0f}s: "
              f"{len(ours)} fleet-tui configurations and 0 rollout tags left; a full hub refused in one line: "
              f"{done.stderr.strip()}")
