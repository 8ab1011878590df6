"""Fixtures for console tests: seeded fake data on a frozen clock, and a helper that waits
(by polling under the pilot) until the screen shows what a test expects."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest

from fleet_tui.ui.app import FleetApp
from fleet_tui.ui.fake_data import FakeConsoleData


@pytest.fixture
def fake() -> FakeConsoleData:
    return FakeConsoleData()


def make_app(data: FakeConsoleData, **kwargs) -> FleetApp:
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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
