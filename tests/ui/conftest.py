"""Fixtures for console tests: seeded fake data on a frozen clock, a helper that waits
(by polling under the pilot) until the screen shows what a test expects, and the key
sequences several tests share (open the current rollout, type a group name to confirm)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest

from fleet_tui.ui.app import FleetApp
from fleet_tui.ui.screens.confirm import TypeToConfirm
from fleet_tui.ui.screens.rollout import RolloutScreen
from tests.support.console_fakes import RecordingConsoleData


@pytest.fixture
def fake() -> RecordingConsoleData:
    return RecordingConsoleData()


def make_app(data: RecordingConsoleData, **kwargs) -> FleetApp:
    return FleetApp(data, clock=data.clock, sample_hz=20, **kwargs)


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            await pilot.pause()
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def screen_text(app: FleetApp) -> str:
    """Everything the screen shows, as plain text (what an operator reads)."""
    strips = app.screen._compositor.render_strips()  # noqa: SLF001 - the composed screen
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def loaded(app: FleetApp) -> bool:
    """The current screen has applied its first snapshot."""
    return getattr(app.screen, "loaded", False)


def footer(app: FleetApp) -> str:
    return screen_text(app).splitlines()[-1]


async def open_rollout(app: FleetApp, pilot) -> None:
    """From the Fleet screen, `o` opens the current rollout; waits for its first snapshot."""
    await wait_for(pilot, lambda: loaded(app), what="fleet")
    await pilot.press("o")
    await wait_for(pilot, lambda: isinstance(app.screen, RolloutScreen) and loaded(app), what="rollout")


async def confirm_typed(app: FleetApp, pilot, key: str, group: str = "vans-lte") -> None:
    """Press a dangerous action's key and type the group name its TypeToConfirm asks for."""
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, TypeToConfirm))
    await pilot.press(*group, "enter")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
