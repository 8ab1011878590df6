"""Every screen of the console as a *scene*: an app on seeded fake data (frozen clock) and
the keys that reach the screen. Shared by the SVG snapshot tests and scripts/screenshots.py,
so the committed screenshots are exactly what the tests compare."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from textual.pilot import Pilot
from textual.widgets import Input

from fleet_tui.demo.fake_console import REPO
from fleet_tui.ui.app import FleetApp
from tests.support.console_fakes import RecordingConsoleData

TARGET = f"{REPO}:2"


async def settle(pilot: Pilot, screen: str, timeout: float = 10.0) -> None:
    """Wait until the named screen is current and has drawn its first snapshot."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = app.screen
        if type(s).__name__ == screen and getattr(s, "loaded", True):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"{screen} did not load (now on {type(app.screen).__name__})")
    for inp in app.screen.query(Input):
        inp.cursor_blink = False
    app.clear_notifications()
    await pilot.pause(0.1)
    app.clear_notifications()
    await pilot.pause()


@dataclass(frozen=True)
class Scene:
    name: str
    make: Callable[[], FleetApp]
    run_before: Callable[[Pilot], Awaitable[None]]


def _app(**kwargs) -> Callable[[], FleetApp]:
    """A factory: every call builds a fresh app on fresh seeded data."""

    def make() -> FleetApp:
        args = dict(kwargs)
        data = RecordingConsoleData(rebased=args.pop("rebased", False))
        return FleetApp(data, clock=data.clock, sample_hz=20, **args)

    return make


def keys(*pressed: str, screen: str) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await settle(pilot, "FleetScreen")
        for key in pressed:
            await pilot.press(key)
            await pilot.pause(0.05)
        await settle(pilot, screen)

    return run


async def _safety_then_diff(pilot: Pilot) -> None:
    await keys("down", "p", "b", screen="SafetyScreen")(pilot)
    await pilot.press("d")
    await settle(pilot, "DiffScreen")


def short_wave_rollout() -> RecordingConsoleData:
    """Fake data with rollout r-0009 on vans-lte, approved now: wave 2 holds devices 1..24,
    three of them offline, so 21 can run and its gate needs 23."""
    from fleet_tui.demo.fake_rollout import FakeRollout

    data = RecordingConsoleData(groups={"vans-lte": 600}, with_rollout=False)
    now = data.clock()
    devices = [(f"van-{i:03d}", 1_000_000, i in (2, 5, 9)) for i in range(240)]
    data.rollouts["r-0009"] = FakeRollout("r-0009", "vans-lte", f"{REPO}:2", devices, now, "wifi", 720.0,
                                          previous=f"{REPO}:1")
    data.rollouts["r-0009"].control("approve", now)
    return data


def _halted_app() -> FleetApp:
    """Past its gate timeout the short wave halts, offering retry, continue anyway and roll back."""
    data = short_wave_rollout()
    data.clock.advance(400)
    return FleetApp(data, clock=data.clock, sample_hz=20, rollout_id="r-0009", start="rollout")


async def _on_rollout(pilot: Pilot) -> None:
    await settle(pilot, "RolloutScreen")


async def _device_filter(pilot: Pilot) -> None:
    """Devices of vans-lte filtered by `/` (answered by the listing, not the table)."""
    await keys("down", "enter", screen="DevicesScreen")(pilot)
    await pilot.press("slash", *"-0010", "enter")
    deadline = time.monotonic() + 10
    while "filter" not in str(pilot.app.screen.summary_text()) or pilot.app.screen.paged.waiting:
        if time.monotonic() > deadline:
            raise AssertionError("the filter did not apply")
        await asyncio.sleep(0.02)
    await settle(pilot, "DevicesScreen")


SCENES = [
    Scene("fleet", _app(), keys(screen="FleetScreen")),
    Scene("devices", _app(), keys("down", "enter", screen="DevicesScreen")),
    Scene("device", _app(), keys("down", "enter", "down", "down", "down", "enter", screen="DeviceScreen")),
    Scene("images", _app(target=TARGET), keys("i", screen="ImagesScreen")),
    Scene("preview-naive", _app(target=TARGET), keys("down", "p", screen="PreviewScreen")),
    Scene("preview", _app(target=TARGET, rebased=True), keys("down", "p", screen="PreviewScreen")),
    Scene("safety-report", _app(target=TARGET), keys("down", "p", "b", screen="SafetyScreen")),
    Scene("rollout", _app(), keys("o", screen="RolloutScreen")),
    Scene("rollout-rolled-back", _app(), keys("o", "B", *"vans-lte", "enter", screen="RolloutScreen")),
    Scene("confirm-abort", _app(), keys("o", "A", screen="TypeToConfirm")),
    Scene("rollout-halted", _halted_app, _on_rollout),
    Scene("device-story", _app(), keys("o", "enter", screen="DeviceStoryScreen")),
    Scene("report", _app(), keys("o", "e", screen="ReportScreen")),
    Scene("devices-filtered", _app(), _device_filter),
    Scene("help", _app(), keys("question_mark", screen="HelpScreen")),
    Scene("diff", _app(target=TARGET), keys("i", "end", "d", screen="DiffScreen")),
    Scene("safety-diff", _app(target=TARGET), lambda pilot: _safety_then_diff(pilot)),
]
