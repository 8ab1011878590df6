"""The console's data layer (`fleet_tui.ui.live_data.LiveConsoleData`) on real parts: the
registry, the local hub, the simulated fleet, the real rebaser and a detached rollout engine.

No Textual here: LiveConsoleData is a plain class and the screens only call these methods.
"""

from __future__ import annotations

import pytest

from fleet_tui.errors import FleetError, UsageError
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.ui.live_data import LiveConsoleData
from tests.support.rollout_env import GROUP, make_env, wait_for

pytestmark = pytest.mark.integration
DEVICES = 8


@pytest.fixture
def env(tmp_path, registry, repo_name):
    """8 simulated devices on v1; rollouts from the config wait for approval after the canary."""
    env = make_env(tmp_path, registry, DEVICES, repo_name, rollout='waves = "1,100%"\napprove_each = true')
    fleet = env.fleet()
    hub = env.hub()
    wait_for(lambda: {t.digest("scoring") for t in hub.iter_devices()} == {env.v1_digest}, 10, "every device to report v1")
    hub.close()
    env.tag_ref = f"{registry.host}/{repo_name}"
    yield env
    env.kill_engines()
    fleet.stop()


@pytest.fixture
def data(env):
    d = LiveConsoleData(env.config)
    yield d
    d.close()


def test_preview_safety_report_and_build_rebased(env, data):
    target = f"{env.tag_ref}:2"
    v1, v2 = env.images[env.v1], env.images[env.v2]
    naive_bytes = plan_pull(v2, [v1]).total_bytes

    before = data.preview(target, GROUP)
    assert before.rebased is None  # nothing pushed as 2-rebased yet
    [cohort] = before.naive.cohorts
    assert (cohort.digest, cohort.devices, cohort.bytes) == (env.v1_digest, DEVICES, naive_bytes)
    assert before.naive.total_bytes == DEVICES * naive_bytes

    report = data.safety_report(target, GROUP)
    assert report.ok and report.onto == env.v1
    assert 1 <= report.reused_layers <= len(v1.layers)  # OLD's bottom layers kept (the seam)
    assert any("of OLD's" in note for note in report.notes)  # the seam choice, in words
    assert 0 < report.new_layer_bytes < 5_000
    assert report.outside_paths_changed == ()

    ref = data.build_rebased(target, GROUP)
    rebased = load_image(f"{target}-rebased", env.config)
    assert ref == rebased.pinned
    from fleet_tui.rollout.audit import trail

    build = trail(data.journal)[0]  # the console's build is journalled with who pushed it
    assert (build["action"], build["subject"], build["detail"]["group"]) == ("build", ref, GROUP) and build["by"]
    assert [l.digest for l in rebased.layers[:-1]] == [l.digest for l in v1.layers[:report.reused_layers]]

    after = data.preview(target, GROUP)
    assert after.rebased is not None and after.rebased.ref == rebased.pinned
    [small] = after.rebased.cohorts
    assert small.bytes == plan_pull(rebased, [v1]).total_bytes < 10_000
    assert after.naive.total_bytes == before.naive.total_bytes
    assert after.rebased.total_bytes * 30 < after.naive.total_bytes


def test_build_rebased_without_a_report_prepares_its_own(env, data):
    ref = data.build_rebased(f"{env.tag_ref}:2", GROUP)
    assert ref == load_image(f"{env.tag_ref}:2-rebased", env.config).pinned


def test_console_rollout_progresses_pauses_resumes_and_succeeds(env, data):
    rid = data.start_rollout(env.v2, GROUP)
    assert data.rollout(rid).group == GROUP
    # the canary wave passes, then the engine waits for approval (approve_each)
    snap = wait_for(lambda: (s := data.rollout(rid)).awaiting_approval and s, 30, "the canary to pass")
    assert [w.state for w in snap.waves] == ["passed", "pending"]
    assert snap.bytes_total > 0 and snap.count("running") == 1

    data.control_rollout(rid, "pause")
    wait_for(lambda: data.rollout(rid).state == "paused", 10, "the pause")
    data.control_rollout(rid, "approve")  # approved while paused: the next wave still waits
    assert [w.state for w in data.rollout(rid).waves] == ["passed", "pending"]
    data.control_rollout(rid, "resume")
    final = wait_for(lambda: (s := data.rollout(rid)).state == "succeeded" and s, 30, "the rollout to succeed")

    assert [w.state for w in final.waves] == ["passed", "passed"]
    assert {d.state for d in final.devices} == {"running"} and len(final.devices) == DEVICES
    assert final.bytes_total == final.bytes_planned == sum(d.total for d in final.devices)
    assert any("pause" in text for _, text in final.events) and any("resume" in text for _, text in final.events)


def test_read_only_console_refuses_every_change_with_one_line(env):
    target = f"{env.tag_ref}:2"
    data = LiveConsoleData(env.config, read_only=True)
    try:
        assert data.settings().read_only
        calls = {
            "build_rebased": lambda: data.build_rebased(target, GROUP),
            "start_rollout": lambda: data.start_rollout(env.v2, GROUP),
            **{f"control {a}": (lambda a=a: data.control_rollout("r00000000", a))
               for a in ("pause", "resume", "approve", "abort", "rollback")},
        }
        for name, call in calls.items():
            with pytest.raises(UsageError) as info:
                call()
            message = str(info.value)
            assert "read-only" in message and "\n" not in message, name
        data.preview(target, GROUP)  # reading stays allowed
    finally:
        data.close()
    journal = env.journal()
    assert journal.list_rollouts() == []
    journal.close()
    client = RegistryClient(env.tag_ref.split("/", 1)[0], env.config)
    try:
        assert sorted(client.list_tags(env.tag_ref.split("/", 1)[1])) == ["1", "2"]
    finally:
        client.close()


def test_safety_report_for_a_group_nobody_reports_is_one_line(env, data):
    with pytest.raises(FleetError) as info:
        data.safety_report(f"{env.tag_ref}:2", "no-such-group")
    assert "\n" not in str(info.value)


def test_device_detail_shows_its_link_platform_and_held_images(env, data):
    """The Device screen's LINK panel: the link the device reports, its platform and the price."""
    device_id = env.device_ids[0]
    detail = data.device(device_id)
    assert detail.link["link"] == "cell" and detail.link["platform"] == "linux/amd64"
    assert detail.link["price"] == "$400/GB"
    assert detail.images[0][1] == env.v1_digest
