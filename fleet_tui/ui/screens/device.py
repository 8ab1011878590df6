"""One device: what it runs, the images and layers it holds (so what it would skip), its
link profile and recent events. Re-read every few seconds; `escape` goes back."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from fleet_tui.ui.bindings import LIST
from fleet_tui.ui.formatting import age, named, short_digest, short_ref, size, state_style
from fleet_tui.ui.screens.base import SampledScreen
from fleet_tui.ui.state import DeviceDetail
from fleet_tui.ui.widgets.keys import textual_bindings
from fleet_tui.ui.widgets.safe_static import SafeStatic


class DeviceScreen(SampledScreen):
    BINDINGS = textual_bindings([k for k in LIST if k.id == "list.back"])
    SAMPLE_INTERVAL = 3.0

    def __init__(self, device_id: str) -> None:
        super().__init__()
        self.device_id = device_id
        self.TITLE_TEXT = f"Device {device_id}"

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        with VerticalScroll(id="device-body"):
            yield SafeStatic("loading…", id="device-head")
            with Horizontal(id="device-panels"):
                yield SafeStatic("", id="device-layers", classes="panel")
                yield SafeStatic("", id="device-link", classes="panel")
            yield SafeStatic("", id="device-events", classes="panel")
        yield from self.compose_footer()

    def fetch(self) -> DeviceDetail:
        return self.fleet.data.device(self.device_id)

    def apply(self, d: DeviceDetail) -> None:
        now = self.fleet.clock()
        r = d.row
        head = Text.assemble(
            (r.id, "bold"), f"  group {r.group}  ", (r.state, state_style(r.state)),
            f"  runs {named(r.image, r.digest)}  last seen {age(r.last_seen, now)}",
        )
        self.query_one("#device-head", Static).update(head)
        layers = Table("IMAGES / LAYERS CACHED", "SIZE", box=None, expand=True, pad_edge=False)
        for ref, digest in d.images:
            layers.add_row(named(short_ref(ref), digest), "")
        for digest, nbytes in d.layers:
            layers.add_row(f"  {short_digest(digest)}", size(nbytes))
        layers.add_row("total cached", size(sum(n for _, n in d.layers)))
        self.query_one("#device-layers", Static).update(layers)
        link = Table("LINK", "", box=None, expand=True, pad_edge=False)
        for key, value in d.link.items():
            link.add_row(key, value)
        self.query_one("#device-link", Static).update(link)
        events = "\n".join(f"{age(ts, now):>9}  {text}" for ts, text in d.events[-8:]) or "no events"
        self.query_one("#device-events", Static).update(Text("RECENT EVENTS\n", "bold") + Text(events))

    def action_back(self) -> None:
        self.app.pop_screen()
