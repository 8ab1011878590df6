"""Rollouts from the console: start one (detached: it survives the console), read its
snapshot a few times a second, a device's story, the report, and operator commands.

Starting is the CLI's (fleet_tui.services.rollout_start) with the config's `[rollout]`
policy; with `rebase`, the engine rebases TARGET onto each image the group runs
(deterministic: the same digest the Preview built) and devices on any other image get
TARGET whole. Snapshots are the domain's (fleet_tui.rollout.snapshot), one reader per
rollout so throughput is measured between this console's own samples.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from fleet_tui.rollout.control import send_command
from fleet_tui.rollout.report import Report, build_report
from fleet_tui.rollout.snapshot import RolloutSnapshot, SnapshotReader
from fleet_tui.rollout.story import device_story
from fleet_tui.services.rollout_start import start_rollout
from fleet_tui.ui.formatting import short_ref
from fleet_tui.ui.state import DeviceStory, ReportView

if TYPE_CHECKING:
    from fleet_tui.ui.live_data import LiveConsoleData


class RolloutActions:
    def __init__(self, live: "LiveConsoleData") -> None:
        self.live = live
        self._readers: dict[str, SnapshotReader] = {}

    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        live = self.live
        return start_rollout(live.config, live.hub, live.journal, target, group, auto_rebase=rebase).id

    def rollout(self, rollout_id: str) -> RolloutSnapshot:
        live = self.live
        reader = self._readers.get(rollout_id)
        if reader is None:
            reader = self._readers[rollout_id] = SnapshotReader(live.journal, live.hub, rollout_id,
                                                                live.config.cost.per_gb)
        s = reader.take()
        live.names.refresh()
        name = live.names.get(s.target.rpartition("@")[2]) if "@" in s.target else short_ref(s.target)
        return dataclasses.replace(s, target_name=name)

    def rollout_device(self, rollout_id: str, device_id: str) -> DeviceStory:
        story = device_story(self.live.journal, self.live.hub, rollout_id, device_id)
        return DeviceStory(story.device_id, story.facts, story.lines)

    def _report(self, rollout_id: str) -> Report:
        live, c = self.live, self.live.config.cost
        snapshot = SnapshotReader(live.journal, live.hub, rollout_id, c.per_gb).take()
        return build_report(live.journal, snapshot, c.per_gb, c.currency)

    def rollout_report(self, rollout_id: str) -> ReportView:
        r = self._report(rollout_id)
        s = r.snapshot
        problems = tuple((d.id, str(d.wave + 1), d.state) for d in s.devices if d.state != "running")
        return ReportView(rollout_id, f"{rollout_id}: {short_ref(s.target)} → {s.group} — {s.state}",
                          tuple(r.facts()), tuple(r.wave_rows()), tuple(r.timeline()), problems)

    def save_report(self, rollout_id: str) -> str:
        text = self._report(rollout_id).to_markdown()
        path = self.live.config.state_path() / "reports" / f"{rollout_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # a reader never sees half a report
        return str(path)

    def control_rollout(self, rollout_id: str, action: str) -> str:
        live = self.live
        # the console offers approve when a wave waits, or paused with the next one approvable ahead
        return send_command(live.config, live.journal, live.hub, rollout_id, action, ahead=action == "approve")

