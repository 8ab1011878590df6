"""`SimFleet`: many `SimDevice`s as asyncio tasks in one process, wired to a hub.

One loop serves them all, so the hub sees batches, never one call per device:
- every `poll_seconds` one `desired_for_many` over all device ids (in a worker thread)
  hands each device its desired image of the managed module;
- every 1/`report_hz` seconds the devices' latest reports (an outbox dict, last write
  wins) go to the hub in one `report_many` transaction, at least once: a report leaves the
  outbox only when the hub accepted it; failed writes are retried with backoff;
- every `heartbeat_seconds` each device's last report is sent again, so an idle device stays
  online and silence means offline;
- image metadata (manifest, config) is loaded and verified once per image and shared;
- all layer bytes come through one `BlobSource` (one connection pool).

Invariants: devices are registered (idempotently) before they report; on `stop()` every
device reports itself disconnected, so the hub shows the fleet offline at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Callable

from fleet_tui.config import Config
from fleet_tui.devices.blobsource import BlobSource, HostSources, LayoutSource, RegistrySource
from fleet_tui.devices.contentstore import ContentStore
from fleet_tui.devices.linkmodel import IdleOutages, Link, SimClock
from fleet_tui.devices.simconfig import SimSpec
from fleet_tui.devices.simulated import FailureModel, Services, SimDevice
from fleet_tui.errors import FleetError
from fleet_tui.hub.protocol import DeviceSide, ModuleReport, stage_module
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.oci.image import Image, load_image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.store import open_store

log = logging.getLogger("fleet_tui.sim")


def source_for(image: str, config: Config, connections: int) -> HostSources:
    ref = parse_reference(image)
    if ref.layout:
        return HostSources(LayoutSource(open_store(ref, config)), "", config, connections)  # type: ignore[arg-type]
    return HostSources(RegistrySource(ref.registry, config, connections), ref.registry, config, connections)


class SimFleet:
    def __init__(self, spec: SimSpec, hub: DeviceSide, config: Config, module: str = "scoring",
                 group_tag: str = "fleetGroup", source: BlobSource | None = None, trace: bool = False) -> None:
        self.spec, self.hub, self.config, self.group_tag = spec, hub, config, group_tag
        if source is not None and not isinstance(source, HostSources):  # one given for the fleet's own registry
            ref = parse_reference(spec.image)
            source = HostSources(source, "" if ref.layout else ref.registry, config, spec.connections)
        self.source = source or source_for(spec.image, config, spec.connections)
        self.outbox: dict[str, Any] = {}
        self._images: dict[tuple[str, str], asyncio.Future] = {}
        self.fx = Services(module, SimClock(spec.speed), self.source, self.image, self.outbox,
                           FailureModel(spec.failures, spec.seed), spec.chunk_bytes, spec.apply_seconds)
        self.devices: dict[str, SimDevice] = {}
        self.trace = trace
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self.reports_sent = 0
        self.last_sent: dict[str, Any] = {}  # device id → its report the hub last accepted (heartbeats resend it)

    async def image(self, ref: str, platform: str = "linux/amd64") -> Image:
        """Verified metadata of `ref` for `platform`, loaded once for the whole fleet."""
        key = (ref, platform)
        fut = self._images.get(key)
        if fut is None:
            fut = self._images[key] = asyncio.ensure_future(asyncio.to_thread(load_image, ref, self.config, platform))
        try:
            return await asyncio.shield(fut)
        except Exception:
            self._images.pop(key, None)  # let a later attempt try again
            raise

    async def start(self) -> None:
        """Register the devices, load the starting image, start every device task."""
        ids = self.spec.device_ids()
        tag = self.group_tag
        site_tag = self.config.hub.site_tag
        await asyncio.to_thread(self.hub.register_devices, [
            (d, {tag: g.name, "simulated": True, **({site_tag: g.site} if g.site else {})}) for d, g in ids])
        start = {p: await self.image(self.spec.image, p) for p in {g.platform for g in self.spec.groups}}
        before = await asyncio.to_thread(self._last_reports, [d for d, _ in ids])
        seed = self.spec.seed
        for device_id, group in ids:
            profile = self.spec.links[group.link]
            link = Link(profile, random.Random(f"{seed}:link:{device_id}"))
            idle = IdleOutages(profile, random.Random(f"{seed}:idle:{device_id}"))
            image, held = await self._resumed(before.get(device_id), group.platform)
            blobs = {layer.digest for img in (held or [start[group.platform]]) for layer in img.layers}
            device = SimDevice(device_id, group.name, link, idle, ContentStore(blobs), self.fx,
                               image or self.spec.image, self.trace, group.platform)
            device.cached = [img.pinned for img in held[1:]]
            self.devices[device_id] = device
        self.fx.clock.t0 = time.monotonic()
        self._tasks = [asyncio.create_task(d.run(), name=d.id) for d in self.devices.values()]
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="poll"))
        self._tasks.append(asyncio.create_task(self._report_loop(), name="report"))
        await asyncio.sleep(0)  # let every device task queue its first report before the flush
        await self.flush()
        log.info("simulated fleet up: %d devices in %d groups", len(self.devices), len(self.spec.groups))

    def _last_reports(self, device_ids: list[str]) -> dict[str, ModuleReport]:
        """What each device last reported running (a fleet started again resumes from it: a
        device keeps the image it was updated to, and what it cached, as dockerd does)."""
        wanted, out = set(device_ids), {}
        if not hasattr(self.hub, "iter_devices"):  # a device-side-only hub: nothing to resume from
            return out
        for group in self.spec.groups:
            for twin in self.hub.iter_devices(group_condition(self.group_tag, group.name)):
                report = twin.reported.get(self.fx.module)
                if twin.device_id in wanted and report is not None and report.image and report.state == "running":
                    out[twin.device_id] = report
        return out

    async def _resumed(self, report: ModuleReport | None, platform: str) -> tuple[str, list[Image]]:
        """(image it runs, [that image, *images it still holds]) from its last report; the
        fleet's starting image when it reported none or its images cannot be loaded."""
        if report is None:
            return "", []
        try:
            images = [await self.image(ref, platform) for ref in (report.image, *report.cached)]
        except FleetError:
            return "", []
        return report.image, images

    async def poll(self) -> None:
        found = await asyncio.to_thread(self.hub.desired_for_many, list(self.devices))
        module = self.fx.module
        for device_id, (_, modules) in found.items():
            stage = modules.get(stage_module(module))
            self.devices[device_id].set_staged(stage.image if stage is not None else "")
            spec = modules.get(module)
            if spec is not None:
                self.devices[device_id].set_desired(spec.image, str((spec.definition or {}).get("version", "")))

    async def flush(self) -> None:
        """Send the outbox in one `report_many`. At least once: an entry leaves the outbox only
        after the hub accepted it, and only if no newer report replaced it meanwhile; a failed
        write keeps everything for the next flush (and raises)."""
        if not self.outbox:
            return
        batch = list(self.outbox.items())
        await asyncio.to_thread(self.hub.report_many, [(d, modules, connected) for d, (modules, connected) in batch])
        for device_id, sent in batch:
            if self.outbox.get(device_id) is sent:
                del self.outbox[device_id]
            self.last_sent[device_id] = sent
        self.reports_sent += len(batch)

    def heartbeat(self) -> int:
        """Queue every device's last report again, so the hub sees it within its offline window
        even when nothing changes (silence must mean offline, not idle). Returns how many."""
        queued = 0
        for device_id, sent in self.last_sent.items():
            if device_id not in self.outbox:
                self.outbox[device_id] = sent
                queued += 1
        return queued

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - a hub hiccup must not end the fleet
                log.warning("polling the hub failed: %s", exc)
            await asyncio.sleep(self.spec.poll_seconds)

    async def _report_loop(self) -> None:
        """Flush at `report_hz`; after a failed write retry with backoff (0.5 s doubling to 30 s)
        keeping every report; heartbeat every `heartbeat_seconds` of real time."""
        delay, failing, beat = 1.0 / self.spec.report_hz, 0, time.monotonic()
        while True:
            await asyncio.sleep(delay if not failing else min(30.0, 0.5 * 2 ** (failing - 1)))
            if time.monotonic() - beat >= self.spec.heartbeat_seconds:
                beat = time.monotonic()
                self.heartbeat()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the reports stay queued; the next try sends them
                failing += 1
                if failing == 1 or failing % 10 == 0:
                    log.warning("reporting %d devices to the hub failed (%s); retrying, nothing is dropped",
                                len(self.outbox), exc)
                continue
            if failing:
                log.info("reports reach the hub again after %d failed tries", failing)
            failing = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.devices.values():
            out[d.state] = out.get(d.state, 0) + 1
        return out

    async def wait(self, done: Callable[["SimFleet"], bool], timeout: float, every: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in self._tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
            if done(self):
                return True
            await asyncio.sleep(every)
        return done(self)

    def all_settled(self) -> bool:
        return all(d.settled for d in self.devices.values())

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for d in self.devices.values():
            d.report(connected=False)
        await self.flush()
        await self.source.aclose()
        self._stopping.set()

    async def run_until_stopped(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
