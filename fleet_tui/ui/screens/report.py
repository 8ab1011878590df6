"""The end-of-rollout report in the console (`e` on the Rollout screen): the same numbers as
`fleet-tui rollout report ID` — devices by state, bytes moved of planned, cost, the naive cost
avoided, each wave's timing and gate — with the bytes-over-time chart drawn in text, and the
devices that did not end on the target. `w` writes the Markdown report (SVG chart inline)
into the state directory; `esc` goes back to the rollout (its sampling resumes then)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget

from fleet_tui.ui.chart import step_chart
from fleet_tui.ui.formatting import size
from fleet_tui.ui.state import ReportView
from fleet_tui.ui.widgets.facts import facts_table
from fleet_tui.ui.widgets.safe_static import SafeStatic

CHART_ROWS = 5
PROBLEMS_SHOWN = 8


class BytesChart(Widget):
    """Cumulative bytes over the rollout's time, as wide as the widget is."""

    DEFAULT_CSS = f"BytesChart {{ height: {CHART_ROWS + 2}; }}"

    def __init__(self, points: tuple[tuple[float, int], ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points = points

    def render(self) -> Text:
        width = max(10, self.size.width - 11)  # a 10-column label gutter
        top = max((b for _, b in self.points), default=0)
        end = max((t for t, _ in self.points), default=0.0)
        text = Text("bytes moved over time\n", "bold")
        for i, line in enumerate(step_chart(self.points, width, CHART_ROWS)):
            label = size(top) if i == 0 else ("0" if i == CHART_ROWS - 1 else "")
            text.append(f"{label:>9} ", "dim").append(line + "\n", "green")
        text.append(" " * 10 + "0 s" + f"{end:,.0f} s".rjust(width - 3), "dim")
        return text


class ReportScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Back"), Binding("q", "dismiss", "Back", show=False),
                Binding("w", "write", "Write Markdown")]

    def __init__(self, report: ReportView) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        r = self.report
        with VerticalScroll(classes="dialog", id="report"):
            yield SafeStatic(Text(f"Report of rollout {r.title}", "bold"))
            # first, not last: at 80x24 the end of the report is below the fold
            yield SafeStatic(Text("w writes it as Markdown (with an SVG chart) · ↓ scrolls · esc back", "dim"))
            yield SafeStatic(facts_table(r.facts), id="report-facts")
            waves = Table(box=None, pad_edge=False, expand=True, header_style="bold")
            for name, justify in (("WAVE", "right"), ("DEVICES", "right"), ("STATE", "left"),
                                  ("STARTED", "right"), ("TOOK", "right"), ("GATE", "left")):
                waves.add_column(name, justify=justify, no_wrap=name != "GATE", overflow="ellipsis")
            for row in r.waves:
                waves.add_row(*row)
            yield SafeStatic(waves, id="report-waves")
            yield BytesChart(r.timeline, id="report-chart")
            if r.problems:
                lines = [f"{d}  wave {w}  {st}" for d, w, st in r.problems[:PROBLEMS_SHOWN]]
                if len(r.problems) > PROBLEMS_SHOWN:
                    lines.append(f"… {len(r.problems) - PROBLEMS_SHOWN:,} more (fleet-tui rollout report --format csv)")
                yield SafeStatic(Text("not on the target:\n" + "\n".join(lines)), id="report-problems")

    def action_write(self) -> None:
        rid = self.report.rollout_id

        def work() -> None:
            try:
                path = self.app.data.save_report(rid)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - one line for the operator
                self.app.call_from_thread(self.app.notify, f"report not written: {exc}", severity="error")
                return
            self.app.call_from_thread(self.app.notify, f"report written to {path}")

        self.run_worker(work, thread=True, group="report", exit_on_error=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
