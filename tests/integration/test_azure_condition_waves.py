"""Waves as target conditions on "Azure" (issue 22): the real SDK against the strict fake hub,
devices enrolled with their stable shard tag, edgeAgent emulators pulling from the registry.

A wave widens the rollout's deployment condition over shards; the rollout, its abort, its
rollback and its fold write no device twin: no twin-update job carries the rollout tag, and
the twins' etags show no write. Each test prints one `[azure-e2e]` line.
"""

from __future__ import annotations

import time

import pytest

from fleet_tui.config import Config
from fleet_tui.hub.shards import shard_of
from fleet_tui.oci.image import load_image
from tests.support.azure_bed import GROUP, AzureBed

pytestmark = [pytest.mark.integration, pytest.mark.azure_e2e]


def _etags(bed: AzureBed) -> dict[str, str]:
    with bed.fake.lock:
        return {d: str(bed.fake.devices[d].get("etag")) for d in bed.all_ids}


def _release_puts(bed: AzureBed, rid: str) -> int:
    return len([r for r in bed.fake.of("PUT", "/configurations/") if rid in r.path])


def test_condition_waves_roll_out_and_fold_without_a_device_write(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=1, light=60, shards=True).start()
    try:
        bed.wait_all_running(bed.v1, 240)
        before = _etags(bed)
        t0 = time.monotonic()
        # 100%: a wave passes once every device of it runs v2, so every device's final state must say
        # running (at the default 95% a slow puller may legitimately end `applying`)
        rid = bed.start_rollout(bed.v2_tag, "--waves", "1,10%,50%,100%", "--success", "100%")
        status = bed.wait_terminal(rid, 420)
        seconds = time.monotonic() - t0
        assert status["state"] == "succeeded", status
        bed.wait_all_running(load_v2(bed), 120)
        assert bed.rollout_jobs(rid) == [] and _etags(bed) == before  # not one device write
        waves = [w["size"] for w in status["waves"]]
        assert waves[0] == 1 and sum(waves) == len(bed.all_ids)
        canary = next(d for d, v in status["devices"].items() if v["wave"] == 0)
        for device_id, d in status["devices"].items():  # each device's wave is what its shard says
            if device_id != canary:
                assert d["wave"] > 0 and d["state"] == "running"
        cuts = sorted({int(shard_of(d)) for d, v in status["devices"].items() if v["wave"] == 1})
        later = sorted({int(shard_of(d)) for d, v in status["devices"].items() if v["wave"] >= 2 and d != canary})
        assert cuts and later and max(cuts) < min(later)  # wave 2's shards all below the later waves' ones
        with bed.fake.lock:
            configs = {cid: dict(c) for cid, c in bed.fake.configurations.items()}
        ours = [c for c in configs.values() if (c.get("labels") or {}).get("fleet-tui.kind") == "group"]
        assert len(ours) == 1 and ours[0]["targetCondition"] == f"tags.fleetGroup = '{GROUP}'", sorted(configs)
        assert len(configs) == 2  # the operator's base and the group's own
        puts = _release_puts(bed, rid)
        assert puts <= 2 * len(waves) + 4, puts  # a handful per wave, never per device
        log = (bed.root / "state" / "rollouts" / f"{rid}.log").read_text()  # the detached engine's log
        assert "applies it within ~5 min" in log and "folded without device writes" in log, log
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] condition waves: devices={len(bed.all_ids)} waves={len(waves)} sizes={waves} "
              f"device_writes=0 configuration_puts={puts} seconds={seconds:.1f}")


def load_v2(bed: AzureBed) -> str:
    return load_image(bed.v2_tag, Config()).deploy_ref


def test_condition_waves_abort_then_rollback_move_only_the_told_devices(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=0, light=40, shards=True).start()
    try:
        bed.wait_all_running(bed.v1, 240)
        before = _etags(bed)
        rid = bed.start_rollout(bed.v2_tag, "--waves", "1,50%,100%", "--bake", "300")
        deadline = time.monotonic() + 120
        while bed.status(rid)["waves"][0]["state"] != "baking":
            assert time.monotonic() < deadline, bed.status(rid)
            time.sleep(0.5)
        assert bed.cli("rollout", "abort", rid).returncode == 0
        deadline = time.monotonic() + 60
        while bed.status(rid)["state"] != "aborted" or bed.status(rid).get("engine_pid"):
            assert time.monotonic() < deadline, bed.status(rid)
            time.sleep(0.5)
        done = bed.cli("rollout", "rollback", rid, "--yes", rid)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 240
        while (status := bed.status(rid))["state"] != "rolled_back" or status.get("engine_pid"):
            assert time.monotonic() < deadline, status
            time.sleep(1.0)
        bed.wait_all_running(bed.v1, 120)
        assert status["state"] == "rolled_back", status
        running = bed.running()
        assert set(running.values()) == {bed.v1}, running
        states = {d: v["state"] for d, v in status["devices"].items()}
        told = {d for d, v in status["devices"].items() if v["wave"] == 0}
        assert {d for d, s in states.items() if s == "rolled_back"} == told, states
        assert all(s == "pending" for d, s in states.items() if d not in told), states
        assert bed.rollout_jobs(rid) == [] and _etags(bed) == before
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] condition waves abort+rollback: devices={len(bed.all_ids)} told={len(told)} "
              "device_writes=0")


def _twin_list_queries(bed: AzureBed, since: int) -> int:
    """Queries that list runtime twins by device id (what tag-mode gates page every poll)."""
    with bed.fake.lock:
        return sum(1 for r in bed.fake.requests[since:] if r.path.startswith("/devices/query")
                   and "deviceId IN" in str((r.body or {}).get("query", "")))


def test_a_failing_canary_fails_its_gate_from_the_hub_metrics_and_rolls_back(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=0, light=30, shards=True, crash_v2=True,
                   policy='on_failure = "rollback"').start()
    try:
        bed.wait_all_running(bed.v1, 240)
        before = _etags(bed)
        rid = bed.start_rollout(bed.v2_tag, "--waves", "1,50%,100%")
        with bed.fake.lock:
            mark = len(bed.fake.requests)  # after creation: what the engine reads from here on
        status = bed.wait_terminal(rid, 300)
        assert status["state"] == "rolled_back", status
        assert "hub metrics" in status["waves"][0]["result"] and "failed" in status["waves"][0]["result"], status
        assert [w["state"] for w in status["waves"][1:]] == ["pending", "pending"], status
        touched = {d: v["state"] for d, v in status["devices"].items() if v["state"] != "pending"}
        assert list(touched.values()) == ["rolled_back"], touched
        bed.wait_all_running(bed.v1, 120)
        listing = _twin_list_queries(bed, mark)
        assert listing == 0, listing  # the gate read metrics and the failing devices, not the wave's twins
        assert bed.rollout_jobs(rid) == [] and _etags(bed) == before
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] condition waves: failing canary judged from hub metrics, rolled back; "
              f"devices=30 twin_list_queries={listing} device_writes=0")
