"""A minimal in-test device fleet on the local hub's DeviceSide batch API (one thread).

Stands in for fleet_tui.devices.simulated where a test needs exact control: each device
holds a set of blobs; when its desired image changes it reports `downloading` with bytes
growing at `rate` bytes/s up to what its pull plan says (unseen layers + config +
manifest), then `applying`, then `running` on the new digest — or `failed` (keeping the
old image) when its id is in `fail` and the image is in `fail_images`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.oci.image import Image
from fleet_tui.planning.pullplan import plan_for_blobs


@dataclass
class Device:
    id: str
    image: str  # pinned ref it runs
    blobs: set[str]
    configs: set[str]
    state: str = "running"
    target: str = ""
    need: int = 0
    got: float = 0.0
    applying_until: float = 0.0
    failed_image: str = ""
    dirty: bool = True


@dataclass
class TinyFleet:
    hub_path: str
    module: str
    images: dict[str, Image]  # pinned ref → image
    rate: float = 5_000_000.0
    apply_s: float = 0.05
    tick: float = 0.05
    fail: set[str] = field(default_factory=set)
    fail_images: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)  # devices on a slow link
    slow_rate: float = 60_000.0
    devices: dict[str, Device] = field(default_factory=dict)

    def add(self, device_id: str, image: str) -> None:
        img = self.images[image]
        self.devices[device_id] = Device(device_id, image, {l.digest for l in img.layers}, {img.config_digest})

    def start(self) -> "TinyFleet":
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        hub = LocalHub(self.hub_path, module=self.module)
        last_beat = 0.0
        try:
            while not self._stop.is_set():
                now = time.time()
                desired = hub.desired_for_many(list(self.devices))
                for device_id, (_, modules) in desired.items():
                    spec = modules.get(self.module)
                    if spec is not None:
                        self._advance(self.devices[device_id], spec.image, now)
                beat = now - last_beat > 5
                reports = [(d.id, {self.module: self._report(d)}, True) for d in self.devices.values() if d.dirty or beat]
                if reports:
                    hub.report_many(reports)
                    last_beat = now if beat else last_beat
                for d in self.devices.values():
                    d.dirty = False
                self._stop.wait(self.tick)
        finally:
            hub.close()

    def _advance(self, d: Device, want: str, now: float) -> None:
        if d.state in ("downloading", "applying") and want != d.target:
            d.state = "running"  # desired changed mid-update: start over from what runs
        if d.state in ("running", "failed") and want not in (d.image, d.failed_image):
            img = self.images[want]
            d.target, d.state, d.got, d.dirty = want, "downloading", 0.0, True
            d.need = plan_for_blobs(img, d.blobs, d.configs, by_tag=False).total_bytes
            return
        if d.state == "failed" and want == d.image:
            d.state, d.failed_image, d.dirty = "running", "", True  # rolled back to what it runs
            return
        if d.state == "downloading":
            rate = self.slow_rate if d.id in self.slow else self.rate
            d.got = min(d.need, d.got + rate * self.tick)
            d.dirty = True
            if d.got >= d.need:
                d.state, d.applying_until = "applying", now + self.apply_s
        elif d.state == "applying" and now >= d.applying_until:
            d.dirty = True
            if d.id in self.fail and d.target in self.fail_images:
                d.state, d.failed_image = "failed", d.target
                return
            img = self.images[d.target]
            d.blobs |= {l.digest for l in img.layers}
            d.configs.add(img.config_digest)
            d.image, d.state = d.target, "running"

    def _report(self, d: Device) -> ModuleReport:
        digest = d.image.rsplit("@", 1)[1]
        return ModuleReport(self.module, d.image, digest, d.state, int(d.got), "", time.time())
