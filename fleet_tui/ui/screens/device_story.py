"""The drill-down of the Rollout screen: one device's story in this rollout (`enter` on a
device) — what it gets, what it ran, the bytes, its error, and what happened when — shown
over the rollout; `esc` goes back to it (its sampling resumes then)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from fleet_tui.ui.formatting import age
from fleet_tui.ui.state import DeviceStory
from fleet_tui.ui.widgets.facts import facts_table
from fleet_tui.ui.widgets.safe_static import SafeStatic


class DeviceStoryScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Back"), Binding("q", "dismiss", "Back", show=False)]

    def __init__(self, rollout_id: str, story: DeviceStory, now: float) -> None:
        super().__init__()
        self.rollout_id, self.story, self.now = rollout_id, story, now

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="story"):
            yield SafeStatic(Text.assemble((self.story.device_id, "bold"), f" in rollout {self.rollout_id}"))
            yield SafeStatic(facts_table(self.story.facts, alarm=("error",)), id="story-facts")
            events = Table(box=None, show_header=False, pad_edge=False, expand=True)
            events.add_column(justify="right", no_wrap=True, style="dim")
            events.add_column(overflow="fold")
            for ts, text in self.story.lines:
                events.add_row(age(ts, self.now), text)
            yield SafeStatic(events if self.story.lines else Text("nothing has happened to it yet", "dim"),
                             id="story-lines")
            yield SafeStatic(Text("esc back to the rollout", "dim"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
