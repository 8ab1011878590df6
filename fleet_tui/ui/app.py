"""`FleetApp`: the console. Screens read frozen snapshots from a `ConsoleData` (fake, local
hub, or Azure) and send actions back through it; nothing blocks the UI thread.

Navigation (k9s/lazydocker): Fleet is home; `enter` drills down (group → devices →
device), `esc` goes back, `i` Images, `o` the current rollout, `?` keys, ctrl+p every
action by name. `read_only` disables every action that changes the fleet. NO_COLOR is
honoured by Textual itself (monochrome filter); states also read as words, not only colours.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from fleet_tui.terminal_text import visible
from fleet_tui.ui.bindings import GLOBAL, SECTIONS, Key, key_label
from fleet_tui.ui.formatting import short_ref
from fleet_tui.ui.screens.fleet import FleetScreen
from fleet_tui.ui.screens.help import HelpScreen
from fleet_tui.ui.screens.images import ImagesScreen
from fleet_tui.ui.screens.preview import PreviewScreen
from fleet_tui.ui.screens.rollout import RolloutScreen
from fleet_tui.ui.state import ConsoleData
from fleet_tui.ui.widgets.keys import textual_bindings


class FleetApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "fleet-tui"
    BINDINGS = textual_bindings(GLOBAL)
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, data: ConsoleData, *, clock: Callable[[], float] = time.time, sample_hz: float = 4.0,
                 target: str | None = None, group: str | None = None, rollout_id: str | None = None,
                 start: str = "fleet") -> None:
        super().__init__()
        self.data = data
        self.settings = data.settings()  # config-derived: must not block
        self.clock = clock
        self.sample_hz = sample_hz
        self.target = target
        self.group = group
        self.rollout_id = rollout_id
        self.start = start
        self.group_names: list[str] = []

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications carry hub data (group names, errors): never markup, never raw escapes."""
        super().notify(visible(message, keep_lines=True), title=visible(title), severity=severity, timeout=timeout,
                       markup=False)

    @property
    def short_target(self) -> str:
        return short_ref(self.target or "")

    def on_mount(self) -> None:
        self.push_screen(FleetScreen())
        if self.start == "images":
            self.action_goto("images")
        elif self.start == "preview":
            self.open_preview()
        elif self.start == "rollout" and self.rollout_id:
            self.open_rollout(self.rollout_id)

    def on_unmount(self) -> None:
        self.data.close()

    # --- navigation ----------------------------------------------------------------------
    def open_preview(self) -> None:
        if not self.target:
            self.notify("pick a target image first: t on a tag")
            self.action_goto("images")
            return
        group = self.group or (self.group_names[0] if self.group_names else None)
        if not group:
            self.notify("no group chosen: select one on the Fleet screen (f)")
            return
        self.group = group
        self.push_screen(PreviewScreen(self.target, group))

    def open_rollout(self, rollout_id: str) -> None:
        self.rollout_id = rollout_id
        self.push_screen(RolloutScreen(rollout_id))

    def action_goto(self, name: str) -> None:
        if name == "fleet":
            while len(self.screen_stack) > 2:
                self.pop_screen()
        elif name == "images" and not isinstance(self.screen, ImagesScreen):
            self.push_screen(ImagesScreen())
        elif name == "rollout":
            if self.rollout_id:
                self.open_rollout(self.rollout_id)
            else:
                self.notify("no rollout yet: r on a group that has one, or R on a preview")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.settings.read_only))

    # --- command palette: every action by name ---------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for section, keys in SECTIONS.items():
            for key in keys:
                if key.danger and self.settings.read_only:
                    continue
                method = "action_" + key.action.split("(")[0]
                target = screen if hasattr(screen, method) else self if hasattr(self, method) else None
                if target is None or section == "Lists" and key.id.startswith("table."):
                    continue
                yield SystemCommand(f"{section}: {key.description}", f"key {key_label(key.keys)}",
                                    partial(self._run_key, target, key))

    async def _run_key(self, target: object, key: Key) -> None:
        await self.run_action(key.action, target)  # type: ignore[arg-type]
