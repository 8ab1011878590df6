"""How a rollout ends: when it is folded, and what a rollback waits for first.

An ended rollout (succeeded, aborted, rolled back) is folded (fold.py): its tags go, each
device is pinned to the image its key deploys, and the devices' last states are kept in the
journal (`finals`) because the tags the status reads are about to go. Rules:

- a rollout is *folded* while a fold finished after its last rollback; a rollback after a
  fold (an aborted rollout rolled back) re-tags devices, so the rollout is live again until
  it is folded once more — views read the devices, not the old finals;
- a rolled-back rollout is folded only once its rolled-back devices *settled* — each runs
  the image it ran before, failed, went offline, or the gate timeout passed since the
  rollback — so its finals say where the devices are (`rolled_back`), not where they were
  when the command arrived (a condition-wave rollback: when the rollback deployment's metrics
  count them running or failed; offline ones wait for the timeout);
- after an abort nothing the engine writes changes what a device runs: devices already told
  carry on, the fold keeps each on what it was told, no wave starts and no device is
  retried. Only a rollback (by the operator) moves devices again: back to what they ran.
"""

from __future__ import annotations

import time
from typing import Any

from fleet_tui.rollout.gate import read_devices
from fleet_tui.rollout.journal import Assignment, Journal
from fleet_tui.rollout.shard_waves import by_condition


def _last(journal: Journal, rollout_id: str, kind: str, phase: str) -> Any:
    events = [e for e in journal.events(rollout_id, kind) if e.phase == phase]
    return events[-1] if events else None


def folded(journal: Journal, rollout_id: str) -> bool:
    fold, back = _last(journal, rollout_id, "fold", "done"), _last(journal, rollout_id, "rollback", "done")
    return fold is not None and (back is None or fold.seq > back.seq)


def needs_fold(journal: Journal, rollout_id: str) -> bool:
    """No fold was begun since the last rollback (an interrupted one is finished as an intent)."""
    fold, back = _last(journal, rollout_id, "fold", "intent"), _last(journal, rollout_id, "rollback", "done")
    return fold is None or (back is not None and back.seq > fold.seq)


def rollback_settled(journal: Journal, hub: Any, rollout_id: str, module: str, assignments: list[Assignment],
                     told: dict[int, list[str]], timeout: float, now: float | None = None) -> bool:
    """Every device the last rollback moved (the devices told in its waves: `told`, per wave)
    runs its previous image again, failed, or is offline — or `timeout` seconds passed since
    the rollback."""
    back = _last(journal, rollout_id, "rollback", "done")
    intent = _last(journal, rollout_id, "rollback", "intent")
    if back is None or intent is None:
        return True
    if (time.time() if now is None else now) - back.ts >= timeout:
        return True
    waves = set(intent.data.get("waves") or [])
    by_id = {a.device_id: a for a in assignments}
    moved = {d: by_id[d] for w in waves for d in told.get(w, []) if by_id[d].prev_digest}
    spec = journal.rollout(rollout_id).spec
    if by_condition(spec) and getattr(hub, "health", None) is not None:  # the back deployment's metrics
        if not moved:
            return True  # nothing was told, so no back deployment exists to wait for
        ids = [f"rollout-{rollout_id}-{key}" for key in spec["rollbacks"].values()]
        health = hub.health.read(ids, module, spec["tag"], lambda dep_id: dep_id.rsplit("-", 1)[1])
        return health.measured and health.running + len(health.failing) >= len(moved)
    views = read_devices(hub, rollout_id, module, sorted(moved))
    for device_id, a in moved.items():
        view = views.get(device_id)
        if view is None or not view.tag.startswith("back"):
            continue  # no image to go back to: the group's own deployment applies, nothing to wait for
        back = view.state == "running" and view.digest == a.prev_digest  # as the snapshot reads `rolled_back`
        if view.connected and view.state != "failed" and not back:
            return False
    return True
