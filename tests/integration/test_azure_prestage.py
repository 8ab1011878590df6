"""A pre-staged rollout on "Azure" (the real SDK against the strict fake hub; IoT Edge devices
emulated as edgeAgent behaves, two on real dockerds): each stage wave is a layered deployment
adding `scoring-stage` with desired status `stopped` on the target image — edgeAgent pulls and
creates a stopped module, never starts it (docs/azure.md cites the source) — and the switch
wave moves the managed module onto the image the device already holds. Measured on the real
devices from the registry's access log: what they fetched while staging equals the plan,
and the switch pulls no layer byte."""

from __future__ import annotations

import pytest

from tests.support.azure_bed import AzureBed

pytestmark = [pytest.mark.integration, pytest.mark.azure_e2e]


def blob_bytes(registry, since: int, device_id: str) -> int:
    return sum(a.bytes for a in registry.accesses(since) if a.method == "GET" and a.status in (200, 206)
               and "/blobs/" in a.path and f"edge-device/{device_id}" in a.agent)


def test_pre_staged_rollout_switches_on_edge_devices_without_pulling(registry, tmp_path, capsys):
    bed = AzureBed(tmp_path, registry, real=2, light=10).start()
    try:
        bed.wait_all_running(bed.v1, 240)
        start = {d: registry.mark() for d in bed.real_ids}
        rid = bed.start_rollout(bed.v2_tag, "--pre-stage", "--waves", "1,50%,100%")
        bed.wait_wave_started(rid, 3, 300)  # waves 0-2 stage; wave 3 is the switch of every device
        switch = {d: registry.mark() for d in bed.real_ids}
        staging = bed.status(rid)
        status = bed.wait_terminal(rid, 300)
        assert status["state"] == "succeeded", status
        assert all(s["state"] == "running" for s in status["devices"].values()), status["devices"]
        agent = "edge-device/{}".format
        staged = {d: registry.served_bytes(start[d], agent(d)) - registry.served_bytes(switch[d], agent(d))
                  for d in bed.real_ids}  # manifests and blobs while staging: the plan
        switched = {d: blob_bytes(registry, switch[d], d) for d in bed.real_ids}
        for device_id in bed.real_ids:
            assert staged[device_id] == status["devices"][device_id]["planned"] > 0, (device_id, staged)
            assert switched[device_id] == 0, (device_id, switched)  # the image was there: no blob pulled
        with bed.fake.lock:
            configs = {cid: dict(c) for cid, c in bed.fake.configurations.items()}
        stages = [c for c in configs if c.startswith(f"rollout-{rid}-s")]
        assert stages == [] and f"rollout-{rid}-full" in configs, sorted(configs)  # the fold kept the release only
        assert not bed.agent_errors()
        assert staging["waves"][0]["state"] in ("passed", "succeeded")
    finally:
        bed.stop()
    with capsys.disabled():
        print(f"\n[azure-e2e] pre-staged rollout on 12 edge devices (2 on dockerd): bytes while staging (manifests and layers, = plan) "
              f"{sum(staged.values()):,}, layer bytes at the switch {sum(switched.values())}")


def test_the_stage_layer_writes_the_stopped_module_beside_the_managed_one() -> None:
    """What a stage deployment writes into `$edgeAgent`: the managed module unchanged and the
    stage module, desired `stopped`, complete enough for edgeAgent (type, version, settings)."""
    from fleet_tui.hub.azure_edge import modules_content
    from fleet_tui.hub.protocol import Deployment, ModuleSpec, stage_module
    from fleet_tui.rollout.staging import stage_spec

    pinned = "reg.example/ml/scoring@sha256:" + "1" * 64
    target = "reg.example/ml/scoring@sha256:" + "2" * 64
    managed = ModuleSpec("scoring", pinned, '{"HostConfig":{}}', {"version": "1.0", "type": "docker",
                                                                   "status": "running", "restartPolicy": "always"})
    stage = stage_spec("scoring", target)
    dep = Deployment("rollout-r1-s0_full", "tags.rollout_r1 = 's0_full'", 5, {"scoring": managed, stage.name: stage},
                     {"fleet-tui.kind": "rollout"})
    content = modules_content(dep, "scoring")["$edgeAgent"]
    assert sorted(content) == ["properties.desired.modules.scoring", f"properties.desired.modules.{stage_module('scoring')}"]
    entry = content[f"properties.desired.modules.{stage_module('scoring')}"]
    assert entry["status"] == "stopped" and entry["type"] == "docker" and entry["version"]
    assert entry["settings"]["image"] == target and entry["restartPolicy"] == "never"
    assert content["properties.desired.modules.scoring"]["settings"]["image"] == pinned
