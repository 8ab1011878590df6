"""`SimDevice`: one lightweight simulated device, run as an asyncio task (many per process).

It behaves like the engine agent as seen from the hub: when its desired image differs
from what it runs it downloads what it lacks — the blobs of the target that are not in
its content store, fetched for real (ranged GETs, digests verified) and paced by its link
— then applies and runs it, reporting pending/downloading/applying/running/failed/offline
and `bytes_downloaded` (bytes delivered over its link in this update: manifest, config and
missing layers; a cut wastes the undelivered rest of one range, which is not counted).

Invariants:
- a blob cut off mid-way resumes from the byte reached (the content store keeps the
  offset and running hash), so each byte crosses the link at most once more than needed;
- manifest and config are fetched and verified once per fleet (content-addressed, shared
  by all devices) and charged to each device's link; layer bytes are fetched per device;
- a device whose image crashes on start or whose download fails (`FailureModel`) reports
  failed with the error and keeps running its old image; like edgeAgent it tries that image
  again only when the desired image or the module's desired `version` changes (a rollout's
  retry); blobs it downloaded stay in its store;
- a desired change that arrives mid-update is taken up once the update ends;
- images it ran before stay held (their blobs are never evicted) and are reported as
  `cached` (the newest `MAX_CACHED`); going back to one fetches nothing, as on dockerd.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from fleet_tui.devices.contentstore import ContentStore
from fleet_tui.devices.linkmodel import IdleOutages, Link, SimClock
from fleet_tui.devices.simconfig import FailureRule
from fleet_tui.errors import FleetError
from fleet_tui.hub.protocol import ModuleReport, stage_module
from fleet_tui.planning.pullplan import plan_for_blobs

if TYPE_CHECKING:
    from fleet_tui.devices.blobsource import BlobSource
    from fleet_tui.oci.image import Image


class FailureModel:
    """Which devices crash on start of which image: named devices, or a fraction picked by
    hashing (seed, device, digest) — the same devices every run, independent of order."""

    def __init__(self, rules: tuple[FailureRule, ...] = (), seed: int = 1) -> None:
        self.rules = rules
        self.seed = seed

    def crashes(self, device_id: str, image: str, attempt: int = 1) -> bool:
        return self.fails("start", device_id, image, attempt)

    def applies(self, kind: str, image: str) -> bool:
        """Whether any rule could make a device fail this way at `image` (else `fails` is False)."""
        return any(rule.kind == kind and (not rule.image or rule.image in image) for rule in self.rules)

    def fails(self, kind: str, device_id: str, image: str, attempt: int = 1) -> bool:
        """Whether `attempt` (1 = the first) of `device_id` at `image` fails this way."""
        for rule in self.rules:
            if rule.kind != kind or (rule.image and rule.image not in image):
                continue
            if rule.attempts and attempt > rule.attempts:
                continue
            if device_id in rule.devices:
                return True
            if rule.fraction > 0:
                h = hashlib.sha256(f"{self.seed}:{device_id}:{image}".encode()).digest()
                if int.from_bytes(h[:8], "big") / 2**64 < rule.fraction:
                    return True
        return False


MAX_CACHED = 8  # previous images a device reports holding (it keeps every blob; the report is bounded)


@dataclass
class Services:
    """What the fleet shares with its devices."""

    module: str
    clock: SimClock
    source: "BlobSource"
    image: Callable[[str, str], Awaitable["Image"]]  # cached, verified image metadata by (pinned ref, platform)
    outbox: dict[str, tuple[dict[str, ModuleReport], bool]]  # latest report per device
    failures: FailureModel = field(default_factory=FailureModel)
    chunk: int = 256 * 1024
    apply_seconds: float = 3.0


class SimDevice:
    __slots__ = ("id", "group", "link", "idle", "store", "fx", "image", "digest", "state", "bytes", "error",
                 "desired", "failed_image", "wake", "fetched", "resumes", "trace", "platform", "cached",
                 "version", "failed_version", "attempts", "stage", "staging", "kept")

    def __init__(self, device_id: str, group: str, link: Link, idle: IdleOutages, store: ContentStore,
                 services: Services, image: str = "", trace: bool = False, platform: str = "linux/amd64") -> None:
        self.id, self.group, self.link, self.idle, self.store, self.fx = device_id, group, link, idle, store, services
        self.platform = platform
        self.image = image  # pinned ref it runs
        self.digest = image.rpartition("@")[2] if image else ""
        self.state = "running" if image else "pending"
        self.bytes, self.error, self.desired, self.failed_image = 0, "", image, ""
        self.wake = asyncio.Event()
        self.fetched = 0  # bytes received from the blob source (incl. waste after cuts)
        self.resumes = 0
        self.trace: list[tuple] | None = [] if trace else None
        self.cached: list[str] = []  # images it ran before and still holds (as dockerd keeps them), newest first
        self.version, self.failed_version = "", ""  # the desired module `version` (a new one = a retry)
        self.attempts: dict[str, int] = {}  # image → attempts at it so far
        self.stage: ModuleReport | None = None  # the stopped stage module: its image pulled, not run
        self.staging = ""  # the stage image desired ("" = none)
        self.kept = 0  # the module's own bytes while `bytes` counts a pull ahead

    def report(self, connected: bool = True) -> None:
        pulling = self.stage is not None and self.stage.state == "downloading"
        modules = {self.fx.module: ModuleReport(self.fx.module, self.image, self.digest, self.state,
                                                self.kept if pulling else self.bytes, self.error, platform=self.platform,
                                                cached=tuple(self.cached), link=self.link.profile.name)}
        if self.stage is not None:
            modules[self.stage.name] = replace(self.stage, bytes_downloaded=self.bytes) if pulling else self.stage
        self.fx.outbox[self.id] = (modules, connected)

    def set_staged(self, image: str) -> None:
        """The stage module's image (desired status stopped): pulled ahead, never run."""
        if image != self.staging:
            self.staging = image
            if not image and self.stage is not None and self.stage.state != "downloading":
                self.stage = None  # no longer desired: edgeAgent removes the module (its image stays held)
                self.report()
            self.wake.set()

    def _wants_stage(self) -> bool:
        return bool(self.staging) and self.staging != self.image and \
            (self.stage is None or self.stage.image != self.staging)

    def set_desired(self, image: str, version: str = "") -> None:
        """A new image, or a new `version` of the module (as edgeAgent, a failed image is tried
        again only when one of them changes)."""
        if (image, version) != (self.desired, self.version):
            self.desired, self.version = image, version
            self.wake.set()

    def _wants_update(self) -> bool:
        return bool(self.desired) and self.desired != self.image and \
            (self.desired, self.version) != (self.failed_image, self.failed_version)

    @property
    def settled(self) -> bool:
        return not self._wants_update() and self.state in ("running", "failed", "pending")

    async def run(self) -> None:
        self.report()
        while True:
            if self._wants_update():
                await self._sit_out_idle_outage()
                await self.update(self.desired)
                continue
            if self._wants_stage():
                await self._sit_out_idle_outage()
                await self.pull_ahead(self.staging)
                continue
            self.wake.clear()
            start, end = self.idle.window(self.fx.clock.now())
            timeout = self.fx.clock.real(start - self.fx.clock.now()) if start != float("inf") else None
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except asyncio.TimeoutError:
                await self._sit_out_idle_outage()

    async def _sit_out_idle_outage(self) -> None:
        start, end = self.idle.window(self.fx.clock.now())
        if start <= self.fx.clock.now() < end:
            await self._offline(end - self.fx.clock.now(), "idle-offline")

    async def _offline(self, seconds: float, why: str = "offline") -> None:
        if self.trace is not None:  # idle outages depend on when things happen in fleet time
            self.trace.append((why, round(seconds, 6) if why == "offline" else None, self.bytes))
        before = self.state
        self.state = "offline"
        self.report(connected=False)
        await self.fx.clock.sleep(seconds)
        self.state = before
        self.report()

    async def update(self, ref: str) -> None:
        old = (self.image, self.digest)
        version = self.version
        attempt = self.attempts[ref] = self.attempts.get(ref, 0) + 1
        self.state, self.bytes, self.error = "downloading", 0, ""
        self.report()
        try:
            if self.fx.failures.fails("download", self.id, ref, attempt):
                await self.fx.clock.sleep(self.link.profile.latency)
                raise FleetError(f"{ref}: pulling a layer failed: connection reset by peer (simulated download failure)")
            target = await self.fx.image(ref, self.platform)
            held = {target.config_digest} if ref in self.cached else set()  # the very image is still here
            plan = plan_for_blobs(target, self.store.blobs, held, {target.digest} if held else set())
            await self._charge(plan.index_bytes + plan.manifest_bytes + plan.config_bytes)
            for layer in plan.layers:
                if layer.needed and not self.store.has(layer.digest):
                    await self.fetch_blob(target.repo, layer.digest, layer.size, _host(target))
            self.state = "applying"
            self.report()
            await self.fx.clock.sleep(self.fx.apply_seconds)
            if self.fx.failures.crashes(self.id, ref, attempt):
                raise FleetError(f"{ref}: module exited on start (simulated crash, exit code 1)")
        except Exception as exc:  # noqa: BLE001 - any failure is this device's, reported
            self.image, self.digest = old
            message = str(exc) if isinstance(exc, FleetError) else f"{type(exc).__name__}: {exc}"
            self.state, self.error, self.failed_image, self.failed_version = "failed", message, ref, version
        else:
            # the digest it runs is the one it was told to run (an index's, for multi-platform),
            # as dockerd's RepoDigests name it
            if old[0] and old[0] != ref:
                self.cached = [old[0]] + [c for c in self.cached if c not in (old[0], ref)][:MAX_CACHED - 1]
            else:
                self.cached = [c for c in self.cached if c != ref]
            self.image, self.digest, self.state, self.failed_image = ref, ref.rpartition("@")[2], "running", ""
            self.attempts.pop(ref, None)
        if self.trace is not None:
            self.trace.append((self.state, ref, self.bytes, self.fetched, self.resumes))
        self.report()

    async def pull_ahead(self, ref: str) -> None:
        """What edgeAgent does for a new module with desired status `stopped`: pull its image and
        create it without starting it (HealthRestartPlanner: prepare + create, no start). The
        module it runs is untouched; the image is then held, so switching to it pulls nothing."""
        name = stage_module(self.fx.module)
        self.kept, self.bytes = self.bytes, 0
        self.stage = ModuleReport(name, ref, ref.rpartition("@")[2], "downloading", 0, "", updated=0.0)
        self.report()
        try:
            target = await self.fx.image(ref, self.platform)
            plan = plan_for_blobs(target, self.store.blobs, set(), set())
            await self._charge(plan.index_bytes + plan.manifest_bytes + plan.config_bytes)
            for layer in plan.layers:
                if layer.needed and not self.store.has(layer.digest):
                    await self.fetch_blob(target.repo, layer.digest, layer.size, _host(target))
        except Exception as exc:  # noqa: BLE001 - reported as the stage module's failure
            message = str(exc) if isinstance(exc, FleetError) else f"{type(exc).__name__}: {exc}"
            self.stage = ModuleReport(name, ref, ref.rpartition("@")[2], "failed", self.bytes, message)
        else:
            self.cached = [ref] + [c for c in self.cached if c != ref][:MAX_CACHED - 1]
            self.stage = ModuleReport(name, ref, ref.rpartition("@")[2], "stopped", self.bytes, "")
        self.bytes = self.kept
        self.report()

    async def _charge(self, nbytes: int) -> None:
        """Move `nbytes` of metadata over the link (already fetched once for the fleet)."""
        while nbytes > 0:
            delivered, seconds, outage = self.link.transfer(nbytes)
            await self.fx.clock.sleep(seconds)
            nbytes -= delivered
            self.bytes += delivered
            if outage:
                await self._offline(outage)

    async def fetch_blob(self, repo: str, digest: str, size: int, host: str = "") -> None:
        offset, verifier = self.store.resume_point(digest, size)
        if offset:
            self.resumes += 1
        profile = self.link.profile
        try:
            while offset < size:
                spent, outage = self.link.advance(profile.latency)  # the request's round trip
                await self.fx.clock.sleep(spent)
                if outage:
                    await self._offline(outage)
                    continue
                end = min(size, offset + self.fx.chunk) - 1
                data = await (self.fx.source.fetch(repo, digest, offset, end, self.id, host=host) if host
                              else self.fx.source.fetch(repo, digest, offset, end, self.id))
                self.fetched += len(data)
                delivered, seconds, outage = self.link.transfer(len(data))
                await self.fx.clock.sleep(seconds)
                verifier.update(data[:delivered])
                offset += delivered
                self.bytes += delivered
                self.report()
                if outage:
                    self.store.keep_partial(digest, offset, verifier)
                    await self._offline(outage)
                    self.resumes += 1
        except BaseException:
            self.store.keep_partial(digest, offset, verifier)
            raise
        self.store.partial.pop(digest, None)
        verifier.finish()  # DigestMismatch: the blob is dropped, never kept
        self.store.complete(digest)


def _host(image: Any) -> str:
    """The registry host a device pulls `image` from ("" for the embedded store)."""
    ref = image.ref
    return "" if ref.layout else str(ref.registry)

