"""Every rollout state readable at 80×24 (issue 25.8): an ended or halted rollout shows no
rate or ETA, a judged gate says its verdict in the GATE column (cut, never wrapped), the event
lines stay one line each, states read as words, and a key whose action means nothing now
says why instead of doing nothing."""

from __future__ import annotations

import dataclasses

import pytest

from fleet_tui.rollout.snapshot import Wave
from fleet_tui.ui.rollout_view import gate_cell, offered, why_not
from tests.ui.conftest import confirm_typed, make_app, open_rollout, screen_text, wait_for
from tests.ui.scenes import short_wave_rollout

pytestmark = pytest.mark.anyio


def _notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


async def test_an_aborted_rollout_shows_no_rate_or_eta_and_says_states_in_words(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        assert "ETA" in screen_text(app)  # running: rate and ETA
        await confirm_typed(app, pilot, "A")
        await wait_for(pilot, lambda: "ABORTED" in screen_text(app), what="aborted")
        top = "\n".join(screen_text(app).splitlines()[:3])
        assert "ETA" not in top and "B/s" not in top, top
        await confirm_typed(app, pilot, "B")  # the way back stays open after an abort
        await wait_for(pilot, lambda: "ROLLED BACK" in screen_text(app), what="rolled back")
        text = screen_text(app)
        assert "rolled back" in text and "rolled_back" not in text


async def test_a_halted_wave_says_its_verdict_and_events_stay_one_line_each() -> None:
    data = short_wave_rollout()
    data.clock.advance(400)
    app = make_app(data, rollout_id="r-0009", start="rollout")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "HALTED" in screen_text(app), what="halted")
        lines = screen_text(app).splitlines()
        wave2 = next(l for l in lines if l.lstrip().startswith("2 ") and "failed" in l)
        assert "timed out after 300s" in wave2 and wave2.rstrip().endswith("…"), wave2
        assert all(len(l) <= 80 for l in lines)
        events = lines[-4:-1]
        assert all(l.strip().split()[0][:-1].isdigit() for l in events), events  # each starts with its age: none wrapped
        assert "ETA" not in "\n".join(lines[:3])
        await pilot.press("R")  # nothing failed on the halted wave: nothing to retry, and it says so
        await wait_for(pilot, lambda: any("nothing to retry" in n for n in _notes(app)), what="why not")
        assert ("retry", "r-0009") not in data.sent


async def test_keys_that_mean_nothing_now_say_why(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        for key, words in (("R", "retry applies to the failed devices of a halted rollout"),
                           ("C", "continue applies to a halted rollout"), ("u", "nothing to resume")):
            await pilot.press(key)
            await wait_for(pilot, lambda: any(words in n for n in _notes(app)), what=words)
        assert not [s for s in fake.sent if s[0] in ("retry", "continue", "resume")]


def test_a_wave_continued_past_its_gate_says_so(fake) -> None:
    snap = fake.rollout(next(iter(fake.rollouts)))
    wave = Wave(1, 60, "passed", "≥ 95% running", 40, 0, "gate timeout: 40 of 60 running", 57, None, True)
    assert wave.verdict == "continued past: gate timeout: 40 of 60 running"
    assert gate_cell(wave, dataclasses.replace(snap, state="running")) == wave.verdict
    judged = dataclasses.replace(wave, state="passed", continued=False, result="57 of 60 running")
    assert gate_cell(judged, snap) == "57 of 60 running"


def test_every_action_not_offered_has_a_reason(fake) -> None:
    snap = fake.rollout(next(iter(fake.rollouts)))
    for state in ("pending", "running", "paused", "halted", "succeeded", "aborted", "rolled_back"):
        s = dataclasses.replace(snap, state=state, awaiting_approval=False, approvable=False)
        for action in ("pause", "resume", "approve", "abort", "rollback", "continue", "retry"):
            if not offered(action, s):
                reason = why_not(action, s)
                assert reason and "means nothing" not in reason and "\n" not in reason, (state, action)
