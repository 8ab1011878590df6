"""One device's story in a rollout: what was planned for it, when it was told, retried, what
it reported and how its wave was judged — the Rollout screen's drill-down (`enter`).

Built from the journal (its assignment, the batches and retries that named it, its wave's
start and verdict, its final state once the rollout is folded) and one read of its twin
(state, bytes, error and when it said so). Read-only; nothing here is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet_tui.errors import NotFound
from fleet_tui.rollout.event_text import short_image
from fleet_tui.rollout.gate import read_devices
from fleet_tui.rollout.journal import Journal


@dataclass(frozen=True)
class DeviceStory:
    device_id: str
    facts: tuple[tuple[str, str], ...]  # (label, value): wave, image, planned bytes, state now, error
    lines: tuple[tuple[float, str], ...]  # (time, what happened), oldest first


def device_story(journal: Journal, hub: Any, rollout_id: str, device_id: str) -> DeviceStory:
    row = journal.rollout(rollout_id)
    assignment = next((a for a in journal.assignments(rollout_id) if a.device_id == device_id), None)
    if assignment is None:
        raise NotFound(f"device {device_id!r} is not part of rollout {rollout_id}")
    spec, wave = row.spec, journal.waves(rollout_id)[assignment.wave]
    variant = spec["variants"][assignment.variant]
    lines: list[tuple[float, str]] = []
    for e in journal.events(rollout_id):
        devices = e.data.get("devices")
        if e.kind == "target" and e.phase == "intent" and (devices == device_id or
                                                          (isinstance(devices, list) and device_id in devices) or
                                                          (not isinstance(devices, list) and e.wave == assignment.wave)):
            lines.append((e.ts, f"told to update (wave {(e.wave or 0) + 1}, batch of "
                                f"{len(devices) if isinstance(devices, list) else wave.size})"))
        elif e.kind == "retry" and e.phase == "intent" and device_id in e.data.get("devices", []):
            lines.append((e.ts, f"retry {e.data['attempts'][device_id]} ({e.data.get('why', '')})"))
        elif e.kind == "judge" and e.wave == assignment.wave:
            lines.append((e.ts, f"wave {assignment.wave + 1} gate {'passed' if e.data.get('passed') else 'failed'}: "
                                f"{e.data.get('reason', '')}"))
        elif e.kind == "rollback" and e.phase == "done" and assignment.wave in (e.data.get("waves") or [assignment.wave]):
            lines.append((e.ts, "rolled back to the image it ran before"))
    facts = [("wave", f"{assignment.wave + 1} ({wave.state})"),
             ("gets", f"{'rebased ' if variant.get('rebased') else ''}{short_image(variant['image'])}"),
             ("ran before", short_image(assignment.prev_image) if assignment.prev_image else "unknown"),
             ("planned", f"{assignment.planned_bytes:,} B")]
    finals = journal.finals(rollout_id)
    view = None if finals else read_devices(hub, rollout_id, spec["module"], [device_id]).get(device_id)
    if device_id in finals:
        state, nbytes = finals[device_id]
        facts += [("ended", state), ("bytes", f"{nbytes:,} B")]
    elif view is not None:
        facts += [("state now", view.state), ("bytes", f"{view.bytes:,} B"),
                  ("runs", view.digest.split(":", 1)[-1][:12] if view.digest else "-")]
        if view.updated:
            lines.append((view.updated, f"reported {view.state}" + (f" ({view.bytes:,} B)" if view.bytes else "")))
        if view.error:
            facts.append(("error", view.error))
    else:
        facts.append(("state now", "not told yet" if wave.started is None else "no report yet"))
    return DeviceStory(device_id, tuple(facts), tuple(sorted(lines)))
