"""A group of amd64 and arm64 simulated devices, rolled out a multi-platform release with
`--auto-rebase` (real registry, local hub): the deployment names the rebased *index*, each
device pulls its own platform's rebased image — its bytes equal the plan for its platform —
and ends running it; the preview plans each platform the same way."""

from __future__ import annotations

import json

import pytest

from fleet_tui.config import load_config
from fleet_tui.devices.simconfig import GroupSpec, SimSpec
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.image import load_image
from fleet_tui.planning.pullplan import plan_pull
from tests.support.rollout_env import GROUP, LINK, MODULE, RolloutEnv
from tests.support.sim_thread import SimFleetThread
from tests.support.tricky import push_release

pytestmark = pytest.mark.integration
PER_PLATFORM = 3


def _fleet(env: RolloutEnv, image: str, platform: str) -> SimFleetThread:
    arch = platform.split("/")[1]
    spec = SimSpec(image, (GroupSpec(GROUP, PER_PLATFORM, LINK.name, platform),), links={LINK.name: LINK}, seed=3,
                   speed=1000.0, prefix=f"{arch}-", poll_seconds=0.05, report_hz=20.0, apply_seconds=0.05,
                   connections=8)
    return SimFleetThread(spec, env.config.hub_path(), env.config).start()


def test_each_device_pulls_its_own_platform(tmp_path, registry, client, repo_name):
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'state_dir = "{tmp_path / "state"}"\n[hub]\nmodule = "{MODULE}"\n'
                           "[rollout]\npoll = 0.05\ngate_timeout = 30\n")
    config = load_config(config_path)
    push_release(client, repo_name, "1", 1)
    push_release(client, repo_name, "2", 2)
    v1 = load_image(f"{registry.host}/{repo_name}:1", config)
    assert v1.index_digest and v1.deploy_ref.endswith(v1.index_digest)
    hub = LocalHub(config.hub_path(), module=MODULE)
    hub.create_deployment(Deployment("base", f"tags.fleetGroup = '{GROUP}'", 1, {MODULE: ModuleSpec(MODULE, v1.deploy_ref)}))
    hub.close()
    env = RolloutEnv(tmp_path, config_path, config, v1.deploy_ref, "", v1.index_digest, "", {}, [])
    fleets = [_fleet(env, v1.deploy_ref, p) for p in ("linux/amd64", "linux/arm64")]
    try:
        code, text = env.cli("preview", f"{registry.host}/{repo_name}:2", "--group", GROUP, "--json")
        assert code == 0, text
        preview = json.loads(text)
        out = env.cli_json("rollout", "start", f"{registry.host}/{repo_name}:2", "--group", GROUP, "--waves", "1,100%",
                           "--auto-rebase")
        status = env.cli_json("rollout", "status", out["id"])
        held = {d.id: set(d.store.blobs) for f in fleets for d in f.fleet.devices.values()}  # type: ignore[union-attr]
    finally:
        for fleet in fleets:
            fleet.stop()
    assert out["state"] == "succeeded", status
    journal = env.journal()
    spec = journal.rollout(out["id"]).spec
    journal.close()
    rebased = [v for v in spec["variants"].values() if v["rebased"]]
    assert len(rebased) == 1 and rebased[0]["base"] == v1.index_digest
    hub = LocalHub(config.hub_path(), module=MODULE)
    running = {t.device_id: t.digest(MODULE) for t in hub.iter_devices()}
    hub.close()
    assert set(running.values()) == {rebased[0]["digest"]}  # the index: every device runs it
    planned, manifests = {}, set()
    for platform in ("linux/amd64", "linux/arm64"):
        mine = load_image(rebased[0]["image"], config, platform)
        assert mine.config.doc["architecture"] == platform.split("/")[1]
        planned[platform] = plan_pull(mine, [load_image(v1.deploy_ref, config, platform)]).total_bytes
        assert planned[platform] < 5_000  # the 200 KB dependency layer of each platform stays home
        manifests.add(mine.digest)
        new_layer = mine.layers[-1].digest
        for device_id, blobs in held.items():  # its own platform's new layer, never the other's
            assert (new_layer in blobs) == device_id.startswith(platform.split("/")[1] + "-"), (device_id, platform)
    assert len(manifests) == 2  # each platform its own rebased manifest
    devices = status["devices"]
    assert len(devices) == 2 * PER_PLATFORM and {d["state"] for d in devices.values()} == {"running"}
    for device_id, device in devices.items():
        platform = "linux/arm64" if device_id.startswith("arm64-") else "linux/amd64"
        assert device["bytes"] == device["planned"] == planned[platform], (device_id, device)
    by_device = {d["id"]: d["bytes"] for d in preview["devices"]}
    naive = {p: plan_pull(load_image(f"{registry.host}/{repo_name}:2", config, p),
                          [load_image(v1.deploy_ref, config, p)]).total_bytes for p in planned}
    for device_id, nbytes in by_device.items():
        assert nbytes == naive["linux/arm64" if device_id.startswith("arm64-") else "linux/amd64"]
