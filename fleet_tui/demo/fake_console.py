"""A seeded, clock-driven `ConsoleData`: what `fleet-tui console --fake-data` shows (a first
look with no hub), and the data of the screenshots, snapshot tests and console benchmarks.

Deterministic: every value derives from the group sizes and the injected clock (frozen at
`T0` unless the caller gives one; `console --fake-data` runs it on a live clock), so two runs
draw the same screen. Its rollout is `FakeRollout` (fleet_tui.demo.fake_rollout): progress is
a pure function of rollout time. Actions change only this object. No Textual here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Callable, Sequence

from fleet_tui.demo.fake_rollout import FakeRollout
from fleet_tui.errors import NotFound, UsageError
from fleet_tui.hub.listing import MemoryListing
from fleet_tui.ui.paged_rows import Window
from fleet_tui.ui.state import (
    ROLLOUT_ACTIONS,
    Cohort,
    DeviceDetail,
    DeviceRow,
    DeviceStory,
    DiffView,
    DirRow,
    GroupRow,
    PlanLayer,
    Preview,
    ReportView,
    RolloutSnapshot,
    SafetyReport,
    Settings,
    TagRow,
    Variant,
    best_of,
)

if TYPE_CHECKING:
    from fleet_tui.hub.listing import ListQuery

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the frozen "now" of screenshots and tests
REPO = "127.0.0.1:5000/ml/scoring"
DEFAULT_GROUPS = {"canary-lab": 12, "vans-lte": 600, "trucks-sat": 250, "factory-wifi": 138}
LINKS = {"canary-lab": "wifi", "vans-lte": "lte", "trucks-sat": "sat-flaky", "factory-wifi": "wifi"}


def sha(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


BASE = PlanLayer(sha("base"), 29_130_000, False, "/bin/sh -c #(nop) ADD file:4f1e… in / ")
DEPS1 = PlanLayer(sha("deps-1"), 81_492_000, False, "RUN pip install -r requirements.txt")
APP1 = PlanLayer(sha("app-1"), 9_800, False, "COPY app /var/azureml-app")
DEPS2 = PlanLayer(sha("deps-2"), 81_492_100, True, "RUN pip install -r requirements.txt")
APP2 = PlanLayer(sha("app-2"), 6_900, True, "COPY app /var/azureml-app")
DELTA = PlanLayer(sha("rebase-2"), 2_600, True, "fleet-tui rebase --paths /var/azureml-app")
IMAGES = {  # tag → (layers, manifest bytes, config bytes, created)
    "1": ((BASE, DEPS1, APP1), 1_100, 4_400, T0 - 30 * 86400),
    "2": ((BASE, DEPS2, APP2), 1_100, 4_500, T0 - 2 * 3600),
    "2-rebased": ((BASE, DEPS1, APP1, DELTA), 1_300, 4_000, T0 - 3600),
}


class FakeConsoleData:
    def __init__(self, groups: dict[str, int] | None = None, clock: Callable[[], float] | None = None,
                 read_only: bool = False, with_rollout: bool = True, rebased: bool = False) -> None:
        self.clock: Callable[[], float] = clock or (lambda: T0)
        self.group_sizes = dict(DEFAULT_GROUPS if groups is None else groups)
        self._listing: MemoryListing | None = None  # device_window's filtered/sorted views
        self.read_only = read_only
        self.rebased_built = rebased
        self.rollouts: dict[str, FakeRollout] = {}
        self._devices: dict[str, tuple[DeviceRow, ...]] = {}
        if with_rollout and self.group_sizes:
            group = "vans-lte" if "vans-lte" in self.group_sizes else next(iter(self.group_sizes))
            self._add_rollout("r-0001", f"{REPO}:2", group, started=self.clock() - 150)
            self.rollouts["r-0001"].control("approve", self.clock() - 50)  # after the canary passed

    # --- reads ---------------------------------------------------------------------
    def settings(self) -> Settings:
        return Settings("local hub (fake)", "127.0.0.1:5000", "scoring", 720.0, "$", self.read_only)

    health = ""  # tests set what the hub would say

    def hub_health(self) -> str:
        return self.health

    def groups(self) -> Sequence[GroupRow]:
        rows = []
        for name, n in self.group_sizes.items():
            devs = self.devices(name)
            offline = sum(1 for d in devs if d.state == "offline")
            v2 = sum(1 for d in devs if d.digest == sha("image-2"))
            images = [("ml/scoring:1", sha("image-1"), n - v2)] + ([("ml/scoring:2", sha("image-2"), v2)] if v2 else [])
            active = [r for r in self.rollouts.values() if r.group == name and r.state(self.clock()) in ("running", "paused", "halted")]
            rows.append(GroupRow(name, n, n - offline, offline, tuple(images),
                                 active[0].id if active else "", active[0].state(self.clock()) if active else ""))
        return rows

    def devices(self, group: str) -> Sequence[DeviceRow]:
        if group not in self.group_sizes:
            raise NotFound(f"unknown group {group!r}")
        if group not in self._devices:
            n, now, link = self.group_sizes[group], self.clock(), LINKS.get(group, "lte")
            prefix = group.split("-")[0][:5]
            rows = []
            for i in range(n):
                h = (i * 2654435761) % 1000
                v2 = h >= 970
                state = "offline" if h % 97 == 3 else ("failed" if h % 211 == 5 else "running")
                rows.append(DeviceRow(f"{prefix}-{i:05d}", group, "ml/scoring:2" if v2 else "ml/scoring:1",
                                      sha("image-2" if v2 else "image-1"), state,
                                      now - (h * 7 % 600) - (86400 if state == "offline" else 0), link))
            self._devices[group] = tuple(rows)
        return self._devices[group]

    def device_window(self, group: str, query: "ListQuery", offset: int, limit: int, counts: bool = False) -> Window:
        from dataclasses import replace


        rows = self.devices(group)
        if self._listing is None:
            self._listing = MemoryListing(lambda g: self.devices(g), ttl=float("inf"))
        needle = query.needle.strip().lower()
        digests = tuple({r.digest for r in rows if needle and needle in r.image.lower()})
        q = replace(query, condition=group, digests=digests)
        unfiltered = len(rows) if needle and counts else None
        by_state = self._listing.state_counts(q) if counts else None
        return Window(0, query, self._listing.total(q), offset, self._listing.window(q, offset, limit), by_state,
                      unfiltered)

    def device(self, device_id: str) -> DeviceDetail:
        for group in self.group_sizes:
            for row in self.devices(group):
                if row.id == device_id:
                    layers, *_ = IMAGES["2" if row.digest == sha("image-2") else "1"]
                    now = self.clock()
                    return DeviceDetail(
                        row, ((f"{REPO}:{row.image.rsplit(':', 1)[1]}", row.digest),),
                        tuple((l.digest, l.size) for l in layers),
                        {"profile": row.link, "bandwidth": "2 Mbit/s", "latency": "120 ms",
                         "loss": "3%" if "flaky" in row.link else "0%", "price": "$720/GB"},
                        ((now - 3600, "deployment fleet-1 applied"), (now - 60, f"reported {row.state}")),
                    )
        raise NotFound(f"unknown device {device_id!r}")

    def tags(self) -> Sequence[TagRow]:
        rows = [TagRow(REPO, tag, sha(f"image-{tag}"), sum(l.size for l in layers), created, len(layers))
                for tag, (layers, _m, _c, created) in IMAGES.items() if tag != "2-rebased" or self.rebased_built]
        rows.append(TagRow("127.0.0.1:5000/base/python", "3.11-slim", sha("image-base"), BASE.size, T0 - 90 * 86400, 1))
        return rows

    def _cohorts(self, tag: str, group: str) -> tuple[Cohort, ...]:
        layers, manifest, config, _ = IMAGES[tag]
        devs = self.devices(group)
        out = []
        for current, digest, have in (("ml/scoring:1", sha("image-1"), IMAGES["1"][0]), ("ml/scoring:2", sha("image-2"), IMAGES["2"][0])):
            ids = [d.id for d in devs if d.digest == digest]
            if not ids:
                continue
            held = {l.digest for l in have}
            planned = tuple(PlanLayer(l.digest, l.size, l.digest not in held, l.created_by) for l in layers)
            same = digest == sha(f"image-{tag}")
            nbytes = 0 if same else sum(l.size for l in planned if l.needed) + manifest + config
            out.append(Cohort(current, digest, len(ids), planned, nbytes, tuple(ids[:5])))
        return tuple(out)

    def preview(self, target: str, group: str) -> Preview:
        tag = target.rsplit(":", 1)[-1]
        if tag not in IMAGES:
            raise NotFound(f"unknown target {target!r}")
        naive = Variant("naive", target, self._cohorts(tag, group))
        rebased = None
        if tag == "2" and self.rebased_built:
            rebased = best_of(naive, Variant("rebased", f"{REPO}:2-rebased", self._cohorts("2-rebased", group)))
        return Preview(target, group, naive, rebased, 720.0, "$")

    def safety_report(self, target: str, group: str) -> SafetyReport:
        return SafetyReport(target, f"{REPO}:1", ("/var/azureml-app",), (), DELTA.size, 3, True,
                            ("dependency layer unchanged apart from timestamps", "verify: merged filesystems equal"))

    def what_changed(self, a: str, b: str) -> DiffView:
        site = "usr/lib/python3.11/site-packages"
        dirs = (
            DirRow(f"{site}/sklearn", 12, 3, 241, 10_412_880,
                   ((f"/{site}/sklearn/tree/_tree.cpython-311-x86_64-linux-gnu.so", "content", 1_904_211),
                    (f"/{site}/sklearn/utils/_seq_dataset.cpython-311-x86_64-linux-gnu.so", "content", 633_410),
                    (f"/{site}/sklearn/_loss/_loss.cpython-311-x86_64-linux-gnu.so", "added", 512_007))),
            DirRow(f"{site}/scikit_learn-1.4.0.dist-info", 7, 0, 0, 31_406,
                   ((f"/{site}/scikit_learn-1.4.0.dist-info/RECORD", "added", 28_890),)),
            DirRow("var/azureml-app/azureml-models", 0, 0, 1, 2_012_044,
                   (("/var/azureml-app/azureml-models/model.pkl", "content", 2_012_044),)),
            DirRow(f"{site}/scikit_learn-1.3.2.dist-info", 0, 7, 0, 0),
        )
        return DiffView(a, b, (("scikit-learn", "1.3.2", "1.4.0"), ("threadpoolctl", "-", "3.2.0")), dirs)

    def rollout(self, rollout_id: str) -> RolloutSnapshot:
        if rollout_id not in self.rollouts:
            raise NotFound(f"unknown rollout {rollout_id!r}")
        return self.rollouts[rollout_id].snapshot(self.clock())

    # --- actions -------------------------------------------------------------------
    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise UsageError(f"{what} changes the fleet; the console is read-only")

    def build_rebased(self, target: str, group: str) -> str:
        self._check_writable("rebase")
        self.rebased_built = True
        return f"{REPO}@{sha('image-2-rebased')}"

    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        self._check_writable("rollout")
        rid = f"r-{len(self.rollouts) + 1:04d}"
        self._add_rollout(rid, target, group, started=self.clock())
        return rid

    def rollout_device(self, rollout_id: str, device_id: str) -> DeviceStory:
        s = self.rollout(rollout_id)
        d = next((d for d in s.devices if d.id == device_id), None)
        if d is None:
            raise NotFound(f"device {device_id!r} is not part of rollout {rollout_id}")
        facts = (("wave", str(d.wave + 1)), ("state now", d.state), ("bytes", f"{d.bytes:,} of {d.total:,} B"))
        facts += (("error", d.reason),) if d.reason and d.reason != "offline" else ()
        return DeviceStory(device_id, facts, tuple((t, x) for t, x in s.events if f"wave {d.wave + 1}" in x))

    def rollout_report(self, rollout_id: str) -> ReportView:
        s = self.rollout(rollout_id)
        start = min((t for t, _ in s.events), default=s.taken)
        by_wave: dict[int, int] = {}
        for d in s.devices:
            by_wave[d.wave] = by_wave.get(d.wave, 0) + d.bytes
        timeline, total = [(0.0, 0)], 0
        for w in s.waves:  # a point as each started wave's bytes land (the seeded data has no finer clock)
            if w.state != "pending":
                total += by_wave.get(w.index, 0)
                timeline.append(((s.taken - start) * (w.index + 1) / len(s.waves), total))
        timeline.append((s.taken - start, s.bytes_total))  # now: everything moved so far
        states = ", ".join(f"{s.count(st):,} {st}" for st in sorted({d.state for d in s.devices}))
        facts = (("devices", f"{len(s.devices):,} ({states})"),
                 ("bytes moved", f"{s.bytes_total:,} of {s.bytes_planned:,} planned"),
                 ("cost", f"${s.cost:,.2f} at $720/GB"), ("duration", f"{s.taken - start:,.0f} s"))
        waves = tuple((str(w.index + 1), f"{w.size:,}", w.state, "", "", w.gate) for w in s.waves)
        problems = tuple((d.id, str(d.wave + 1), d.state) for d in s.devices if d.state not in ("running", "untouched"))
        return ReportView(rollout_id, f"{rollout_id}: {s.target_name or s.target} → {s.group} — {s.state}", facts,
                          waves, tuple(timeline), problems)

    def save_report(self, rollout_id: str) -> str:
        return f"/tmp/fleet-tui-fake/reports/{rollout_id}.md"

    def control_rollout(self, rollout_id: str, action: str) -> str:
        self._check_writable(action)
        if action not in ROLLOUT_ACTIONS:
            raise UsageError(f"unknown rollout action {action!r}")
        self.rollouts[rollout_id].control(action, self.clock())
        return f"{action} sent to {rollout_id}"

    def _add_rollout(self, rid: str, target: str, group: str, started: float) -> None:
        tag = target.rsplit(":", 1)[-1] if ":" in target.rsplit("/", 1)[-1] else "2"
        cohorts = {c.digest: c.bytes for c in self._cohorts(tag if tag in IMAGES else "2", group)}
        ids = [(d.id, cohorts.get(d.digest, 0), d.state == "offline") for d in self.devices(group)]
        self.rollouts[rid] = FakeRollout(rid, group, target, ids, started, LINKS.get(group, "lte"), 720.0,
                                           previous=f"{REPO}:1")

    def close(self) -> None:
        pass
