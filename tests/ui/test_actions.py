"""Pilot tests of the screens that act: Preview (naive vs rebased, build the rebased image
after the safety report, start a rollout by typing the group name) and Rollout (approve,
pause, abort only after the group name is typed, read-only refuses). Each asserts on what
was shown and on what the fake ConsoleData received."""

from __future__ import annotations

import pytest

from fleet_tui.demo.fake_console import REPO
from fleet_tui.ui.screens.confirm import SafetyScreen, TypeToConfirm
from fleet_tui.ui.screens.preview import PreviewScreen
from fleet_tui.ui.screens.rollout import RolloutScreen
from tests.support.console_fakes import RecordingConsoleData
from tests.ui.conftest import confirm_typed, loaded, make_app, open_rollout, screen_text, wait_for

pytestmark = pytest.mark.anyio
TARGET = f"{REPO}:2"


async def open_preview(app, pilot, down: int = 0) -> None:
    await wait_for(pilot, lambda: loaded(app), what="fleet")
    await pilot.press(*["down"] * down, "p")  # p previews the highlighted group
    await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen) and loaded(app), what="preview")


async def test_preview_builds_rebased_image_after_safety_report(fake) -> None:
    app = make_app(fake, target=TARGET)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_preview(app, pilot, down=1)
        text = screen_text(app)
        assert "NAIVE ml/scoring:2" in text and "pull" in text and "81.5 MB" in text
        assert "no rebased image yet" in text
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, SafetyScreen), what="safety report")
        assert "Rebase safety report" in screen_text(app) and "/var/azureml-app" in screen_text(app)
        assert fake.sent == []  # nothing pushed before the operator says yes
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen) and app.screen.preview.rebased is not None,
                       what="preview reloaded with the rebased image")
        assert fake.sent == [("build_rebased", TARGET, "vans-lte")]
        text = screen_text(app)
        assert "REBASED ml/scoring:2-rebased" in text
        saving = next(line for line in text.splitlines() if "per device," in line)
        assert saving.strip() == "81.5 MB → 7.9 kB per device, $34,154 → $3.31 for 600 devices", text


async def test_safety_report_cancel_pushes_nothing(fake) -> None:
    app = make_app(fake, target=TARGET)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_preview(app, pilot, down=1)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, SafetyScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen))
        assert fake.sent == []


async def test_start_rollout_needs_the_group_name(fake) -> None:
    app = make_app(fake, target=TARGET)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_preview(app, pilot, down=2)
        await confirm_typed(app, pilot, "R", "trucks")  # wrong name: refused, still asking
        await wait_for(pilot, lambda: "nothing was done" in screen_text(app))
        assert fake.sent == []
        await pilot.press(*"-sat", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and loaded(app), what="rollout screen")
        assert fake.sent == [("start_rollout", TARGET, "trucks-sat")]
        assert app.screen.rollout_id == "r-0002"
        assert "trucks-sat" in screen_text(app)


async def test_rollout_shows_waves_progress_and_totals(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        text = screen_text(app)
        assert "RUNNING" in text and "ml/scoring:2 → vans-lte" in text and "ETA" in text and "cost so far" in text
        assert "canary: 1 running" in text and "succeeded" in text
        assert "██████████ 100%" in text and "downloading" in text
        assert "wave 2: tagged 60 devices" in text  # the live engine's wording
        before = app.screen.snapshot.bytes_total
        fake.clock.advance(30)
        await wait_for(pilot, lambda: app.screen.snapshot.bytes_total > before, what="progress after 30 s")


async def test_rollout_pause_resume_and_abort_confirmed(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.snapshot.state == "paused", what="paused")
        await pilot.press("u")
        await wait_for(pilot, lambda: app.screen.snapshot.state == "running", what="running again")
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeToConfirm))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen))
        assert fake.sent == [("pause", "r-0001"), ("resume", "r-0001")]
        await confirm_typed(app, pilot, "A")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.snapshot.state == "aborted")
        assert fake.sent[-1] == ("abort", "r-0001")
        assert "ABORTED" in screen_text(app)


async def test_rollout_approve_and_failed_only(fake) -> None:
    data = RecordingConsoleData(groups={"trucks-sat": 250}, with_rollout=False)
    rid = data.start_rollout(TARGET, "trucks-sat")
    data.sent.clear()
    app = make_app(data, rollout_id=rid, start="rollout")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and loaded(app), what="rollout")
        data.clock.advance(400)
        await wait_for(pilot, lambda: app.screen.snapshot.awaiting_approval, what="canary gate")
        assert "a approves the next wave" in screen_text(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: ("approve", rid) in data.sent)
        data.clock.advance(600)
        await wait_for(pilot, lambda: app.screen.snapshot.count("failed") > 0, what="failures on the flaky link")
        await pilot.press("x")
        await pilot.pause()
        assert all(d.state in ("failed", "offline", "rolled_back") for d in app.screen.table.view)
        assert "failed/offline only" in screen_text(app)


async def test_read_only_disables_every_action(fake) -> None:
    data = RecordingConsoleData(read_only=True)
    app = make_app(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_rollout(app, pilot)
        assert "READ-ONLY" in screen_text(app)
        assert "Pause" not in screen_text(app).splitlines()[-1]  # not offered in the footer
        await pilot.press("p", "A", "B", "a")
        await pilot.pause(0.2)
        assert isinstance(app.screen, RolloutScreen) and data.sent == []
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any("Abort" in t or "Pause" in t for t in titles)
