"""Pilot tests: drive Fleet → Devices → Device, Images (pick a target), filters, help and the
command palette by keys only, asserting on what the screen shows."""

from __future__ import annotations

import pytest

from fleet_tui.ui.screens.device import DeviceScreen
from fleet_tui.ui.screens.devices import DevicesScreen
from fleet_tui.ui.screens.fleet import FleetScreen
from fleet_tui.ui.screens.help import HelpScreen
from fleet_tui.ui.screens.images import ImagesScreen
from tests.ui.conftest import loaded, make_app, screen_text, wait_for

pytestmark = pytest.mark.anyio


async def test_fleet_lists_groups_with_counts_images_and_rollout(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app), what="fleet data")
        text = screen_text(app)
        assert isinstance(app.screen, FleetScreen)
        assert "4 groups, 1,000 devices, 990 online, rollout r-0001 running on vans-lte" in text
        assert "vans-lte" in text and "593" in text and "r-0001 ▶" in text
        assert "ml/scoring:1 0cf457e" in text


async def test_enter_drills_down_and_escape_goes_back(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen) and loaded(app), what="devices")
        text = screen_text(app)
        assert "Devices of vans-lte" in text
        assert "600 devices: 589 running, 7 offline, 4 failed" in text
        assert "vans-00000" in text
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen) and loaded(app), what="device")
        text = screen_text(app)
        assert "vans-00002" in text and "LAYERS CACHED" in text and "81.5 MB" in text and "lte" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))


async def test_slash_filters_the_device_list_and_escape_clears_it(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen) and loaded(app))
        await pilot.press("slash", *"failed")
        await wait_for(pilot, lambda: len(app.screen.table.view) == 4, what="4 failed devices")
        assert "filter “failed”: 4 of 600" in screen_text(app)
        await pilot.press("enter")  # keep the filter, back to the list
        assert app.screen.table.has_focus
        await pilot.press("escape")  # clears the filter, stays on the screen
        await wait_for(pilot, lambda: len(app.screen.table.view) == 600)
        assert isinstance(app.screen, DevicesScreen)


async def test_images_pick_target_then_preview(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImagesScreen) and loaded(app), what="images")
        text = screen_text(app)
        assert "ml/scoring" in text and "110.6 MB" in text and "base/python" in text and "30d" in text
        await pilot.press("down", "t")
        assert app.target == "127.0.0.1:5000/ml/scoring:2"
        assert "target ml/scoring:2" in screen_text(app)


async def test_preview_without_target_sends_operator_to_images(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, ImagesScreen))


async def test_help_lists_every_key_and_closes(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and "Keys — esc closes" in screen_text(app))
        assert "Filter" in screen_text(app)
        await pilot.press("end")  # the list scrolls by keyboard
        await wait_for(pilot, lambda: "Build rebased" in screen_text(app), what="the end of the help")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))


async def test_command_palette_offers_every_screen_action(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Fleet: Devices", "Fleet: Preview", "Fleet: Rollout", "Lists: Filter", "Everywhere: Images"):
            assert wanted in titles
        fleet_cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "Everywhere: Images")
        await fleet_cmd.callback()
        await wait_for(pilot, lambda: isinstance(app.screen, ImagesScreen))


async def test_no_color_is_respected(monkeypatch, fake) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        assert app.no_color
        assert "running" in screen_text(app)  # states read as words too
