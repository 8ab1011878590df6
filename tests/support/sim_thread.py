"""Run a `SimFleet` (fleet_tui.devices) in a background thread with its own event loop, so
a test can drive the rollout engine (in process or as subprocesses) while devices update.

`set_speed` changes how many device seconds pass per real second while the fleet runs
(fleet time stays continuous), so a test can stretch one wave to act in the middle of it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from fleet_tui.devices.simconfig import SimSpec
from fleet_tui.devices.simfleet import SimFleet
from fleet_tui.hub.local import LocalHub


class SimFleetThread:
    def __init__(self, spec: SimSpec, hub_path: Path, config: Any) -> None:
        self.spec, self.hub_path, self.config = spec, hub_path, config
        self.fleet: SimFleet | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-fleet")

    def start(self) -> "SimFleetThread":
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"simulated fleet did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()/stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        hub = LocalHub(self.hub_path, module="scoring")
        self.fleet = SimFleet(self.spec, hub, self.config)
        try:
            await self.fleet.start()
            self._ready.set()
            await self._stop.wait()
            await self.fleet.stop()
        finally:
            hub.close()

    def set_speed(self, speed: float) -> None:
        clock = self.fleet.fx.clock  # type: ignore[union-attr]
        now = clock.now()
        clock.speed = speed
        clock.t0 = time.monotonic() - now / speed

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._error is not None:
            raise self._error
