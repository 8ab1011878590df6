"""Groups, device lists and one device's detail, as the Fleet, Devices and Device screens
show them, read from the configured hub.

Device lists are a screenful at a time: the hub's own listing (SQL on the local hub) or, for a
hub that can neither sort nor filter server-side (Azure), whole groups loaded at most every
30 s. A device's image is named by the tag it was seen under (`ImageNames`), else its reference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from fleet_tui.errors import FleetError
from fleet_tui.hub.listing import ListQuery, MemoryListing, listed
from fleet_tui.hub.protocol import DeviceTwin
from fleet_tui.oci.image import load_image
from fleet_tui.ui.formatting import short_ref
from fleet_tui.ui.paged_rows import Window
from fleet_tui.ui.state import DeviceDetail, DeviceRow, GroupRow

if TYPE_CHECKING:
    from fleet_tui.ui.live_data import LiveConsoleData

ACTIVE = ("pending", "running", "paused", "halted")


class FleetReads:
    def __init__(self, live: "LiveConsoleData") -> None:
        self.live = live
        self._listing: Any = None

    def _active_rollouts(self) -> dict[str, tuple[str, str]]:
        try:
            rows = self.live.journal.list_rollouts()
        except FleetError:
            return {}
        return {r.spec.get("group", ""): (r.id, r.state) for r in reversed(rows) if r.state in ACTIVE}

    def groups(self) -> Sequence[GroupRow]:
        names = self.live.names
        names.refresh()
        active = self._active_rollouts()
        rows = []
        for g in self.live.hub.group_summaries(self.live.module):
            images = tuple((names.get(d), d, n) for d, n in sorted(g.images.items(), key=lambda kv: -kv[1]))
            rid, state = active.get(g.name, ("", ""))
            rows.append(GroupRow(g.name, g.devices, g.online, g.offline, images, rid, state))
        return rows

    def row(self, t: DeviceTwin) -> DeviceRow:
        module = self.live.module
        report = t.reported.get(module)
        digest = t.digest(module)
        image = self.live.names.get(digest) or (short_ref(report.image) if report and report.image else "-")
        return DeviceRow(t.device_id, t.group(self.live.group_tag), image, digest, t.state(module), t.last_seen,
                         t.link_name(module) or str(t.tags.get("link", "")))

    def devices(self, group: str) -> Sequence[DeviceRow]:
        self.live.names.refresh()
        return tuple(self.row(t) for t in self.live.hub.iter_devices(self.live.condition(group)))

    def listing(self) -> Any:
        with self.live.lock:
            if self._listing is None:
                hub, live = self.live.hub, self.live
                if hasattr(hub, "listing"):
                    # its own connection: a screenful never waits behind the Fleet screen's GROUP BY
                    self._listing = type(hub).from_config(live.config).listing()
                else:
                    self._listing = MemoryListing(
                        lambda cond: (listed(t, live.module, live.group_tag) for t in hub.iter_devices(cond)), ttl=30.0)
            return self._listing

    def device_window(self, group: str, query: ListQuery, offset: int, limit: int, counts: bool = False) -> Window:
        names = self.live.names
        names.refresh()
        q = replace(query, condition=self.live.condition(group),
                    digests=names.matching(query.needle) if query.needle else ())
        listing = self.listing()
        rows = [DeviceRow(d.id, d.group, names.get(d.digest) or (short_ref(d.image) if d.image else "-"),
                          d.digest, d.state, d.last_seen, d.link) for d in listing.window(q, offset, limit)]
        total = listing.total(q)
        unfiltered = listing.total(replace(q, needle="", digests=())) if q.needle and counts else None
        by_state = listing.state_counts(q) if counts else None
        return Window(0, query, total, offset, rows, by_state, unfiltered)

    def device(self, device_id: str) -> DeviceDetail:
        module = self.live.module
        t = self.live.hub.get_device(device_id)
        images = tuple((m.image, m.digest) for m in t.reported.values() if m.image)
        images += tuple((ref, ref.rpartition("@")[2]) for ref in t.cached(module))  # held, not running
        layers: tuple[tuple[str, int], ...] = ()
        report = t.reported.get(module)
        if report and report.image:
            try:
                layers = tuple((l.digest, l.size) for l in load_image(report.image, self.live.config).layers)
            except FleetError:
                pass
        events = tuple((m.updated, f"{m.name}: {m.state}" + (f" — {m.error}" if m.error else ""))
                       for m in t.reported.values() if m.updated)
        return DeviceDetail(self.row(t), images, layers, self.link(t), events)

    def link(self, twin: DeviceTwin) -> dict[str, str]:
        """What the device says about its link and platform, with the `[sim.links]` profile of
        that name when there is one (bandwidth, latency, outages) and the price per GB."""
        config = self.live.config
        name = twin.link_name(self.live.module)
        out = {"link": name or "not reported", "platform": twin.platform(self.live.module)}
        profile = ((config.sim.links if config.sim is not None else {}) or {}).get(name)
        if profile is not None:
            out["bandwidth"] = f"{profile.bandwidth_kbps:g} kbit/s"
            out["latency"] = f"{profile.latency_ms:g} ms"
            out["outages"] = f"{profile.offline_per_hour:g}/h, ~{profile.offline_seconds:g}s"
        c = config.cost
        out["price"] = f"{c.currency}{c.per_gb:g}/GB"
        return out

    def close(self) -> None:
        if self._listing is not None and getattr(self._listing, "hub", None) is not None:
            self._listing.hub.close()
        self._listing = None
