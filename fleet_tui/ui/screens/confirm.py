"""Confirmation dialogs: `TypeToConfirm` (type the group name before anything dangerous:
abort, roll back, start a rollout) and `SafetyScreen` (the rebaser's safety report, shown
before the rebased image is pushed). Both dismiss with True only on an explicit yes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from fleet_tui.ui.formatting import short_ref, size
from fleet_tui.ui.screens.diff import DiffScreen
from fleet_tui.ui.state import SafetyReport
from fleet_tui.ui.widgets.safe_static import SafeStatic


class TypeToConfirm(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, expected: str) -> None:
        super().__init__()
        self.prompt, self.expected = prompt, expected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield SafeStatic(Text(self.prompt, "bold"))
            yield SafeStatic(f"Type the group name “{self.expected}” and press enter (esc cancels).")
            yield Input(placeholder=self.expected, id="confirm-input")
            yield SafeStatic("", id="confirm-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#confirm-error", Static).update(f"that is not “{self.expected}”: nothing was done")

    def action_cancel(self) -> None:
        self.dismiss(False)


class SafetyScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "confirm", "Build and push"), Binding("d", "diff", "What changed"),
                Binding("escape,n", "cancel", "Cancel")]

    def __init__(self, report: SafetyReport) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        r = self.report
        lines = Text()
        lines.append("Rebase safety report\n", "bold")
        lines.append(f"new image   {short_ref(r.target)}\nonto        {short_ref(r.onto)} (its {r.reused_layers} layers reused byte for byte)\n")
        lines.append(f"ships       {', '.join(r.paths) or 'every changed file (auto)'} as one layer of {size(r.new_layer_bytes)}\n")
        if r.outside_paths_changed:
            lines.append(f"WARNING: {len(r.outside_paths_changed)} files changed outside those paths:\n", "bold red")
            for path in r.outside_paths_changed[:8]:
                lines.append(f"  {path}\n", "red")
        for note in r.notes:
            lines.append(f"✓ {note}\n", "green")
        lines.append("\ny builds and pushes it, d shows what changed, esc cancels" if r.ok
                     else "\nnot safe to push: d shows what changed, esc goes back", "bold")
        with Vertical(classes="dialog"):
            yield SafeStatic(lines, id="safety-report")

    def action_confirm(self) -> None:
        if self.report.ok:
            self.dismiss(True)
        else:
            self.app.notify("the safety report failed: nothing was pushed", severity="error")

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_diff(self) -> None:
        self.app.push_screen(DiffScreen(self.report.onto, self.report.target))
