"""Rollout: waves and their gates, per-device progress bars and bytes, fleet throughput
(sparkline), totals, ETA, cost so far, event log — re-read from a frozen snapshot a few
times a second. Keys pause/resume/approve; abort and roll back ask for the group name.
Attaches to any rollout by id (a detached one keeps running when this console exits)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer, Sparkline, Static

from fleet_tui.rollout.snapshot import RolloutSnapshot
from fleet_tui.ui.bindings import LIST, ROLLOUT, ROLLOUT_QUIET
from fleet_tui.ui.formatting import age, duration, short_ref, size, state_style
from fleet_tui.ui.rollout_view import (
    FINISHED,
    counts_text,
    device_state,
    gate_cell,
    offered,
    progress,
    progress_text,
    status_hint,
    untouched_waves,
    wave_state,
    why_not,
    words,
)
from fleet_tui.ui.screens.confirm import TypeToConfirm
from fleet_tui.ui.screens.device_story import DeviceStoryScreen
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.screens.report import ReportScreen
from fleet_tui.ui.site_rows import sites_table
from fleet_tui.ui.state import DANGEROUS_ACTIONS
from fleet_tui.ui.widgets.filter_bar import FilterBar
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.safe_static import SafeStatic
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable
from fleet_tui.units import plural

PROBLEM_STATES = ("failed", "offline", "rolled_back")
# key → rollout command it sends (`control('retry')` → "retry"), from the bindings' data
CONTROL_KEYS = {k.keys: k.action.split("'")[1] for k in ROLLOUT if k.action.startswith("control(")}


class RolloutScreen(ListScreen):
    BINDINGS = textual_bindings(ROLLOUT + ROLLOUT_QUIET + [k for k in LIST if k.id != "list.filter"])
    inherit_bindings = False  # ListScreen's "/ Filter" would otherwise still claim a footer slot
    SAMPLE_INTERVAL = 0.25
    snapshot: RolloutSnapshot | None = None
    only_failed = False
    untouched: frozenset[int] = frozenset()  # waves an abort/rollback left unstarted

    def __init__(self, rollout_id: str) -> None:
        super().__init__()
        self.rollout_id = rollout_id
        self.TITLE_TEXT = f"Rollout {rollout_id}"

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield SafeStatic("attaching…", id="rollout-status")
        yield SafeStatic("", id="waves")
        yield SafeStatic("", id="sites")
        yield Sparkline([0.0], id="throughput")
        yield SafeStatic("", id="summary")
        yield self.make_table()
        yield SafeStatic("", id="events")

        yield FilterBar(id="filter")
        yield from self.compose_footer()

    def compose_footer(self) -> ComposeResult:
        yield Footer(compact=True)  # p/u/a/A/B/x, esc, ? and q fit at 80 columns

    def make_table(self) -> VirtualTable:
        return VirtualTable(
            [
                Column("DEVICE", lambda d: d.id, 0, keep_tail=True),
                Column("WAVE", lambda d: d.wave + 1, 4, True),
                Column("STATE", lambda d: device_state(d, self.untouched), 11, fmt=words),
                # a failed or offline device shows why instead of a bar (enter: its whole story)
                Column("PROGRESS", lambda d: (progress(d, self.untouched), d.reason), 15, False,
                       lambda v: v[1] or progress_text(v[0])),
                Column("BYTES", lambda d: d.bytes, 9, True, size),
                Column("OF", lambda d: d.total, 9, True, size),
            ],
            key=lambda d: d.id, state_of=lambda d: device_state(d, self.untouched), id="rollout-devices",
        )

    def fetch(self) -> RolloutSnapshot:
        return self.fleet.data.rollout(self.rollout_id)

    def target_label(self) -> str:
        s = self.snapshot
        return (s.target_name or short_ref(s.target)) if s else ""

    def on_key(self, event: events.Key) -> None:
        """A rollout key whose action means nothing now (hidden from the footer) says why."""
        s = self.snapshot
        action = CONTROL_KEYS.get(event.key)
        if s is not None and action and not offered(action, s) and not self.app.settings.read_only:
            self.app.notify(why_not(action, s), severity="warning")
            event.stop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "control" and self.snapshot is not None and parameters:
            if not offered(str(parameters[0]), self.snapshot):
                return False
        return super().check_action(action, parameters)

    def apply(self, s: RolloutSnapshot) -> None:
        old, self.snapshot = self.snapshot, s
        self.fleet.rollout_id = s.id
        keys = (s.state, s.awaiting_approval, s.approvable, s.target_name)
        if old is None or (old.state, old.awaiting_approval, old.approvable, old.target_name) != keys:
            self.refresh_bindings()
            self.refresh_title()
        self.untouched = untouched_waves(s)
        self.query_one("#rollout-status", Static).update(self.status_text(s))
        waves = Table("WAVE", "SIZE", "STATE", "DONE", "FAILED", "GATE", box=None, pad_edge=False, expand=True)
        for w in s.waves:
            shown = wave_state(w, s, self.untouched)
            waves.add_row(str(w.index + 1), f"{w.size:,}", Text(words(shown), state_style(shown)), f"{w.done:,}",
                          Text(str(w.failed), "bold red" if w.failed else ""),
                          Text(gate_cell(w, s), no_wrap=True, overflow="ellipsis"), end_section=False)
        self.query_one("#waves", Static).update(waves)
        site_rows = self.query_one("#sites", Static)
        site_rows.display = bool(s.sites)
        if s.sites:
            site_rows.update(sites_table(s.sites))
        self.query_one(Sparkline).data = list(s.throughput) or [0.0]
        devices = [d for d in s.devices if d.state in PROBLEM_STATES] if self.only_failed else s.devices
        self.table.set_rows(devices)
        self.update_summary()
        now = s.taken
        # one line per event, cut with an ellipsis at the screen's width (a wrapped line would push
        # the newest one out of the three rows); enter on a device or `e` has the whole text
        self.query_one("#events", Static).update(Text(
            "\n".join(f"{age(t, now):>8}  {text}" for t, text in s.events[-3:]), no_wrap=True, overflow="ellipsis"))

    def status_text(self, s: RolloutSnapshot) -> Text:
        """Two lines: state, target → group, bytes, rate, ETA; then cost and what it waits for."""
        rate = s.throughput[-1] if s.throughput else 0.0
        head = (f"{s.target_name or short_ref(s.target)} → {s.group}   {size(s.bytes_total)} of {size(s.bytes_planned)}"
                # the hub counts no bytes (Azure): what is shown is the plan for each device that finished
                + (" (planned)" if s.bytes_source == "planned" else ""))
        # an ended rollout moves nothing more on its own: no rate, no ETA (devices told before an
        # abort may still finish; the bytes say so)
        speed = "" if s.state in (*FINISHED, "halted") else f"{size(int(rate))}/s   ETA {duration(s.eta_seconds)}"
        badge = f"{words(s.state).upper()}  "
        # rate and ETA end the first line when it has room (80 columns and a long group name
        # do not), else they open the second
        fits = len(badge) + len(head) + 3 + len(speed) <= max(40, self.size.width - 2)
        # the gap after the badge belongs to the badge: a separate segment starting with spaces
        # loses them in some SVG renderers (the screenshots)
        status = Text.assemble(
            (badge, state_style(s.state) + " bold"),
            head + (f"   {speed}\ncost so far " if fits else f"\n{speed}   cost so far "),
            (f"${s.cost:,.2f}" if s.cost < 100 else f"${s.cost:,.0f}", "bold"),
        )
        if s.budget_bytes >= 0:
            over = s.bytes_planned > s.budget_bytes
            status.append(f" of {s.budget_text} budget", "bold red" if over and s.state == "halted" else "")
        if s.pacing:
            status.append("   ")
            status.append(s.pacing, "yellow")
        if s.holder:  # a team's journal: which host's engine drives it
            status.append(f"   engine on {s.holder}", "dim")
        hint, style = status_hint(s, self.untouched)
        if hint:
            status.append("   ")
            status.append(hint, style)
        return status

    def summary_text(self) -> str:
        s = self.snapshot
        if s is None:
            return ""
        counts = counts_text(s, self.untouched)
        return f"{plural(len(s.devices), 'device')}: {counts}" + ("  │ failed/offline only (x)" if self.only_failed else "")

    # --- actions -------------------------------------------------------------------------
    def action_control(self, action: str) -> None:
        s = self.snapshot
        group = s.group if s else ""

        def send(ok: bool | None = True) -> None:
            if ok:
                self.run_blocking(lambda: self.fleet.data.control_rollout(self.rollout_id, action),
                                  lambda outcome: (self.app.notify(outcome or f"{action} sent to {self.rollout_id}"),
                                                   self.resample()),
                                  action)

        if action in DANGEROUS_ACTIONS:
            verb = {"abort": "Abort", "rollback": "Roll back", "continue": "Continue past the halt:"}[action]
            self.app.push_screen(TypeToConfirm(f"{verb} rollout {self.rollout_id} on {group}", group), send)
        else:
            send()

    def open_row(self, row: Any) -> None:
        """`enter` on a device: its story in this rollout, over the rollout screen."""
        if row is None:
            return

        self.run_blocking(lambda: self.fleet.data.rollout_device(self.rollout_id, row.id),
                          lambda story: self.app.push_screen(DeviceStoryScreen(self.rollout_id, story, self.fleet.clock())),
                          "device story")

    def action_report(self) -> None:
        """`e`: the end-of-rollout report (also of one still running), over the rollout."""
        self.run_blocking(lambda: self.fleet.data.rollout_report(self.rollout_id),
                          lambda report: self.app.push_screen(ReportScreen(report)), "report")

    def action_only_failed(self) -> None:
        self.only_failed = not self.only_failed
        if self.snapshot:
            self.apply(self.snapshot)

    def action_back(self) -> None:
        if self.table.filter_text:
            super().action_back()
        else:
            self.app.pop_screen()
