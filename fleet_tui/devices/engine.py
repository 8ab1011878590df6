"""`EngineAgent`: one device's agent driving its own Docker engine, as the IoT Edge agent
drives moby.

Each `step()` reads the device's desired modules from the hub and, when the desired
digest-pinned image of the managed module differs from what the module container runs:
pulls it with the streaming pull API (per-layer `Downloading` progress → bytes), starts a
new container next to the old one (`network_mode="none"`), waits a settle time, and only
if the new one is still running removes the old one and takes over the module's name.

Invariants:
- reported state moves downloading → applying → running | failed; `bytes_downloaded` is
  the sum over layers of the bytes each layer has downloaded in this update (layers the
  engine already had count 0); progress reaches the hub at most `report_hz` times a second;
- on any failure the old container keeps running untouched, and the report names the
  error; an image that failed is not retried until the desired image or the module's desired
  `version` changes (as edgeAgent: a rollout retries a device by bumping the version);
- the engine's progress stream covers layer blobs only: manifest and config (a few KB)
  are fetched by dockerd without progress events and are not in `bytes_downloaded`;
- dockerd's progress stream is lossy (it forwards only the latest event per layer, so a
  small layer's `Downloading` events can vanish behind `Download complete`): the agent
  reads the target manifest (one extra manifest GET) to know each layer's size, and a
  completed layer counts its full size.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
from fleet_tui.hub.protocol import DeviceSide, ModuleReport, ModuleSpec
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.manifest import Manifest, parse_index, pick_platform
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.store import open_store, repo_of

log = logging.getLogger("fleet_tui.agent")
MAX_CACHED = 8  # other images reported as held (the newest)
LABEL_MODULE = "fleet.module"
LABEL_IMAGE = "fleet.image"


@dataclass
class PullProgress:
    """Turns dockerd's pull events into downloaded bytes (download phase only)."""

    sizes: dict[str, int] = field(default_factory=dict)  # layer short id → compressed size
    layers: dict[str, int] = field(default_factory=dict)  # layer short id → bytes so far
    totals: dict[str, int] = field(default_factory=dict)

    def feed(self, event: dict[str, Any]) -> None:
        if "error" in event:
            raise PullFailed(str(event.get("error") or event.get("errorDetail")))
        layer, status = event.get("id", ""), event.get("status", "")
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and layer:
            self.layers[layer] = max(self.layers.get(layer, 0), int(detail.get("current", 0)))
            if detail.get("total"):
                self.totals[layer] = int(detail["total"])
        elif status in ("Download complete", "Verifying Checksum", "Extracting", "Pull complete") and layer:
            full = self.sizes.get(layer) or self.totals.get(layer)
            if full:
                self.layers[layer] = full

    @property
    def bytes(self) -> int:
        return sum(self.layers.values())


class PullFailed(Exception):
    pass


def split_pinned(image: str) -> tuple[str, str]:
    """`host/repo@sha256:…` → (`host/repo`, `sha256:…`)."""
    repo, _, digest = image.rpartition("@")
    if not repo or not digest.startswith("sha256:"):
        raise ValueError(f"image {image!r} is not digest-pinned")
    return repo, digest


class EngineAgent:
    def __init__(
        self, device_id: str, hub: DeviceSide, client: docker.DockerClient, module: str = "scoring",
        settle: float = 1.5, report_hz: float = 4.0, config: Config | None = None, link: str = "",
    ) -> None:
        self.config = config or Config()
        self.device_id = device_id
        self.hub = hub
        self.client = client
        self.module = module
        self.settle = settle
        self.min_interval = 1.0 / report_hz
        self.link = link  # the link this machine is on ("wifi", "cell"), reported for link-aware rollouts
        self.failed_image = ""  # the desired image that failed last (not retried ...
        self.failed_version = ""  # ... until it or the module's desired `version` changes: a rollout's retry)
        self.platform = engine_platform(client)
        self.report_state: ModuleReport = ModuleReport(module, platform=self.platform)
        self._last_report = 0.0
        self._unsent = False  # the last report did not reach the hub: send the next one whatever the rate

    # --- what runs now -----------------------------------------------------------------
    def current(self) -> Any | None:
        """The module's container, or None."""
        try:
            return self.client.containers.get(self.module)
        except docker.errors.NotFound:
            return None

    def running_image(self) -> str:
        c = self.current()
        return c.labels.get(LABEL_IMAGE, "") if c is not None and c.status == "running" else ""

    # --- reporting ---------------------------------------------------------------------
    def held_images(self, running: str) -> tuple[str, ...]:
        """Pinned refs of the other images this dockerd holds (RepoDigests), newest first."""
        try:
            images = self.client.images.list()
        except docker.errors.DockerException:
            return self.report_state.cached  # keep saying what it said
        images.sort(key=lambda i: i.attrs.get("Created", ""), reverse=True)
        refs = [d for i in images for d in i.attrs.get("RepoDigests") or [] if d != running]
        return tuple(dict.fromkeys(refs))[:MAX_CACHED]

    def _report(self, force: bool = False, **changes: Any) -> None:
        if force:
            changes["cached"] = self.held_images(changes.get("image", self.report_state.image))
        fields = {**self.report_state.__dict__, **changes, "updated": time.time(), "link": self.link}
        self.report_state = ModuleReport(**fields)
        now = time.monotonic()
        if force or self._unsent or now - self._last_report >= self.min_interval:
            self._last_report = now
            try:
                self.hub.report(self.device_id, {self.module: self.report_state})
                self._unsent = False
            except Exception as exc:  # noqa: BLE001 - a hub fault must not fail the update itself
                if not self._unsent:
                    log.warning("%s: report to the hub failed (%s); it is sent again with the next one",
                                self.device_id, exc)
                self._unsent = True  # the next _report (every step at least) sends the latest state

    # --- the loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Reconcile every `interval` until `stop`; each step reports (a heartbeat too). A
        failed step (hub unreachable) is retried with backoff up to 30 s, never fatal."""
        failing = 0
        while not stop.is_set():
            try:
                self.step()
                failing = 0
            except Exception as exc:  # noqa: BLE001
                failing += 1
                log.warning("%s: reconcile failed (%s); retrying", self.device_id, exc)
            stop.wait(interval if not failing else min(30.0, interval * 2 ** failing))

    def step(self) -> str:
        """Reconcile once; returns the module's reported state."""
        _, modules = self.hub.desired_for(self.device_id)
        spec: ModuleSpec | None = modules.get(self.module)
        running = self.running_image()
        failed_before = spec is not None and (spec.image, _version(spec)) == (self.failed_image, self.failed_version)
        if spec is None or spec.image == running or failed_before:
            if spec is None or spec.image == running:
                self._report(force=True, **self._running_fields(running))
            else:
                self._report(force=True)  # keep saying failed, and stay seen
            return self.report_state.state
        self.update(spec)
        return self.report_state.state

    def _running_fields(self, image: str) -> dict[str, Any]:
        if not image:
            return {"state": "pending", "image": "", "digest": "", "error": ""}
        return {"state": "running", "image": image, "digest": split_pinned(image)[1], "error": ""}

    def update(self, spec: ModuleSpec) -> None:
        old = self.current()
        old_image = self.running_image()
        keep = {"image": old_image, "digest": split_pinned(old_image)[1] if old_image else ""}
        self._report(force=True, state="downloading", bytes_downloaded=0, error="", **keep)
        try:
            repo, digest = split_pinned(spec.image)
            progress = PullProgress(sizes=self.layer_sizes(spec.image))
            for event in self.client.api.pull(repo, tag=digest, stream=True, decode=True):
                progress.feed(event)
                self._report(bytes_downloaded=progress.bytes)
            self._report(force=True, state="applying", bytes_downloaded=progress.bytes)
            self._start(spec, old)
        except (PullFailed, FleetError, docker.errors.DockerException, ValueError) as exc:
            self.failed_image, self.failed_version = spec.image, _version(spec)
            message = _one_line(getattr(exc, "explanation", None) or str(exc))
            self._report(force=True, state="failed", error=f"{spec.image}: {message}", **keep)
            return
        self.failed_image = ""
        self._report(force=True, **self._running_fields(spec.image))

    def layer_sizes(self, image: str) -> dict[str, int]:
        """Layer short id (12 hex, as dockerd names them) → compressed size."""
        ref = parse_reference(image)
        store = open_store(ref, self.config)
        raw = store.get_manifest(repo_of(ref), ref.reference)
        if mt.is_index(raw.media_type or raw.json().get("mediaType", "")) or "manifests" in raw.json():
            raw = store.get_manifest(repo_of(ref), pick_platform(parse_index(raw), self.platform).digest)
        return {d.digest.split(":", 1)[1][:12]: d.size for d in Manifest.parse(raw).layers}

    def _start(self, spec: ModuleSpec, old: Any | None) -> None:
        """Start the new container beside the old; swap names only once it stays up."""
        staging = f"{self.module}-next"
        try:
            self.client.containers.get(staging).remove(force=True)
        except docker.errors.NotFound:
            pass
        new = self.client.containers.run(
            spec.image, name=staging, detach=True, network_mode="none",
            labels={LABEL_MODULE: self.module, LABEL_IMAGE: spec.image},
        )
        time.sleep(self.settle)
        new.reload()
        if new.status != "running":
            code = new.attrs.get("State", {}).get("ExitCode")
            logs = new.logs(tail=3).decode(errors="replace").strip()
            new.remove(force=True)
            raise PullFailed(f"module exited on start (status {new.status}, exit code {code})" + (f": {logs}" if logs else ""))
        if old is not None:
            old.remove(force=True)
        new.rename(self.module)


# `docker info` architectures (uname -m style) → OCI platform architectures
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7", "armv6l": "arm/v6", "i686": "386",
                 "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def engine_platform(client: docker.DockerClient) -> str:
    """The engine's platform as `os/arch[/variant]` (what it pulls from a multi-platform image)."""
    try:
        info = client.info()
    except docker.errors.DockerException:
        return "linux/amd64"
    arch = str(info.get("Architecture") or "x86_64")
    return f"{str(info.get('OSType') or 'linux').lower()}/{ARCHITECTURES.get(arch, arch)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


def _version(spec: ModuleSpec) -> str:
    return str((spec.definition or {}).get("version", ""))
