"""What the Rollout and Fleet screens say about a rollout, driven by keys on seeded fake data
at 80×24: the status badge, the live event wording, a wave short of its gate, honest
endings (untouched devices, no partial bars after a rollback), pre-approval while paused,
and a Fleet row whose device counts survive 80 columns."""

from __future__ import annotations

import pytest

from fleet_tui.demo.fake_console import REPO
from fleet_tui.ui.screens.rollout import RolloutScreen
from tests.support.console_fakes import RecordingConsoleData
from tests.ui.conftest import (
    confirm_typed,
    footer,
    loaded,
    make_app,
    open_rollout,
    screen_text,
    wait_for,
)
from tests.ui.scenes import short_wave_rollout

pytestmark = pytest.mark.anyio


async def test_status_badge_is_spaced_and_events_use_the_live_wording(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        lines = screen_text(app).splitlines()
        assert lines[1].strip().startswith("RUNNING  ml/scoring:2 → vans-lte"), lines[1]
        assert lines[2].strip().startswith("cost so far $"), lines[2]
        events = [text for _, text in app.screen.snapshot.events]
        for line in ("release deployment created", "wave 1: tagged 1 device", "wave 1 gate passed: 1 of 1 running",
                     "wave 2 approved by the operator", "wave 2: tagged 60 devices"):
            assert line in events, events
        assert not any("(1 devices)" in e or e.startswith("operator:") for e in events)
        assert "wave 2: tagged 60 devices" in screen_text(app)


async def test_a_wave_short_of_its_gate_says_what_it_waits_for_and_then_halts() -> None:
    data = short_wave_rollout()  # wave 2: 21 of 24 can run, the gate needs 23
    data.clock.advance(80)  # canary done; wave 2's online devices all run; gate opened ~70 s ago
    app = make_app(data, rollout_id="r-0009", start="rollout")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.snapshot is not None)
        wave = app.screen.snapshot.waves[1]
        assert (wave.done, wave.size, wave.needed) == (21, 24, 23) and wave.deadline is not None
        text = screen_text(app)
        assert "wave 2 waiting: 21/24 running, need 23 · timeout in 3m" in text, text
        assert "need 23 of 24 · timeout in 3m" in text  # the waves table's GATE column
        data.clock.advance(300)  # past the gate timeout: the rollout halts and says why
        await wait_for(pilot, lambda: app.screen.snapshot.state == "halted", what="halt")
        events = [t for _, t in app.screen.snapshot.events]
        assert "wave 2 gate failed: timed out after 300s, 21 of 24 running (needed 23)" in events, events
        assert "wave 2 halted: timed out after 300s, 21 of 24 running (needed 23)" in events
        assert "waiting" not in screen_text(app)


async def test_rollback_leaves_unstarted_devices_untouched_and_no_partial_bars(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        await confirm_typed(app, pilot, "B")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen)
                       and app.screen.snapshot.state == "rolled_back", what="rollback")
        await pilot.pause(0.1)
        s = app.screen.snapshot
        assert s.count("pending") == 532  # the snapshot keeps the docs/cli.md state…
        text = screen_text(app)
        assert "pending" not in text  # …the screen tells the truth: nothing was sent to them
        assert "61 rolled back" in text and "532 untouched" in text and "rolled_back" not in text, text
        assert "532 devices untouched (waves never started)" in text
        rows = [line for line in text.splitlines() if line.startswith("vans-")]
        assert rows and all(" rolled back " in r and "↺ rolled back" in r and "%" not in r for r in rows), rows
        assert "rollback: 61 devices pinned to scoring:1" in [t for _, t in s.events]
        wave_lines = [line.split() for line in text.splitlines() if line.split()[:1] in (["3"], ["4"])]
        assert [w[2] for w in wave_lines[:2]] == ["untouched", "untouched"], wave_lines
        assert "ROLLED BACK  ml/scoring:2" in text and "timeout in" not in text  # no gate is open any more
        wave2 = next(line.split() for line in text.splitlines() if line.split()[:2] == ["2", "60"])
        assert wave2[2:4] == ["rolled", "back"], wave2


async def test_abort_lets_started_devices_finish_and_marks_the_rest_untouched(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        await confirm_typed(app, pilot, "A")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen)
                       and app.screen.snapshot.state == "aborted", what="abort")
        fake.clock.advance(120)
        await wait_for(pilot, lambda: app.screen.snapshot.count("running") >= 57, what="wave 2 to finish")
        text = screen_text(app)
        assert "untouched" in text and " pending" not in text, text
        assert "aborted by the operator: no more devices will be tagged" in [t for _, t in app.screen.snapshot.events]


async def test_approve_is_offered_while_paused_to_pre_approve_the_next_wave() -> None:
    data = RecordingConsoleData(with_rollout=False)
    rid = data.start_rollout(f"{REPO}:2", "vans-lte")
    app = make_app(data, rollout_id=rid, start="rollout")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.snapshot is not None)
        assert "a Approve" not in footer(app)  # running, canary not done: nothing to approve yet
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.snapshot.state == "paused", what="pause")
        await wait_for(pilot, lambda: "a Approve" in footer(app), what="approve offered")
        assert "paused: a pre-approves wave 2" in screen_text(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: ("approve", rid) in data.sent, what="approve sent")
        await wait_for(pilot, lambda: "a Approve" not in footer(app), what="approve no longer offered")
        await pilot.press("u")
        data.clock.advance(200)  # the canary passes and wave 2 starts without asking again
        await wait_for(pilot, lambda: app.screen.snapshot.waves[1].state != "pending", what="wave 2 to start")
        assert not app.screen.snapshot.awaiting_approval
        assert "wave 2 approved by the operator" in [t for _, t in app.screen.snapshot.events]


async def test_fleet_at_80_columns_keeps_device_counts_and_a_narrow_rollout_column(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app), what="fleet")
        text = screen_text(app)
        vans = next(line for line in text.splitlines() if line.startswith("vans-lte"))
        assert "r-0001 ▶" in vans and "running" not in vans, vans
        # GROUP is as wide as the longest name (12 here): the images keep their names and counts
        assert "scoring:1 ×582, scoring:2 ×18" in vans, vans
        canary = next(line for line in text.splitlines() if line.startswith("canary-lab"))
        assert "ml/scoring:1 0cf457e ×12" in canary
        assert "rollout r-0001 running on vans-lte" in text  # the full words, once


async def test_bytes_the_hub_does_not_report_are_marked_planned(fake) -> None:
    """Azure reports no bytes per device: the status line marks the figures as the plan's."""
    import dataclasses

    app = make_app(fake)
    async with app.run_test(size=(100, 24)) as pilot:
        await open_rollout(app, pilot)
        screen = app.screen
        reported = screen.status_text(screen.snapshot).plain
        planned = screen.status_text(dataclasses.replace(screen.snapshot, bytes_source="planned")).plain
        assert "(planned)" not in reported
        assert planned.replace(" (planned)", "", 1) == reported and "(planned)" in planned.splitlines()[0]


def test_actions_the_engine_would_refuse_are_not_offered(fake) -> None:
    """An aborted rollout is folded: roll back is refused by the engine, so never offered."""
    import dataclasses

    from fleet_tui.ui.screens.rollout import offered

    snap = fake.rollout(next(iter(fake.rollouts)))
    actions = ("pause", "resume", "approve", "abort", "rollback", "continue", "retry")
    for state, allowed in {"running": {"pause", "abort", "rollback"}, "paused": {"resume", "abort", "rollback"},
                           "halted": {"abort", "rollback", "continue"}, "aborted": {"rollback"}, "rolled_back": set(),
                           "succeeded": {"rollback"}}.items():
        s = dataclasses.replace(snap, state=state, awaiting_approval=False, approvable=False,
                                devices=tuple(dataclasses.replace(d, state="running") for d in snap.devices))
        assert {a for a in actions if offered(a, s)} == allowed, state
    failed = dataclasses.replace(s, state="halted", devices=(dataclasses.replace(snap.devices[0], state="failed"),))
    assert offered("retry", failed)  # retry only where a device failed


async def test_budget_and_pacing_are_on_the_status_line(fake) -> None:
    """A paced rollout says what holds it back, and against which budget."""
    import dataclasses

    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        screen = app.screen
        paced = dataclasses.replace(screen.snapshot, budget_bytes=125_000_000, budget_text="$50",
                                    pacing="waiting for window (opens in 3h12m)")
        text = screen.status_text(paced).plain
        assert "of $50 budget" in text and "waiting for window (opens in 3h12m)" in text
        # (the footer of a real halted rollout, R and C included, is checked in test_live_story at 80x24)


async def test_enter_on_a_device_tells_its_story_and_esc_returns_to_the_rollout(fake) -> None:
    from fleet_tui.ui.screens.device_story import DeviceStoryScreen

    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        first = app.screen.table.current_row
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceStoryScreen), what="the device story")
        text = screen_text(app)
        assert first.id in text and "wave" in text and "state now" in text, text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen), what="back to the rollout")


async def test_e_opens_the_report_with_a_chart_and_w_writes_it(fake) -> None:
    from fleet_tui.ui.screens.report import ReportScreen

    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen), what="the report")
        text = screen_text(app)
        assert "Report of rollout r-0001" in text and "bytes moved" in text and "bytes moved over time" in text
        assert "█" in text  # the chart has bars: bytes have moved
        await pilot.press("w")
        await wait_for(pilot, lambda: ("save_report", "r-0001") in fake.sent, what="the report written")
        await wait_for(pilot, lambda: any(n.message == "report written to /tmp/fleet-tui-fake/reports/r-0001.md"
                                          for n in app._notifications), what="where it was written")  # noqa: SLF001
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen), what="back to the rollout")
