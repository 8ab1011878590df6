"""`ConsoleData` over the real parts: the configured hub (local or Azure), the registry and
embedded store, the rebaser and the rollout journal/engine. No Textual here; every method
may block and is called from sampler threads or workers.

This class is the plumbing — the hub and the journal opened once, on first use, behind one
lock; the image names cache; the read-only guard — and hands each job to its part
(fleet_tui.ui.live): `FleetReads` (groups, devices), `ImageReads` (tags, diffs),
`PreviewActions` (preview, safety report, rebase) and `RolloutActions` (start, snapshots,
reports, commands). What the console and the CLI both do (preview, rollout start) is in
fleet_tui.services, so the two cannot disagree.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from fleet_tui.config import Config
from fleet_tui.errors import UsageError
from fleet_tui.hub import open_hub
from fleet_tui.hub.listing import ListQuery
from fleet_tui.hub.query_literal import group_condition
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.snapshot import RolloutSnapshot
from fleet_tui.ui.image_names import ImageNames
from fleet_tui.ui.live.fleet import FleetReads
from fleet_tui.ui.live.images import ImageReads, repositories
from fleet_tui.ui.live.preview import PreviewActions
from fleet_tui.ui.live.rollouts import RolloutActions
from fleet_tui.ui.paged_rows import Window
from fleet_tui.ui.state import (
    DeviceDetail,
    DeviceRow,
    DeviceStory,
    DiffView,
    GroupRow,
    Preview,
    ReportView,
    SafetyReport,
    Settings,
    TagRow,
)


class LiveConsoleData:
    def __init__(self, config: Config, read_only: bool = False) -> None:
        self.config, self.read_only = config, read_only
        self.module, self.group_tag = config.hub.module, config.hub.group_tag
        self.lock = threading.RLock()
        self._hub: Any = None
        self._journal: Journal | None = None
        self.names = ImageNames(lambda: repositories(config), config)  # manifest digest → short repo:tag
        self.clock = time.time
        self.fleet, self.images = FleetReads(self), ImageReads(self)
        self.previews, self.rollouts = PreviewActions(self), RolloutActions(self)

    # --- plumbing ----------------------------------------------------------------------
    @property
    def hub(self) -> Any:
        with self.lock:
            if self._hub is None:
                self._hub = open_hub(self.config)
            return self._hub

    @property
    def journal(self) -> Journal:
        with self.lock:
            if self._journal is None:
                self._journal = Journal.for_config(self.config)
            return self._journal

    def condition(self, group: str) -> str:
        return group_condition(self.group_tag, group)

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise UsageError(f"{what} changes the fleet; the console is read-only")

    def settings(self) -> Settings:
        hub = "Azure IoT Hub" if self.config.hub.kind == "azure" else f"local hub {self.config.hub_path()}"
        c = self.config.cost
        return Settings(hub, self.config.registry.default, self.module, c.per_gb, c.currency, self.read_only)

    def hub_health(self) -> str:
        caller = getattr(self._hub, "caller", None)  # Azure: HubCaller counts 429s; never opens the hub
        return caller.health() if caller is not None else ""

    # --- reads -------------------------------------------------------------------------
    def groups(self) -> Sequence[GroupRow]:
        return self.fleet.groups()

    def devices(self, group: str) -> Sequence[DeviceRow]:
        return self.fleet.devices(group)

    def device_window(self, group: str, query: ListQuery, offset: int, limit: int, counts: bool = False) -> Window:
        return self.fleet.device_window(group, query, offset, limit, counts)

    def device(self, device_id: str) -> DeviceDetail:
        return self.fleet.device(device_id)

    def tags(self) -> Sequence[TagRow]:
        return self.images.tags()

    def what_changed(self, a: str, b: str) -> DiffView:
        return self.images.what_changed(a, b)

    def preview(self, target: str, group: str) -> Preview:
        return self.previews.preview(target, group)

    def safety_report(self, target: str, group: str) -> SafetyReport:
        return self.previews.safety_report(target, group)

    def rollout(self, rollout_id: str) -> RolloutSnapshot:
        return self.rollouts.rollout(rollout_id)

    def rollout_device(self, rollout_id: str, device_id: str) -> DeviceStory:
        return self.rollouts.rollout_device(rollout_id, device_id)

    def rollout_report(self, rollout_id: str) -> ReportView:
        return self.rollouts.rollout_report(rollout_id)

    # --- actions -----------------------------------------------------------------------
    def build_rebased(self, target: str, group: str) -> str:
        self._writable("rebase")
        return self.previews.build_rebased(target, group)

    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        self._writable("rollout start")
        return self.rollouts.start_rollout(target, group, rebase)

    def save_report(self, rollout_id: str) -> str:
        return self.rollouts.save_report(rollout_id)

    def control_rollout(self, rollout_id: str, action: str) -> str:
        self._writable(action)
        return self.rollouts.control_rollout(rollout_id, action)

    def close(self) -> None:
        with self.lock:
            self.previews.discard()
            self.fleet.close()
            for part in (self._hub, self._journal):
                if part is not None:
                    part.close()
            self._hub = self._journal = None
