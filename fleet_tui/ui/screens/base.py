"""What every console screen shares: a title bar, the footer, sampling, read-only checks.

`SampledScreen.fetch()` runs on a `Sampler` thread (never the UI thread); a timer at the
app's sample rate re-reads the newest frozen snapshot and calls `apply()` only when it
changed. Sampling stops while the screen is covered by another (a 100k-device table
beneath the rollout screen costs nothing) and starts again when it is shown.
Actions marked `danger` in fleet_tui.ui.bindings are disabled when the console is
read-only, so the footer, help and palette never offer them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from fleet_tui.ui.bindings import SECTIONS
from fleet_tui.ui.sampler import Sampler
from fleet_tui.ui.widgets.safe_static import SafeStatic

if TYPE_CHECKING:
    from fleet_tui.ui.app import FleetApp

DANGER_ACTIONS = {k.action.split("(")[0] for keys in SECTIONS.values() for k in keys if k.danger}


class TitleBar(SafeStatic):
    """One line: where you are, which hub, the current target, READ-ONLY."""


class ConsoleScreen(Screen):
    TITLE_TEXT = ""
    hub_health = ""  # last seen ConsoleData.hub_health(), refreshed by SampledScreen.tick

    @property
    def fleet(self) -> "FleetApp":
        return self.app  # type: ignore[return-value]

    def compose_title(self) -> ComposeResult:
        yield TitleBar(self.title_text(), id="title")
        yield SafeStatic("", id="error")

    def compose_footer(self) -> ComposeResult:
        yield Footer()

    def title_text(self) -> str:
        s = self.fleet.settings
        parts = ["fleet-tui", self.TITLE_TEXT, "READ-ONLY" if s.read_only else ""]
        if target := self.target_label():
            parts.append(f"target {target}")
        if health := self.hub_health:
            parts.append(f"⚠ {health}")
        parts.append(s.hub)  # last: a long hub path may be cut at 80 columns
        return " │ ".join(p for p in parts if p)

    def target_label(self) -> str:
        """The target this screen is about (the console's chosen one unless a screen knows better)."""
        return self.fleet.short_target if self.fleet.target else ""

    def refresh_title(self) -> None:
        self.query_one("#title", TitleBar).update(self.title_text())

    def show_error(self, text: str) -> None:
        bar = self.query_one("#error", Static)
        bar.update(text)
        bar.display = bool(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in DANGER_ACTIONS and self.fleet.settings.read_only:
            return False
        return True

    def run_blocking(self, fn: Callable[[], Any], done: Callable[[Any], None], what: str) -> None:
        """Run a blocking data call in a thread worker; `done(result)` on the UI thread,
        or its FleetError line in the error bar."""

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - one line for the operator
                text = str(exc) if type(exc).__module__.startswith("fleet_tui") else f"{type(exc).__name__}: {exc}"
                self.app.call_from_thread(self.show_error, f"{what}: {text}")
                return
            self.app.call_from_thread(done, result)

        self.run_worker(work, thread=True, group=what, exit_on_error=False)


class SampledScreen(ConsoleScreen):
    SAMPLE_INTERVAL = 1.0  # seconds between fetches on the sampler thread
    sampler: Sampler | None = None
    _seen = -1
    loaded = False  # the first snapshot has been applied (tests wait for it)

    def fetch(self) -> Any:
        raise NotImplementedError

    def apply(self, snapshot: Any) -> None:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.set_interval(1 / self.fleet.sample_hz, self.tick)

    def on_screen_resume(self) -> None:
        self.refresh_title()
        if self.sampler is None:
            self._seen = -1
            self.sampler = Sampler(self.fetch, self.SAMPLE_INTERVAL, name=type(self).__name__).start()

    def on_screen_suspend(self) -> None:
        self.stop_sampling()

    def on_unmount(self) -> None:
        self.stop_sampling()

    def stop_sampling(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None

    def resample(self) -> None:
        if self.sampler is not None:
            self.sampler.poke()

    def tick(self) -> None:
        if self.sampler is None:
            return
        health = self.fleet.data.hub_health()
        if health != self.hub_health:
            self.hub_health = health
            self.refresh_title()
        version, value, error = self.sampler.latest()
        self.show_error(error)
        if version != self._seen and value is not None:
            self._seen = version
            self.apply(value)
            self.loaded = True
