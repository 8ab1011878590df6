"""The Devices screen on a real local hub loads as you look: it holds a window of a few
screenfuls, however big the group; `G` shows the last device; `/` and `s` are answered by
the hub (the counts are SQL's, not the window's); a row not loaded yet is a placeholder,
never a crash; the counts per state follow the first rows."""

from __future__ import annotations

import pytest

from fleet_tui.config import Config, HubConfig
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.ui.app import FleetApp
from fleet_tui.ui.live_data import LiveConsoleData
from fleet_tui.ui.screens.devices import DevicesScreen
from tests.ui.conftest import screen_text, wait_for

pytestmark = pytest.mark.anyio
N = 3000
DIGEST = "sha256:" + "cd" * 32


@pytest.fixture
def big_hub(tmp_path) -> Config:
    config = Config(hub=HubConfig(path=str(tmp_path / "hub.sqlite")), state_dir=str(tmp_path / "state"))
    hub = LocalHub.from_config(config)
    ids = [f"dev-{i:04d}" for i in range(N)]
    hub.register_devices((d, {"fleetGroup": "vans"}) for d in ids)
    hub.report_many((d, {"scoring": ModuleReport("scoring", f"127.0.0.1:5999/ml/scoring@{DIGEST}", DIGEST,
                                                 "failed" if i % 100 == 7 else "running", link="lte")}, True)
                    for i, d in enumerate(ids))
    hub.close()
    return config


def devices_loaded(app: FleetApp) -> bool:
    s = app.screen
    return isinstance(s, DevicesScreen) and s.paged.loaded and s.paged.counts is not None and not s.paged.waiting


async def open_group(app: FleetApp, pilot) -> None:
    await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
    await pilot.press("enter")
    await wait_for(pilot, lambda: devices_loaded(app), what="devices")


async def test_a_big_group_opens_with_a_window_and_scrolls_to_the_end(big_hub: Config) -> None:
    app = FleetApp(LiveConsoleData(big_hub, read_only=True), sample_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_group(app, pilot)
        screen = app.screen
        text = screen_text(app)
        assert "3,000 devices: 2,970 running, 30 failed" in text and "dev-0000" in text and "lte" in text
        assert len(screen.paged.rows) <= 200  # a window, not the group
        await pilot.press("G")
        await wait_for(pilot, lambda: "dev-2999" in screen_text(app), what="last row")
        assert screen.table.current_row.id == "dev-2999" and "dev-0000" not in screen_text(app)
        assert screen.paged.offset > 2000 and len(screen.paged.rows) <= 200
        await pilot.press("g")
        await wait_for(pilot, lambda: "dev-0000" in screen_text(app), what="first row again")


async def test_filter_and_sort_are_answered_by_the_hub(big_hub: Config) -> None:
    app = FleetApp(LiveConsoleData(big_hub, read_only=True), sample_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_group(app, pilot)
        await pilot.press("slash", *"-29", "enter")  # dev-2900 … dev-2999
        await wait_for(pilot, lambda: "filter “-29”: 100 of 3,000 devices: 99 running, 1 failed" in screen_text(app),
                       what="filtered summary")
        assert app.screen.table.current_row.id == "dev-2900"
        await pilot.press("escape")
        await wait_for(pilot, lambda: "3,000 devices: 2,970 running" in screen_text(app), what="cleared")
        await pilot.press("s", "s")  # DEVICE, then STATE: failed sorts before running
        await wait_for(pilot, lambda: app.screen.paged.loaded and app.screen.table.current_row is not None
                       and app.screen.table.current_row.state == "failed", what="sorted by state")
        assert app.screen.table.view[29].state == "failed" and app.screen.table.view[30].state == "running"


async def test_rows_not_loaded_yet_draw_as_placeholders(big_hub: Config) -> None:
    """A jump past the window shows placeholders until the window arrives; opening one is a no-op."""
    app = FleetApp(LiveConsoleData(big_hub, read_only=True), sample_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_group(app, pilot)
        screen = app.screen
        screen.stop_sampling()  # nothing will load now
        screen.table.cursor = 1500
        await pilot.pause()
        assert screen.table.current_row is None and "…" in screen_text(app)
        await pilot.press("enter")
        assert app.screen is screen  # nothing to open


async def test_a_parked_cursor_near_the_top_does_not_keep_the_hub_busy(big_hub: Config) -> None:
    """Scrolled down, then paged back up so the cursor sits near the top of the screen: the
    window covers the screen and the table asks for nothing more (it once searched 50 rows
    above the cursor for its key, missed the window each time and re-read the hub for ever)."""
    app = FleetApp(LiveConsoleData(big_hub, read_only=True), sample_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_group(app, pilot)
        screen = app.screen
        await pilot.press(*["pagedown"] * 6)
        await wait_for(pilot, lambda: not screen.paged.waiting, what="the window under the cursor")
        await pilot.press("pageup")
        await wait_for(pilot, lambda: not screen.paged.waiting, what="the window after paging up")
        reads = []
        original = screen.fetch
        screen.sampler._fetch = lambda: reads.append(1) or original()  # noqa: SLF001 - count the hub reads
        screen.resample()  # one refresh, as the 5 s interval would do
        await pilot.pause(1.5)
        assert 1 <= len(reads) <= 2, len(reads)  # that refresh (and its counts), not a read per frame
        assert screen.table.current_row is not None and screen.table.cursor > 100
