"""`ConsoleData` over the real parts: the configured hub (local or Azure), the registry and
embedded store, the rebaser (fleet_tui.rebase) and the rollout journal/engine
(fleet_tui.rollout). No Textual here; every method may block and is called from sampler
threads or workers.

Conventions it relies on: a rebased image of TAG is tagged `TAG-rebased` in the target's
repository (what the Preview's `b` pushes and what it looks for); a rollout started from
the console runs detached (it survives the console). Rollout and rebase are imported when
first used, so a build without them still shows fleet, devices, images and previews.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any, Sequence

from fleet_tui.errors import FleetError, UsageError
from fleet_tui.fleet.groupplan import plan_group
from fleet_tui.hub import open_hub
from fleet_tui.hub.listing import MemoryListing, listed
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.oci.image import load_image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.planning.lineage import rebase_stats
from fleet_tui.rebase import prepare_rebase
from fleet_tui.rebase.whatchanged import what_changed
from fleet_tui.rollout.audit import record
from fleet_tui.rollout.control import send_command, start_detached
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.inventory import inventory
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.policy import Policy, metered_devices
from fleet_tui.rollout.projection import project_waves
from fleet_tui.rollout.report import build_report
from fleet_tui.rollout.snapshot import SnapshotReader
from fleet_tui.rollout.story import device_story
from fleet_tui.ui.formatting import money, short_ref
from fleet_tui.ui.image_names import ImageNames
from fleet_tui.ui.paged_rows import Window
from fleet_tui.ui.state import (
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
    RolloutDevice,
    RolloutSnapshot,
    SafetyReport,
    Settings,
    TagRow,
    Variant,
    Wave,
    best_of,
)

TAGS_PER_REPO = 30
ACTIVE = ("pending", "running", "paused", "halted")


def _created(doc: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(doc.get("created", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class LiveConsoleData:
    def __init__(self, config: Any, read_only: bool = False) -> None:
        self.config, self.read_only = config, read_only
        self.module, self.group_tag = config.hub.module, config.hub.group_tag
        self._lock = threading.RLock()
        self._hub: Any = None
        self._journal: Any = None
        self.names = ImageNames(self._repositories, config)  # manifest digest → short repo:tag
        self._readers: dict[str, Any] = {}
        self._plan: Any = None  # a prepared rebase awaiting the operator's yes
        self._device_listing: Any = None
        self._bytes_of: dict[str, dict[str, int]] = {}  # variant label → device → planned bytes (last preview)
        self.clock = time.time

    # --- plumbing ----------------------------------------------------------------------
    @property
    def hub(self) -> Any:
        with self._lock:
            if self._hub is None:

                self._hub = open_hub(self.config)
            return self._hub

    @property
    def journal(self) -> Any:
        with self._lock:
            if self._journal is None:

                self._journal = Journal.for_config(self.config)
            return self._journal

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise UsageError(f"{what} changes the fleet; the console is read-only")

    def settings(self) -> Settings:
        hub = "Azure IoT Hub" if self.config.hub.kind == "azure" else f"local hub {self.config.hub_path()}"
        c = self.config.cost
        return Settings(hub, self.config.registry.default, self.module, c.per_gb, c.currency, self.read_only)

    def hub_health(self) -> str:
        caller = getattr(self._hub, "caller", None)  # Azure: HubCaller counts 429s; never opens the hub
        return caller.health() if caller is not None else ""

    # --- fleet -------------------------------------------------------------------------
    def _active_rollouts(self) -> dict[str, tuple[str, str]]:
        try:
            rows = self.journal.list_rollouts()
        except (ImportError, FleetError):
            return {}
        return {r.spec.get("group", ""): (r.id, r.state) for r in reversed(rows) if r.state in ACTIVE}

    def groups(self) -> Sequence[GroupRow]:
        self.names.refresh()
        active = self._active_rollouts()
        rows = []
        for g in self.hub.group_summaries(self.module):
            images = tuple((self.names.get(d), d, n) for d, n in sorted(g.images.items(), key=lambda kv: -kv[1]))
            rid, state = active.get(g.name, ("", ""))
            rows.append(GroupRow(g.name, g.devices, g.online, g.offline, images, rid, state))
        return rows

    def _condition(self, group: str) -> str:
        return group_condition(self.group_tag, group)

    def _row(self, t: Any) -> DeviceRow:
        report = t.reported.get(self.module)
        digest = t.digest(self.module)
        image = self.names.get(digest) or (short_ref(report.image) if report and report.image else "-")
        return DeviceRow(t.device_id, t.group(self.group_tag), image, digest, t.state(self.module), t.last_seen,
                         t.link_name(self.module) or str(t.tags.get("link", "")))

    def devices(self, group: str) -> Sequence[DeviceRow]:
        self.names.refresh()
        return tuple(self._row(t) for t in self.hub.iter_devices(self._condition(group)))

    def _listing(self) -> Any:
        """The hub's own listing (SQL on the local hub) or, for a hub that can neither sort nor
        filter server-side (Azure), whole groups loaded at most every 30 s."""
        with self._lock:
            if self._device_listing is None:
                hub = self.hub
                if hasattr(hub, "listing"):
                    # its own connection: a screenful never waits behind the Fleet screen's GROUP BY
                    self._device_listing = type(hub).from_config(self.config).listing()
                else:

                    self._device_listing = MemoryListing(
                        lambda cond: (listed(t, self.module, self.group_tag) for t in hub.iter_devices(cond)), ttl=30.0)
            return self._device_listing

    def device_window(self, group: str, query: Any, offset: int, limit: int, counts: bool = False) -> Any:
        from dataclasses import replace


        self.names.refresh()
        q = replace(query, condition=self._condition(group),
                    digests=self.names.matching(query.needle) if query.needle else ())
        listing = self._listing()
        rows = [DeviceRow(d.id, d.group, self.names.get(d.digest) or (short_ref(d.image) if d.image else "-"),
                          d.digest, d.state, d.last_seen, d.link) for d in listing.window(q, offset, limit)]
        total = listing.total(q)
        unfiltered = listing.total(replace(q, needle="", digests=())) if q.needle and counts else None
        by_state = listing.state_counts(q) if counts else None
        return Window(0, query, total, offset, rows, by_state, unfiltered)

    def device(self, device_id: str) -> DeviceDetail:
        t = self.hub.get_device(device_id)
        images = tuple((m.image, m.digest) for m in t.reported.values() if m.image)
        images += tuple((ref, ref.rpartition("@")[2]) for ref in t.cached(self.module))  # held, not running
        layers: tuple[tuple[str, int], ...] = ()
        report = t.reported.get(self.module)
        if report and report.image:
            try:
                layers = tuple((l.digest, l.size) for l in load_image(report.image, self.config).layers)
            except FleetError:
                pass
        link = self._link(t)
        events = tuple((m.updated, f"{m.name}: {m.state}" + (f" — {m.error}" if m.error else ""))
                       for m in t.reported.values() if m.updated)
        return DeviceDetail(self._row(t), images, layers, link, events)

    def _link(self, twin: Any) -> dict[str, str]:
        """What the device says about its link and platform, with the `[sim.links]` profile of
        that name when there is one (bandwidth, latency, outages) and the price per GB."""
        name = twin.link_name(self.module)
        out = {"link": name or "not reported", "platform": twin.platform(self.module)}
        profile = ((self.config.sim.links if self.config.sim is not None else {}) or {}).get(name)
        if profile is not None:
            out["bandwidth"] = f"{profile.bandwidth_kbps:g} kbit/s"
            out["latency"] = f"{profile.latency_ms:g} ms"
            out["outages"] = f"{profile.offline_per_hour:g}/h, ~{profile.offline_seconds:g}s"
        c = self.config.cost
        out["price"] = f"{c.currency}{c.per_gb:g}/GB"
        return out

    # --- images ------------------------------------------------------------------------
    def _repositories(self) -> list[str]:
        reg = self.config.registry
        if reg.repositories:
            return list(reg.repositories)
        if not reg.default:
            return []

        client = RegistryClient(reg.default, self.config)
        try:
            return [f"{reg.default}/{name}" for name in client.list_repositories()]
        finally:
            client.close()

    def tags(self) -> Sequence[TagRow]:
        rows = []
        for repo in self._repositories():
            ref = parse_reference(repo, default_tag=None)
            for tag in open_store(ref, self.config).list_tags(repo_of(ref))[-TAGS_PER_REPO:]:
                img = load_image(f"{repo}:{tag}", self.config)
                self.names.remember(img.digest, f"{repo}:{tag}")
                dead = rebase_stats(img)[2]
                rows.append(TagRow(repo, tag, img.digest, img.layer_bytes, _created(img.config.doc), len(img.layers), dead))
        return rows

    # --- preview and rebase ----------------------------------------------------------------
    def _variant(self, label: str, target: Any, twins: Sequence[Any]) -> Variant:

        held, keeps = inventory(self.config, self.hub, list(twins), self.journal)
        plan = plan_group(target, twins, self.module, self.config, held, keeps)
        self._bytes_of[label] = {d: c.bytes_per_device for c in plan.cohorts for d in c.device_ids}
        cohorts = tuple(
            Cohort(self.names.get(c.digest, c.digest[:19] or "unknown"), c.digest, len(c.device_ids),
                   tuple(PlanLayer(l.digest, l.size, l.needed, l.created_by) for l in c.plan.layers),
                   c.bytes_per_device, c.device_ids[:5], c.rollback_per_device if c.known else -1)
            for c in plan.cohorts
        )
        return Variant(label, target.pinned, cohorts)

    def _rebased_ref(self, target: str) -> str:
        return f"{target}-rebased" if "@" not in target else target

    def preview(self, target: str, group: str) -> Preview:
        self.names.refresh()
        image = load_image(target, self.config)
        twins = list(self.hub.iter_devices(self._condition(group)))  # one query for both variants
        naive = self._variant("naive", image, twins)
        try:
            rebased = best_of(naive, self._variant("rebased", load_image(self._rebased_ref(target), self.config), twins))
        except FleetError:
            rebased = None
        c = self.config.cost
        return Preview(target, group, naive, rebased, c.per_gb, c.currency,
                       self._budget_line(twins, "rebased" if rebased is not None and rebased.label == "rebased" else "naive"))

    def _budget_line(self, twins: Sequence[Any], label: str) -> str:
        """The rollout's waves priced against `[rollout] budget` ("" without a budget)."""
        policy = Policy.from_config(self.config.rollout)
        c = self.config.cost
        budget = policy.budget_bytes(c.per_gb, c.currency)
        if budget is None:
            return ""
        waves = project_waves(policy, [t.device_id for t in twins], {t.device_id for t in twins if not t.connected},
                              self._bytes_of.get(label, {}), budget, metered_devices(policy, twins, self.module))
        fit = sum(1 for w in waves if w.within_budget)
        total = waves[-1].cumulative if waves else 0
        verdict = ("every wave fits" if fit == len(waves) else
                   f"waves 1-{fit} fit, the rollout halts before wave {fit + 1}" if fit else "no wave fits: it halts at once")
        return (f"{label} by wave {', '.join(money(w.bytes, c.per_gb, c.currency) for w in waves)} = "
                f"{money(total, c.per_gb, c.currency)} against the {policy.budget} budget: {verdict}")

    def safety_report(self, target: str, group: str) -> SafetyReport:
        twins = self.hub.iter_devices(self._condition(group))
        top = Counter((t.reported[self.module].image, t.digest(self.module)) for t in twins
                      if self.module in t.reported and t.digest(self.module))
        if not top:
            raise FleetError(f"no device of {group!r} reports what it runs: nothing to rebase onto")
        (image, digest), _n = top.most_common(1)[0]
        onto = image if "@" in image else f"{image.rsplit(':', 1)[0]}@{digest}"
        if self._plan is not None:
            self._plan.close()
        tag = self._rebased_ref(target).rsplit(":", 1)[-1]
        self._plan = plan = prepare_rebase(target, onto, tag, self.config, auto=True)
        report = plan.report
        return SafetyReport(target, onto, tuple(plan.paths), tuple(c.path for c in report.outside),
                            plan.layer.size, len(plan.old.layers), plan.refused is None,
                            tuple(report.warnings) + ((plan.refused,) if plan.refused else ())
                            + (f"saving {plan.saving:.0%} for devices that run it",)
                            + ((plan.seam.summary(len(plan.onto.layers)),) if plan.seam and plan.onto else ()))

    def what_changed(self, a: str, b: str) -> DiffView:
        w = what_changed(a, b, self.config)
        return DiffView(w.a, w.b, tuple((d.name, d.before or "-", d.after or "-") for d in w.distributions),
                        tuple(DirRow(d.directory, d.added, d.removed, d.changed, d.bytes,
                                     tuple(sorted(((f["path"], f["change"], f["bytes"]) for f in d.files),
                                                  key=lambda f: -f[2])))
                              for d in w.directories))

    def build_rebased(self, target: str, group: str) -> str:
        self._writable("rebase")
        if self._plan is None:
            self.safety_report(target, group)
        plan, self._plan = self._plan, None
        try:
            result = plan.push()
        finally:
            plan.close()
        if result.refused:
            raise FleetError(result.refused)
        self.names.invalidate()  # a new tag: list again on the next sample
        if result.pushed:

            record(self.journal, "build", str(result.ref), {"new": target, "group": group, "mode": result.mode,
                                                            "bytes_for_old_holders": result.bytes_for_old_holders})
        return str(result.ref)

    # --- rollouts ------------------------------------------------------------------------
    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        self._writable("rollout start")

        # With rebase, the engine rebases TARGET onto each image the group runs (deterministic:
        # the same digest the Preview built), and devices on any other image get TARGET whole.
        rid = create_rollout(self.config, self.hub, self.journal, target, group, Policy.from_config(self.config.rollout),
                             auto_rebase=rebase)
        start_detached(self.config, self.journal, rid)
        return rid

    def rollout(self, rollout_id: str) -> RolloutSnapshot:
        reader = self._readers.get(rollout_id)
        if reader is None:
            reader = self._readers[rollout_id] = SnapshotReader(self.journal, self.hub, rollout_id, self.config.cost.per_gb)
        s = reader.take()
        self.names.refresh()
        return RolloutSnapshot(
            s.id, s.group, s.target, s.state,
            tuple(Wave(w.index, w.size, w.state, w.result or w.gate, w.done, w.failed, w.needed, w.deadline)
                  for w in s.waves),
            tuple(RolloutDevice(d.id, d.wave, d.state, d.bytes, d.total, d.reason) for d in s.devices),
            s.bytes_total, s.bytes_planned, s.throughput, s.eta_seconds, s.cost, s.events, s.taken, s.awaiting_approval,
            self.names.get(s.target.rpartition("@")[2]) if "@" in s.target else short_ref(s.target),
            s.approvable, s.bytes_source, s.budget_bytes, s.budget_text, s.pacing,
        )

    def rollout_device(self, rollout_id: str, device_id: str) -> DeviceStory:
        story = device_story(self.journal, self.hub, rollout_id, device_id)
        return DeviceStory(story.device_id, story.facts, story.lines)

    def _report(self, rollout_id: str) -> Any:
        c = self.config.cost
        snapshot = SnapshotReader(self.journal, self.hub, rollout_id, c.per_gb).take()
        return build_report(self.journal, snapshot, c.per_gb, c.currency)

    def rollout_report(self, rollout_id: str) -> ReportView:
        r = self._report(rollout_id)
        s = r.snapshot
        problems = tuple((d.id, str(d.wave + 1), d.state) for d in s.devices if d.state != "running")
        return ReportView(rollout_id, f"{rollout_id}: {short_ref(s.target)} → {s.group} — {s.state}",
                          tuple(r.facts()), tuple(r.wave_rows()), tuple(r.timeline()), problems)

    def save_report(self, rollout_id: str) -> str:
        import os

        text = self._report(rollout_id).to_markdown()
        path = self.config.state_path() / "reports" / f"{rollout_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # a reader never sees half a report
        return str(path)

    def control_rollout(self, rollout_id: str, action: str) -> str:
        self._writable(action)

        return send_command(self.config, self.journal, self.hub, rollout_id, action)

    def close(self) -> None:
        with self._lock:
            if self._plan is not None:
                self._plan.close()
            for part in (self._hub, self._journal, getattr(self._device_listing, "hub", None)):
                if part is not None:
                    part.close()
            self._hub = self._journal = self._device_listing = None
