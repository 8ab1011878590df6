"""The Preview screen's data and its `b`: a group's plan for TARGET beside the rebased image
(`TAG-rebased` in TARGET's repository, when built), the waves against the budget, the
safety report of the rebase, and the push once the operator said yes.

Planning is the CLI's (fleet_tui.services.preview); this part only turns its plans into the
screen's rows. A prepared rebase is held between the safety report and the push, so what the
operator read is exactly what is pushed.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fleet_tui.errors import FleetError
from fleet_tui.fleet.groupplan import GroupPlan
from fleet_tui.rebase import prepare_rebase
from fleet_tui.rollout.audit import record
from fleet_tui.services.preview import GroupPreview, preview_group
from fleet_tui.ui.formatting import money, size
from fleet_tui.ui.state import Cohort, PlanLayer, Preview, SafetyReport, Variant, best_of
from fleet_tui.units import plural

if TYPE_CHECKING:
    from fleet_tui.ui.live_data import LiveConsoleData


def rebased_ref(target: str) -> str:
    """Where the console's rebase of TARGET lives: `TAG-rebased` beside it (a digest stays itself)."""
    return f"{target}-rebased" if "@" not in target else target


class PreviewActions:
    def __init__(self, live: "LiveConsoleData") -> None:
        self.live = live
        self._plan: Any = None  # a prepared rebase awaiting the operator's yes

    def _variant(self, label: str, plan: GroupPlan) -> Variant:
        names = self.live.names
        cohorts = tuple(
            Cohort(names.get(c.digest, c.digest[:19] or "unknown"), c.digest, len(c.device_ids),
                   tuple(PlanLayer(l.digest, l.size, l.needed, l.created_by) for l in c.plan.layers),
                   c.bytes_per_device, c.device_ids[:5], c.rollback_per_device if c.known else -1)
            for c in plan.cohorts
        )
        return Variant(label, plan.pinned, cohorts)

    def preview(self, target: str, group: str) -> Preview:
        live = self.live
        live.names.refresh()
        p = preview_group(live.config, live.hub, group, target, rebased_ref(target), journal=live.journal,
                          compare_optional=True)
        naive = self._variant("naive", p.plan)
        rebased = best_of(naive, self._variant("rebased", p.compare)) if p.compare is not None else None
        c = live.config.cost
        return Preview(target, group, naive, rebased, c.per_gb, c.currency, self._budget_line(p), self._site_lines(p))

    def _site_lines(self, p: GroupPreview) -> tuple[str, ...]:
        """Per site, what crosses its uplink (naive, and rebased when there is one)."""
        cur = self.live.config.cost.currency
        rebased = {s.site: s for s in p.compare_sites}
        out = []
        for s in p.sites:
            line = (f"site {s.site}: {plural(s.devices, 'device')}, cache {s.cache}; uplink naive "
                    f"{size(s.uplink_bytes)} {cur}{s.uplink_cost:,.2f}")
            if s.site in rebased:
                r = rebased[s.site]
                line += f", rebased {size(r.uplink_bytes)} {cur}{r.uplink_cost:,.2f}"
            out.append(line + f"; LAN {size(s.lan_bytes)}")
        return tuple(out)

    def _budget_line(self, p: GroupPreview) -> str:
        """The rollout's waves priced against `[rollout] budget` ("" without a budget)."""
        if p.budget is None:
            return ""
        c = self.live.config.cost
        fit = sum(1 for w in p.waves if w.within_budget)
        total = p.waves[-1].cumulative if p.waves else 0
        verdict = ("every wave fits" if fit == len(p.waves) else
                   f"waves 1-{fit} fit, the rollout halts before wave {fit + 1}" if fit else "no wave fits: it halts at once")
        label = "rebased" if p.compare is not None else "naive"
        return (f"{label} by wave {', '.join(money(w.bytes, c.per_gb, c.currency) for w in p.waves)} = "
                f"{money(total, c.per_gb, c.currency)} against the {p.policy.budget} budget: {verdict}")

    def safety_report(self, target: str, group: str) -> SafetyReport:
        live = self.live
        twins = live.hub.iter_devices(live.condition(group))
        top = Counter((t.reported[live.module].image, t.digest(live.module)) for t in twins
                      if live.module in t.reported and t.digest(live.module))
        if not top:
            raise FleetError(f"no device of {group!r} reports what it runs: nothing to rebase onto")
        (image, digest), _n = top.most_common(1)[0]
        onto = image if "@" in image else f"{image.rsplit(':', 1)[0]}@{digest}"
        self.discard()
        tag = rebased_ref(target).rsplit(":", 1)[-1]
        self._plan = plan = prepare_rebase(target, onto, tag, live.config, auto=True)
        report = plan.report
        return SafetyReport(target, onto, tuple(plan.paths), tuple(c.path for c in report.outside),
                            plan.layer.size, len(plan.old.layers), plan.refused is None,
                            tuple(report.warnings) + ((plan.refused,) if plan.refused else ())
                            + (f"saving {plan.saving:.0%} for devices that run it",)
                            + ((plan.seam.summary(len(plan.onto.layers)),) if plan.seam and plan.onto else ()))

    def build_rebased(self, target: str, group: str) -> str:
        if self._plan is None:
            self.safety_report(target, group)
        plan, self._plan = self._plan, None
        try:
            result = plan.push()
        finally:
            plan.close()
        if result.refused:
            raise FleetError(result.refused)
        self.live.names.invalidate()  # a new tag: list again on the next sample
        if result.pushed:
            record(self.live.journal, "build", str(result.ref), {"new": target, "group": group, "mode": result.mode,
                                                                 "bytes_for_old_holders": result.bytes_for_old_holders})
        return str(result.ref)

    def discard(self) -> None:
        if self._plan is not None:
            self._plan.close()
        self._plan = None
