"""Retries on real parts (registry, local hub, simulated fleet): automatic retries by failure
kind, and the operator's `rollout retry` on a halted rollout. A retry is a new desired module
`version`; the simulated devices fail only their first attempts, as a flaky link or a cold
start would."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_tui.hub.local import LocalHub
from fleet_tui.rollout.policy import order_devices
from fleet_tui.rollout.snapshot import SnapshotReader
from fleet_tui.ui.live_data import LiveConsoleData
from tests.support.rollout_env import GROUP, make_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)


def retry_intents(journal, rid: str) -> list[dict]:
    return [e.data for e in journal.events(rid, "retry") if e.phase == "intent"]


def test_a_device_whose_first_download_fails_is_retried_and_counts_as_running(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 12, repo_name)
    flaky = tuple(env.device_ids[:3])
    fleet = env.fleet(fail=flaky, fail_image=env.v2_digest, fail_kind="download", fail_attempts=1)
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", "--max-failed", "0",
                           "--retries-download", "2", "--retry-backoff", "0.2")
        status = env.cli_json("rollout", "status", out["id"])
    finally:
        fleet.stop()
    assert out["state"] == "succeeded", status["reason"]
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    retried = sorted(d for data in retry_intents(journal, out["id"]) for d in data["devices"])
    assert retried == sorted(flaky)  # each once: its second attempt worked
    hub = env.hub()
    left = [d.id for d in hub.list_deployments() if d.id.startswith(f"rollout-{out['id']}") and "_r" in d.id
            and d.labels.get("fleet-tui.kind") != "group"]
    tags = [t.tags for t in hub.iter_devices() if f"rollout_{out['id']}" in t.tags]
    hub.close()
    assert left == [] and tags == []  # the fold took the retry deployments and tags away too


def test_retries_follow_the_failure_kind(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 6, repo_name)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest, fail_kind="start", fail_attempts=1)
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%",
                           "--retries-download", "3", "--retry-backoff", "0.1", codes=(1,))
    finally:
        fleet.stop()
    assert out["state"] == "halted"  # it exited on start: download retries do not apply
    assert retry_intents(journal, out["id"]) == []


def test_operator_retry_reopens_the_failed_wave_and_the_rollout_finishes(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 8, repo_name)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest, fail_kind="start", fail_attempts=1)
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", codes=(1,))
        rid = out["id"]
        assert out["state"] == "halted"
        code, text = env.cli("rollout", "retry", rid)
        assert code == 0, text
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 30, "the rollout to finish after the retry")
        status = env.cli_json("rollout", "status", rid)
    finally:
        fleet.stop()
        env.kill_engines()
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    (data,) = retry_intents(journal, rid)
    assert data["devices"] == [canary] and data["reopen"] and data["by"]
    judged = [e for e in journal.events(rid, "judge") if e.wave == 0]
    assert [e.data["passed"] for e in judged] == [False, True]  # judged again after the retry, and passed


def test_notify_command_hears_the_halt_and_the_end_and_a_failing_hook_changes_nothing(tmp_path, registry, repo_name):
    import json

    heard = tmp_path / "heard.jsonl"
    extra = f'[notify]\ncommand = "cat >> {heard}; echo >> {heard}"\ntimeout = "5s"\n'
    env = make_env(tmp_path, registry, 6, repo_name, extra=extra)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest, fail_kind="start", fail_attempts=1)
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", codes=(1,))
        rid = out["id"]
        assert env.cli("rollout", "retry", rid)[0] == 0
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 30, "the rollout to finish")
        wait_for(lambda: heard.exists() and '"succeeded"' in heard.read_text(), 15, "the end to be told")
    finally:
        fleet.stop()
        env.kill_engines()
    events = [json.loads(line) for line in heard.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in events] == ["halted", "succeeded"]
    assert events[0]["rollout"] == rid and events[0]["group"] == GROUP and events[0]["wave"] == 1
    assert "gate failed" in events[0]["reason"]

    # a hook that fails (exit 3) is logged and ignored: the next rollout still runs to its end
    (tmp_path / "b").mkdir()
    env2 = make_env(tmp_path / "b", registry, 3, repo_name + "-b", extra='[notify]\ncommand = "exit 3"\n')
    fleet = env2.fleet()
    try:
        code, text = env2.cli("rollout", "start", env2.v2, "--group", GROUP, "--waves", "100%")
    finally:
        fleet.stop()
    assert code == 0 and "notify command exited 3; the rollout goes on" in text


def test_a_failed_devices_story_and_reason_come_from_the_journal_and_its_report(tmp_path, registry, repo_name):
    from fleet_tui.rollout.story import device_story

    env = make_env(tmp_path, registry, 4, repo_name)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest, fail_kind="start")
    journal = env.journal()
    try:
        out = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", codes=(1,))
        hub = env.hub()
        story = device_story(journal, hub, out["id"], canary)
        snap = SnapshotReader(journal, hub, out["id"]).take()
        hub.close()
    finally:
        fleet.stop()
    facts = dict(story.facts)
    assert facts["wave"] == "1 (failed)" and facts["state now"] == "failed"
    assert "exited on start (simulated crash, exit code 1)" in facts["error"]
    texts = [t for _, t in story.lines]
    assert texts[0].startswith("told to update (wave 1") and any(t.startswith("wave 1 gate failed") for t in texts)
    (row,) = [d for d in snap.devices if d.id == canary]
    assert row.state == "failed" and "exit code 1" in row.reason
    data = LiveConsoleData(env.config, read_only=True)  # the console's report (`e`, then `w`) is the CLI's
    try:
        view, path = data.rollout_report(out["id"]), Path(data.save_report(out["id"]))
    finally:
        data.close()
    code, markdown = env.cli("rollout", "report", out["id"])
    assert code == 0 and path.read_text() == markdown and path.parent == env.config.state_path() / "reports"
    # the fleet has stopped: the canary is offline now (it left failed); wave 2 was never told
    assert view.problems[0] == (canary, "1", "offline") and {p[2] for p in view.problems[1:]} == {"pending"}
    assert len(view.problems) == 4 and dict(view.facts)["bytes moved"] in markdown
    assert view.timeline[0] == (0.0, 0) and len(view.waves) == 2


def test_operator_retry_reaches_a_device_that_failed_and_went_offline(tmp_path, registry, repo_name):
    """The canary fails its start, the rollout halts, and the canary drops off the network
    (its report still says what failed). `rollout retry` tells it again anyway — it picks the
    retry up when it is back — while a halted wave with no failure reported is refused."""
    env = make_env(tmp_path, registry, 6, repo_name)
    canary = order_devices(env.device_ids, set(), 0)[0]
    fleet = env.fleet(fail=(canary,), fail_image=env.v2_digest, fail_kind="start", fail_attempts=1)
    journal = env.journal()
    try:
        rid = env.cli_json("rollout", "start", env.v2, "--group", GROUP, "--waves", "1,100%", codes=(1,))["id"]
        fleet.stop()  # the whole fleet goes quiet: the canary is last seen failed
        hub = LocalHub(env.config.hub_path())
        with hub.store.write() as conn:
            conn.execute("UPDATE devices SET last_seen = last_seen - 3600 WHERE device_id = ?", (canary,))
            error = conn.execute("SELECT json_extract(reported, '$.scoring.error') FROM devices WHERE device_id = ?",
                                 (canary,)).fetchone()[0]
        assert hub.get_device(canary).state("scoring") == "offline" and error
        (row,) = [d for d in SnapshotReader(journal, hub, rid).take().devices if d.id == canary]
        assert row.state == "offline" and "exit code 1" in row.reason  # why it is out, not just "offline"
        with hub.store.write() as conn:
            conn.execute("UPDATE devices SET reported = json_set(reported, '$.scoring.error', '') WHERE device_id = ?",
                         (canary,))
        code, _ = env.cli("rollout", "retry", rid)
        assert code == 1 and journal.rollout(rid).state == "halted"  # no failure on record: nothing to retry
        with hub.store.write() as conn:
            conn.execute("UPDATE devices SET reported = json_set(reported, '$.scoring.error', ?) WHERE device_id = ?",
                         (error, canary))
        hub.close()
        code, text = env.cli("rollout", "retry", rid)
        assert code == 0, text
        (data,) = retry_intents(journal, rid)
        assert data["devices"] == [canary]
        fleet = env.fleet()  # back online, no failure this time: it applies the retry
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 30, "the rollout to finish after the retry")
    finally:
        fleet.stop()
        env.kill_engines()


class Killed(BaseException):
    """The engine dying between the retry's intent and its done (SIGKILL, a power cut)."""


def test_an_engine_killed_mid_retry_finishes_that_retry_once_on_resume(tmp_path, registry, repo_name):
    """The retry intent is in the journal, the devices were not told yet when the engine dies:
    the next engine carries out exactly that retry (same attempt numbers, one `done`), tells no
    device twice, and the rollout finishes."""
    from fleet_tui.rollout.create import create_rollout
    from fleet_tui.rollout.engine import Engine
    from fleet_tui.rollout.policy import Policy

    env = make_env(tmp_path, registry, 6, repo_name)
    flaky = env.device_ids[0]
    fleet = env.fleet(fail=(flaky,), fail_image=env.v2_digest, fail_kind="download", fail_attempts=1)
    journal, hub = env.journal(), env.hub()
    told: list[tuple[tuple[str, ...], dict]] = []
    real_bulk = hub.bulk_update_tags

    def bulk(ids, tags, **kw):
        if any("_r" in str(v) for v in tags.values()):
            told.append((tuple(ids), dict(tags)))
            if len(told) == 1:
                raise Killed  # after the intent, before any device heard of the retry
        return real_bulk(ids, tags, **kw)

    try:
        policy = Policy(waves=("100%",), poll=0.1, gate_timeout=120, max_failed="0", retries_download=2,
                        retry_backoff=0.2, min_finished=1)
        rid = create_rollout(env.config, hub, journal, env.v2, GROUP, policy)
        hub.bulk_update_tags = bulk  # type: ignore[method-assign]
        with pytest.raises(Killed):
            Engine(journal, hub, rid, log=lambda line: None).run()
        intents = [e for e in journal.events(rid, "retry") if e.phase == "intent"]
        assert len(intents) == 1 and not [e for e in journal.events(rid, "retry") if e.phase == "done"]
        hub.bulk_update_tags = real_bulk  # type: ignore[method-assign]
        resumed = env.hub()
        state = Engine(journal, resumed, rid, log=lambda line: None).run()
        resumed.close()
    finally:
        fleet.stop()
        hub.close()
    assert state == "succeeded"
    intents = [e for e in journal.events(rid, "retry") if e.phase == "intent"]
    done = [e for e in journal.events(rid, "retry") if e.phase == "done"]
    assert len(intents) == 1 and len(done) == 1 and done[0].data["intent"] == intents[0].seq
    assert intents[0].data["devices"] == [flaky] and intents[0].data["attempts"] == {flaky: 1}
