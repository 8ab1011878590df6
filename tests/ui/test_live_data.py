"""The console on a real embedded local hub (SQLite): LiveConsoleData reads groups and
devices as the hub reports them, and the Fleet → Devices screens show them."""

from __future__ import annotations

import pytest

from fleet_tui.config import Config, HubConfig
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.ui.live_data import LiveConsoleData
from fleet_tui.ui.screens.devices import DevicesScreen
from tests.ui.conftest import screen_text, wait_for

pytestmark = pytest.mark.anyio
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def hub_config(tmp_path) -> Config:
    config = Config(hub=HubConfig(path=str(tmp_path / "hub.sqlite")), state_dir=str(tmp_path / "state"))
    hub = LocalHub.from_config(config)
    ids = [f"dev-{i:03d}" for i in range(30)]
    hub.register_devices((d, {"fleetGroup": "vans" if i % 3 else "trucks", "link": "lte"}) for i, d in enumerate(ids))
    report = {"scoring": ModuleReport("scoring", f"127.0.0.1:5999/ml/scoring@{DIGEST}", DIGEST, "running")}
    hub.report_many((d, report, True) for d in ids)
    hub.close()
    return config


async def test_console_reads_a_real_local_hub(hub_config: Config) -> None:
    from fleet_tui.ui.app import FleetApp

    data = LiveConsoleData(hub_config, read_only=True)
    groups = {g.name: g for g in data.groups()}
    assert groups["vans"].devices == 20 and groups["trucks"].devices == 10
    assert groups["vans"].images[0][1:] == (DIGEST, 20)
    assert {d.link for d in data.devices("trucks")} == {"lte"}
    app = FleetApp(data, sample_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
        assert "2 groups, 30 devices, 30 online" in screen_text(app)
        assert "READ-ONLY" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DevicesScreen) and app.screen.loaded)
        assert "10 devices: 10 running" in screen_text(app) and "dev-000" in screen_text(app)


async def test_groups_a_hub_cannot_count_online_show_a_dash_and_sort() -> None:
    """Azure IoT Hub gives no per-group online count (GroupSummary.online is None): the
    Fleet screen shows "-", leaves it out of the summary and can still sort the column."""
    import dataclasses

    from fleet_tui.ui.app import FleetApp
    from tests.support.console_fakes import RecordingConsoleData

    class Uncounted(RecordingConsoleData):
        def groups(self):
            rows = list(super().groups())
            return [dataclasses.replace(g, online=None, offline=None) if i % 2 else g for i, g in enumerate(rows)]

    data = Uncounted()
    counted = [g for i, g in enumerate(RecordingConsoleData().groups()) if not i % 2]
    app = FleetApp(data, clock=data.clock, sample_hz=20)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
        text = screen_text(app)
        assert f"{sum(g.online for g in counted):,} online (some groups not counted)" in text
        assert any(line.split()[2:4] == ["-", "-"] for line in text.splitlines() if len(line.split()) > 4)
        for _ in range(3):  # GROUP, DEVICES, ONLINE: sorting a column with uncounted rows
            await pilot.press("s")
            await pilot.pause(0.05)
        assert app.screen.table.view[0].online is None


async def test_hub_throttling_shows_in_the_title_and_clears() -> None:
    from fleet_tui.ui.app import FleetApp
    from tests.support.console_fakes import RecordingConsoleData

    data = RecordingConsoleData()
    app = FleetApp(data, clock=data.clock, sample_hz=20)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
        assert "throttled" not in screen_text(app).splitlines()[0]
        data.health = "IoT Hub throttled 4× in the last minute: calls slowed"
        await wait_for(pilot, lambda: "⚠ IoT Hub throttled 4×" in screen_text(app).splitlines()[0])
        data.health = ""
        await wait_for(pilot, lambda: "throttled" not in screen_text(app).splitlines()[0])
