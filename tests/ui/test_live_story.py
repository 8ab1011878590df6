"""The console on real parts, as an operator walks it at 80×24: a real registry, the local
hub, the simulated fleet (in a thread) and a detached rollout engine behind
LiveConsoleData. Checks what the demo showed wrong: digests without names on the Fleet
screen, raw 0-based journal events, the header's target, and a clipped Rollout footer."""

from __future__ import annotations

import threading

import pytest

from fleet_tui.ui.app import FleetApp
from fleet_tui.ui.formatting import short_ref
from fleet_tui.ui.live_data import LiveConsoleData
from fleet_tui.ui.screens.confirm import TypeToConfirm
from fleet_tui.ui.screens.rollout import RolloutScreen
from tests.support.rollout_env import GROUP, make_env
from tests.ui.conftest import footer, screen_text, wait_for

pytestmark = pytest.mark.anyio


def story_env(tmp_path, registry, repo_name, policy: str, fail: bool):
    env = make_env(tmp_path, registry, 6, repo_name, rollout=policy,
                   extra=f'[registry]\nrepositories = ["{registry.host}/{repo_name}"]\n')
    fleet = env.fleet(fail=tuple(env.device_ids) if fail else (), fail_image=env.v2_digest if fail else "")
    return env, fleet


def stop(env, fleet) -> None:
    env.kill_engines()
    fleet.stop()


async def test_names_resolved_off_the_ui_thread_and_events_read_as_lines(tmp_path, registry, repo_name) -> None:
    env, fleet = story_env(tmp_path, registry, repo_name, 'waves = "1,100%"', fail=False)
    data = LiveConsoleData(env.config)
    threads: list[str] = []
    listing = data.names._list
    data.names._list = lambda: (threads.append(threading.current_thread().name), listing())[1]  # type: ignore[method-assign]
    name1 = short_ref(f"{registry.host}/{repo_name}:1")
    try:
        app = FleetApp(data, sample_hz=20)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: getattr(app.screen, "loaded", False) and app.screen.table.rows
                           and app.screen.table.rows[0].images[0][0] == name1, 20, "the v1 tag on Fleet")
            text = screen_text(app)  # a long test repository name is cut at 80 columns: namespace first, then
            assert name1.rsplit("/", 1)[-1][:10] in text and ":1 ×6" in text  # the middle; tag and count stay
            assert threads and threading.main_thread().name not in threads  # sampler threads only
            listings = data.names.listings
            await pilot.pause(0.5)
            assert data.names.listings == listings  # cached: not listed again on every sample

            rid = data.start_rollout(f"{registry.host}/{repo_name}:2", GROUP)
            app.open_rollout(rid)
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.snapshot is not None
                           and app.screen.snapshot.state == "succeeded", 60, "the rollout to succeed")
            await pilot.pause(0.3)
            events = [text for _, text in app.screen.snapshot.events]
            assert "wave 1: tagged 1 device" in events
            assert "wave 1 gate passed: 1 of 1 running" in events
            assert "wave 2: tagged 5 devices" in events and "rollout succeeded: every wave passed its gate" in events
            assert not any("intent" in e or "wave 0" in e for e in events)
            text = screen_text(app)
            assert app.screen.target_label() == short_ref(f"{registry.host}/{repo_name}:2")  # not the console's target
            assert "│ target test/" in text.splitlines()[0]
            assert "rollout succeeded" in text
            assert "p Pause" not in footer(app) and "B Roll back" in footer(app)  # nothing left to pause
    finally:
        stop(env, fleet)


async def test_halted_rollout_footer_fits_and_rollback_reads_as_a_line(tmp_path, registry, repo_name) -> None:
    policy = 'waves = "1,100%"\nmax_failed = "0"\nmin_finished = 1\non_failure = "halt"'
    env, fleet = story_env(tmp_path, registry, repo_name, policy, fail=True)
    data = LiveConsoleData(env.config)
    try:
        rid = data.start_rollout(env.v2, GROUP)
        app = FleetApp(data, sample_hz=20, rollout_id=rid, start="rollout")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.snapshot is not None
                           and app.screen.snapshot.state == "halted", 60, "the canary to halt the rollout")
            await pilot.pause(0.3)
            text = screen_text(app)
            assert "wave 1 gate failed: 1 failed (max 0)" in text and "wave 1 halted: 1 failed (max 0)" in text
            assert app.screen.target_label() == short_ref(f"{registry.host}/{repo_name}:2")  # not the console's target
            assert "│ target test/" in text.splitlines()[0]
            for key in ("A Abort", "B Roll back", "R Retry", "C Continue", "x Failed", "esc Back", "? Keys", "^p Commands"):
                assert key in footer(app), key
            await pilot.press("B")
            await wait_for(pilot, lambda: isinstance(app.screen, TypeToConfirm))
            await pilot.press(*GROUP, "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen)
                           and app.screen.snapshot.state == "rolled_back", 30, "the rollback")
            await pilot.pause(0.3)
            name1 = short_ref(f"{registry.host}/{repo_name}")
            line = next(t for _, t in app.screen.snapshot.events if t.startswith("rollback:"))
            assert line.startswith(f"rollback: 1 device pinned to {name1.rsplit('/', 1)[-1]}@"), line
            assert "B Roll back" not in footer(app) and "A Abort" not in footer(app)
    finally:
        stop(env, fleet)
