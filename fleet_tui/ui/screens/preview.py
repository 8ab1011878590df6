"""Preview: what each device of a group pulls for the target — naive image and rebased
image side by side, per cohort (devices that run the same image pull the same layers),
with bytes, cost and the saving line. `b` builds the rebased image after showing the
safety report; `R` starts a rollout (type the group name to confirm); `n` next group."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from fleet_tui.ui.bindings import LIST, PREVIEW
from fleet_tui.ui.formatting import money, saving_line, short_digest, short_ref, size
from fleet_tui.ui.screens.base import ConsoleScreen
from fleet_tui.ui.screens.confirm import SafetyScreen, TypeToConfirm
from fleet_tui.ui.state import Cohort, Preview, Variant
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.safe_static import SafeStatic
from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable
from fleet_tui.units import plural


def step(text: str) -> str:
    return text.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ").strip()


def _cohort(variant: Variant | None, digest: str) -> Cohort | None:
    return next((c for c in variant.cohorts if c.digest == digest), None) if variant else None


class PreviewScreen(ConsoleScreen):
    BINDINGS = textual_bindings(PREVIEW + LIST[1:])
    preview: Preview | None = None
    loaded = False

    def __init__(self, target: str, group: str) -> None:
        super().__init__()
        self.target, self.group = target, group
        self.TITLE_TEXT = f"Preview for {group}"

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield SafeStatic("computing pull plans…", id="summary")
        with Horizontal(id="variants"):
            yield SafeStatic("", id="naive", classes="panel")
            yield SafeStatic("", id="rebased", classes="panel")
        yield SafeStatic("", id="saving")
        yield VirtualTable(
            [
                Column("RUNS NOW", lambda r: r[0].current, 0),
                Column("DEVICES", lambda r: r[0].devices, 8, True, lambda n: f"{n:,}"),
                Column("NAIVE/DEV", lambda r: r[0].bytes, 10, True, size),
                Column("REBASED/DEV", lambda r: r[1].bytes if r[1] else -1, 11, True, lambda n: size(n) if n >= 0 else "-"),
                Column("NAIVE COST", lambda r: r[0].bytes * r[0].devices, 11, True, self._money),
            ],
            key=lambda r: r[0].digest, id="cohorts",
        )
        yield from self.compose_footer()

    def _money(self, nbytes: int) -> str:
        p = self.preview
        return money(nbytes, p.per_gb, p.currency) if p else "-"

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        self.run_blocking(lambda: self.fleet.data.preview(self.target, self.group), self.apply, "preview")

    def apply(self, p: Preview) -> None:
        self.preview = p
        rows = [(c, _cohort(p.rebased, c.digest)) for c in p.naive.cohorts]
        table = self.query_one(VirtualTable)
        table.set_rows(rows)
        table.focus()
        self.query_one("#summary", Static).update(
            f"{short_ref(p.target)} → {p.group}: {plural(p.naive.devices, 'device')} in {len(rows)} "
            f"{'cohort' if len(rows) == 1 else 'cohorts'} "
            f"(devices running the same image pull the same bytes)")
        if p.rebased:
            line = saving_line(p.naive.per_device, p.rebased.per_device, p.naive.devices, p.per_gb, p.currency,
                               p.naive.total_bytes, p.rebased.total_bytes)
        else:
            line = f"naive: {size(p.naive.total_bytes)} for the group, {self._money(p.naive.total_bytes)}; no rebased image yet (b builds one)"
        saving = Text(line, "bold")
        if p.budget_line:
            saving.append("\n" + p.budget_line, "bold red" if "halts" in p.budget_line else "")
        for line in p.site_lines:  # a site's devices share one uplink: its cost is the uplink's
            saving.append("\n" + line, "")
        self.query_one("#saving", Static).update(saving)
        self.show_cohort(rows[table.cursor] if rows else None)
        self.loaded = True

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self.show_cohort(event.row)

    def show_cohort(self, row: tuple[Cohort, Cohort | None] | None) -> None:
        p = self.preview
        if p is None:
            return
        naive, rebased = row if row else (None, None)
        self.query_one("#naive", Static).update(self._panel("NAIVE", p.naive, naive))
        if p.rebased is None:
            self.query_one("#rebased", Static).update(Text("REBASED\n", "bold") + Text(
                "no rebased image yet: b builds one on top of the image these devices run "
                "(safety report first)", "dim"))
        else:
            self.query_one("#rebased", Static).update(self._panel("REBASED", p.rebased, rebased))

    def _panel(self, title: str, variant: Variant, cohort: Cohort | None) -> Group:
        p = self.preview
        head = Text.assemble((f"{title} ", "bold"), short_ref(variant.ref))
        if cohort is None:
            return Group(head, Text("no devices", "dim"))
        layers = Table(box=None, pad_edge=False, show_header=False, expand=True)
        layers.add_column(width=4)
        layers.add_column(width=8)
        layers.add_column(justify="right", width=8)
        layers.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for l in cohort.layers:
            layers.add_row("pull" if l.needed else "have", short_digest(l.digest)[:8], size(l.size), step(l.created_by),
                           style="bold" if l.needed else "dim")
        back = (f"\nroll back after: {size(cohort.rollback)} per device (its image stays cached)"
                if cohort.rollback >= 0 and cohort.bytes else "")
        per = Text(f"per device {size(cohort.bytes)} · {money(cohort.bytes, p.per_gb, p.currency)}\n"
                   f"group {size(variant.total_bytes)} · {money(variant.total_bytes, p.per_gb, p.currency)}{back}")
        return Group(head, layers, per)

    # --- actions -------------------------------------------------------------------------
    def action_next_group(self) -> None:
        names = self.fleet.group_names
        if names:
            self.group = names[(names.index(self.group) + 1) % len(names)] if self.group in names else names[0]
            self.fleet.group = self.group
            self.TITLE_TEXT = f"Preview for {self.group}"
            self.refresh_title()
            self.load()

    def action_build_rebased(self) -> None:
        def show(report: Any) -> None:
            self.app.push_screen(SafetyScreen(report), lambda ok: ok and self._build())

        self.run_blocking(lambda: self.fleet.data.safety_report(self.target, self.group), show, "safety report")

    def _build(self) -> None:
        def done(ref: str) -> None:
            self.app.notify(f"pushed {short_ref(ref)}")
            self.load()

        self.run_blocking(lambda: self.fleet.data.build_rebased(self.target, self.group), done, "rebase")

    def action_start_rollout(self) -> None:
        p = self.preview
        target, rebase = self.target, bool(p and p.rebased)
        how = " (rebased onto what each device runs)" if rebase else ""

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.run_blocking(lambda: self.fleet.data.start_rollout(target, self.group, rebase=rebase),
                                  self.fleet.open_rollout, "rollout")

        self.app.push_screen(TypeToConfirm(f"Start a rollout of {short_ref(target)}{how} to {self.group}", self.group), confirmed)

    def action_back(self) -> None:
        self.app.pop_screen()
