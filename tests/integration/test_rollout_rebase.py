"""Rebased rollouts end to end: `rollout start --auto-rebase` and `--rebase-onto REF` on the real
registry, local hub and simulated fleet.

The group runs v1 (tests.support.images.ml_pair) except one device pinned (by its own
higher-priority deployment) to an unrelated image. Devices on v1 must get the rebased image
and pull only its new layer + config + manifest (a few KB, not the dependency layer); the
odd device gets the full target image and is shown as variant `full`; everyone ends
`running`; the rebased manifest reuses v1's layer blobs byte for byte.
"""

from __future__ import annotations

import time

import pytest

from fleet_tui.devices.simconfig import GroupSpec, SimSpec
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.policy import Policy
from tests.support.images import Entry, push_layers
from tests.support.rollout_env import GROUP, LINK, MODULE, make_env
from tests.support.sim_thread import SimFleetThread

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)
V1_DEVICES = 6
ODD = "odd-vans-00000"


def odd_fleet(env, other: str) -> SimFleetThread:
    """One more device of the group, running `other` under a deployment pinned to its id."""
    hub = env.hub()
    hub.create_deployment(Deployment("odd-pin", f"deviceId = '{ODD}'", 2, {MODULE: ModuleSpec(MODULE, other)}))
    hub.close()
    spec = SimSpec(other, (GroupSpec(GROUP, 1, LINK.name),), links={LINK.name: LINK}, seed=7, speed=1000.0,
                   prefix="odd-", poll_seconds=0.05, report_hz=20.0, apply_seconds=0.05, connections=4)
    return SimFleetThread(spec, env.config.hub_path(), env.config).start()


def push_other(env, registry, repo: str) -> str:
    """An image unrelated to v1/v2 (no shared blob, different files): rebasing onto it saves nothing."""
    client = RegistryClient(registry.host, env.config)
    digest = push_layers(client, repo, "other", [[Entry("opt", kind="dir", mode=0o755),
                                                  Entry("opt/tool", data=b"#!/bin/sh\necho other\n", mode=0o755)]])
    client.close()
    return load_image(f"{registry.host}/{repo}@{digest}", env.config).pinned


@pytest.mark.parametrize("how", ["auto", "onto"])
def test_rebased_rollout_ships_a_few_kb_to_v1_holders(tmp_path, registry, repo_name, how, capsys):
    env = make_env(tmp_path, registry, V1_DEVICES, repo_name)
    other = push_other(env, registry, repo_name)
    v1_tag = f"{registry.host}/{repo_name}:1"
    flags = ["--auto-rebase"] if how == "auto" else ["--rebase-onto", v1_tag]
    fleet = env.fleet()
    odd = odd_fleet(env, other)
    try:
        t0 = time.monotonic()
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", *flags)
        elapsed = time.monotonic() - t0
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        odd.stop()
        fleet.stop()
    assert out["state"] == "succeeded", status
    journal = env.journal()
    spec = journal.rollout(out["id"]).spec
    journal.close()
    assert spec["rebase"] == how
    rebased_keys = [k for k, v in spec["variants"].items() if v["rebased"]]
    assert len(rebased_keys) == 1, spec["variants"]  # onto the unrelated image: no saving, no variant
    key = rebased_keys[0]
    variant = spec["variants"][key]
    assert variant["base"] == env.v1_digest

    v1, v2 = env.images[env.v1], env.images[env.v2]
    rebased = load_image(variant["image"], env.config)
    # v1's bottom blobs (all, or down to the seam), byte for byte, then one new layer; diff_ids in step
    kept = len(rebased.layers) - 1
    assert 1 <= kept <= len(v1.layers)
    assert [l.digest for l in rebased.layers[:kept]] == [l.digest for l in v1.layers[:kept]]
    diff_ids = rebased.config.doc["rootfs"]["diff_ids"]
    assert diff_ids[:kept] == v1.config.doc["rootfs"]["diff_ids"][:kept]
    rebased_plan = plan_pull(rebased, [v1]).total_bytes
    naive_plan = plan_pull(v2, [v1]).total_bytes
    full_for_odd = plan_pull(v2, [load_image(other, env.config)]).total_bytes
    assert rebased_plan < 10_000 < 300_000 < naive_plan  # the 300 KB dependency layer stays home

    devices = status["devices"]
    assert len(devices) == V1_DEVICES + 1
    assert {d["state"] for d in devices.values()} == {"running"}
    assert devices[ODD]["variant"] == "full" and devices[ODD]["bytes"] == full_for_odd
    for device_id in env.device_ids:
        assert devices[device_id]["variant"] == key
        assert devices[device_id]["bytes"] == devices[device_id]["planned"] == rebased_plan
    assert status["bytes_total"] == V1_DEVICES * rebased_plan + full_for_odd

    hub = env.hub()
    running = {t.device_id: t.digest(MODULE) for t in hub.iter_devices()}
    hub.close()
    assert running.pop(ODD) == env.v2_digest
    assert set(running.values()) == {rebased.digest}
    with capsys.disabled():
        print(f"\n[rollout-rebase-{how}] {elapsed:.2f}s (rebase + 2 waves, {V1_DEVICES + 1} devices); "
              f"{rebased_plan} B per v1 device vs {naive_plan} B naive; {full_for_odd} B for the odd device")


def test_auto_rebase_skips_an_image_the_registry_lacks(tmp_path, registry, repo_name):
    """A device that reports an image the registry no longer has gets the full image; the
    rollout is still created (the missing image is not a reason to refuse the group)."""
    env = make_env(tmp_path, registry, 3, repo_name)
    hub = env.hub()
    hub.register_devices([(d, {"fleetGroup": GROUP}) for d in env.device_ids])
    gone = env.v1.rsplit("@", 1)[0] + "@sha256:" + "0" * 64
    hub.create_deployment(Deployment("gone-pin", f"deviceId = '{env.device_ids[0]}'", 2,
                                     {MODULE: ModuleSpec(MODULE, gone)}))
    journal = env.journal()
    try:
        rid = create_rollout(env.config, hub, journal, env.v2, GROUP, Policy.from_config(env.config.rollout),
                             auto_rebase=True)
        by_device = {a.device_id: a for a in journal.assignments(rid)}
        variants = journal.rollout(rid).spec["variants"]
    finally:
        journal.close()
        hub.close()
    assert by_device[env.device_ids[0]].variant == "full"
    assert {by_device[d].variant for d in env.device_ids[1:]} == {"d0"}
    assert set(variants) == {"full", "d0"}
    assert by_device[env.device_ids[0]].planned_bytes == plan_pull(env.images[env.v2], []).total_bytes
