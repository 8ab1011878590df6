"""Rollout: waves and their gates, per-device progress bars and bytes, fleet throughput
(sparkline), totals, ETA, cost so far, event log — re-read from a frozen snapshot a few
times a second. Keys pause/resume/approve; abort and roll back ask for the group name.
Attaches to any rollout by id (a detached one keeps running when this console exits)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Sparkline, Static

from fleet_tui.ui.bindings import LIST, ROLLOUT, ROLLOUT_QUIET
from fleet_tui.ui.formatting import age, bar, duration, short_ref, size, state_style
from fleet_tui.ui.screens.confirm import TypeToConfirm
from fleet_tui.ui.screens.listing import ListScreen
from fleet_tui.ui.state import DANGEROUS_ACTIONS, RolloutSnapshot
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable

PROBLEM_STATES = ("failed", "offline", "rolled_back")
FINISHED = ("succeeded", "aborted", "rolled_back")


def offered(action: str, s: RolloutSnapshot) -> bool:
    """Whether the rollout's state gives `action` any meaning (the footer shows only those;
    the engine would ignore the others)."""
    if action == "pause":
        return s.state in ("pending", "running")
    if action == "resume":
        return s.state == "paused"
    if action == "approve":
        return s.awaiting_approval
    if action == "abort":
        return s.state not in FINISHED
    return s.state != "rolled_back"  # rollback


class RolloutScreen(ListScreen):
    BINDINGS = textual_bindings(ROLLOUT + ROLLOUT_QUIET + [k for k in LIST if k.id != "list.filter"])
    inherit_bindings = False  # ListScreen's "/ Filter" would otherwise still claim a footer slot
    SAMPLE_INTERVAL = 0.25
    snapshot: RolloutSnapshot | None = None
    only_failed = False

    def __init__(self, rollout_id: str) -> None:
        super().__init__()
        self.rollout_id = rollout_id
        self.TITLE_TEXT = f"Rollout {rollout_id}"

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("attaching…", id="rollout-status")
        yield Static("", id="waves")
        yield Sparkline([0.0], id="throughput")
        yield Static("", id="summary")
        yield self.make_table()
        yield Static("", id="events")
        from fleet_tui.ui.widgets.filter_bar import FilterBar

        yield FilterBar(id="filter")
        yield from self.compose_footer()

    def compose_footer(self) -> ComposeResult:
        yield Footer(compact=True)  # p/u/a/A/B/x, esc, ? and q fit at 80 columns

    def make_table(self) -> VirtualTable:
        return VirtualTable(
            [
                Column("DEVICE", lambda d: d.id, 0),
                Column("WAVE", lambda d: d.wave + 1, 4, True),
                Column("STATE", lambda d: d.state, 11),
                Column("PROGRESS", lambda d: (d.bytes / d.total) if d.total else 0.0, 15, False,
                       lambda f: bar(int(f * 1000), 1000, 10)),
                Column("BYTES", lambda d: d.bytes, 9, True, size),
                Column("OF", lambda d: d.total, 9, True, size),
            ],
            key=lambda d: d.id, state_of=lambda d: d.state, id="rollout-devices",
        )

    def fetch(self) -> RolloutSnapshot:
        return self.fleet.data.rollout(self.rollout_id)

    def target_label(self) -> str:
        s = self.snapshot
        return (s.target_name or short_ref(s.target)) if s else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "control" and self.snapshot is not None and parameters:
            if not offered(str(parameters[0]), self.snapshot):
                return False
        return super().check_action(action, parameters)

    def apply(self, s: RolloutSnapshot) -> None:
        old, self.snapshot = self.snapshot, s
        self.fleet.rollout_id = s.id
        if old is None or (old.state, old.awaiting_approval, old.target_name) != (s.state, s.awaiting_approval, s.target_name):
            self.refresh_bindings()
            self.refresh_title()
        rate = s.throughput[-1] if s.throughput else 0.0
        status = Text.assemble(
            (f"{s.state.upper()}", state_style(s.state) + " bold"),
            f"  {s.target_name or short_ref(s.target)} → {s.group}   {size(s.bytes_total)} of {size(s.bytes_planned)}"
            f"   {size(int(rate))}/s   ETA {duration(s.eta_seconds)}   cost so far ",
            (f"${s.cost:,.2f}" if s.cost < 100 else f"${s.cost:,.0f}", "bold"),
        )
        if s.awaiting_approval:
            status.append("   canary done: a approves the next wave", "bold yellow")
        self.query_one("#rollout-status", Static).update(status)
        waves = Table("WAVE", "SIZE", "STATE", "DONE", "FAILED", "GATE", box=None, pad_edge=False, expand=True)
        for w in s.waves:
            waves.add_row(str(w.index + 1), f"{w.size:,}", Text(w.state, state_style(w.state)), f"{w.done:,}",
                          Text(str(w.failed), "bold red" if w.failed else ""),
                          Text(w.gate, no_wrap=True, overflow="ellipsis"), end_section=False)
        self.query_one("#waves", Static).update(waves)
        self.query_one(Sparkline).data = list(s.throughput) or [0.0]
        devices = [d for d in s.devices if d.state in PROBLEM_STATES] if self.only_failed else s.devices
        self.table.set_rows(devices)
        self.update_summary()
        now = s.taken
        self.query_one("#events", Static).update(
            "\n".join(f"{age(t, now):>8}  {text}" for t, text in s.events[-3:]))

    def summary_text(self) -> str:
        s = self.snapshot
        if s is None:
            return ""
        counts = ", ".join(f"{n:,} {st}" for st in ("running", "downloading", "applying", "pending", "failed", "offline", "rolled_back")
                           if (n := s.count(st)))
        return f"{len(s.devices):,} devices: {counts}" + ("  │ failed/offline only (x)" if self.only_failed else "")

    # --- actions -------------------------------------------------------------------------
    def action_control(self, action: str) -> None:
        s = self.snapshot
        group = s.group if s else ""

        def send(ok: bool | None = True) -> None:
            if ok:
                self.run_blocking(lambda: self.fleet.data.control_rollout(self.rollout_id, action),
                                  lambda _r: (self.app.notify(f"{action} sent to {self.rollout_id}"), self.resample()),
                                  action)

        if action in DANGEROUS_ACTIONS:
            verb = "Abort" if action == "abort" else "Roll back"
            self.app.push_screen(TypeToConfirm(f"{verb} rollout {self.rollout_id} on {group}", group), send)
        else:
            send()

    def action_only_failed(self) -> None:
        self.only_failed = not self.only_failed
        if self.snapshot:
            self.apply(self.snapshot)

    def action_back(self) -> None:
        if self.table.filter_text:
            super().action_back()
        else:
            self.app.pop_screen()
