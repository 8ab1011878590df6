"""Reading a rollout's devices from the hub, and judging a wave's gate on what they report.

`read_devices` fetches only the devices that carry the rollout's tag (one hub query), as a
compact `DeviceView` per device — the engine and the snapshot both use it.

Gate invariant (no judgement on stale data): a report counts for a wave only if its
`updated` time — by the hub's clock (`hub.now()`; Azure: hub-stamped `$lastUpdated`, never a
device clock) — is at or after the wave's start recorded in the journal (taken before the tag
was written). A device "succeeds" when it freshly reports `running` on the digest its variant
pins, or when the hub itself says the variant's deployment applies to it and it runs that
digest (a device already running the target reports nothing new); it "fails" when it freshly
reports `failed`. Devices that say nothing new count as neither. The verdict is `None`
(undecided) until the failure criterion trips, the success count is reached, or the gate
timeout passes — counted from when the wave's tagging finished (a tagging job on Azure can
take minutes), not from when it began.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from fleet_tui.rollout.policy import Policy


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    tag: str  # value of the rollout tag: a variant key, or a rollback key
    state: str  # reported state of the managed module (offline when not connected)
    digest: str
    bytes: int
    updated: float
    connected: bool
    applied: tuple[str, ...] = ()  # deployments the hub applies to the device (Azure)
    error: str = ""  # what the device says went wrong (failed)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    running: int
    failed: int
    finished: int
    size: int
    needed: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def tag_name(rollout_id: str) -> str:
    return f"rollout_{rollout_id}"


def read_devices(hub: Any, rollout_id: str, module: str, device_ids: Iterable[str] | None = None) -> dict[str, DeviceView]:
    """Every device carrying the rollout tag, by id (of `device_ids` only, where the hub can
    read just those: Azure reads their runtime module twins, never the whole group)."""
    fast = _read_local(hub, rollout_id, module)
    if fast is not None:
        return fast
    tag = tag_name(rollout_id)
    reader = getattr(hub, "rollout_twins", None)
    twins = reader(tag, list(device_ids)) if reader is not None and device_ids is not None \
        else hub.iter_devices(f"tags.{tag} != ''")
    return views_of(twins, tag, module)


def views_of(twins: Iterable[Any], tag: str, module: str) -> dict[str, DeviceView]:
    """The `DeviceView`s of the twins that carry the rollout tag `tag`, by device id."""
    out: dict[str, DeviceView] = {}
    for twin in twins:
        if not twin.tags.get(tag):
            continue
        rep = twin.reported.get(module)
        out[twin.device_id] = DeviceView(
            twin.device_id,
            str(twin.tags.get(tag, "")),
            twin.state(module),
            rep.digest if rep else "",
            rep.bytes_downloaded if rep else 0,
            rep.updated if rep else 0.0,
            twin.connected,
            twin.applied,
            rep.error if rep else "",
        )
    return out


def _read_local(hub: Any, rollout_id: str, module: str) -> dict[str, DeviceView] | None:
    """The same views straight from the local hub's SQLite file: a few columns extracted in
    SQL instead of whole twins parsed in Python (~30x less work; 10,000 devices stay well
    under the UI's sampling period). None for any other hub. Mirrors DeviceTwin.state."""
    store, stale_after = getattr(hub, "store", None), getattr(hub, "stale_after", None)
    if store is None or stale_after is None or not hasattr(store, "read"):
        return None
    tag, mod = f'$."{tag_name(rollout_id)}"', f'$."{module.replace(chr(34), "")}"'
    if getattr(hub, "module", None) == module:  # the hub mirrors this module's state and digest in columns
        state_digest, params = "NULLIF(cur_state, ''), cur_digest", [tag]
    else:
        state_digest = "json_extract(reported, ? || '.state'), json_extract(reported, ? || '.digest')"
        params = [tag, mod, mod]
    with store.read() as conn:
        rows = conn.execute(
            f"SELECT device_id, json_extract(tags, ?), {state_digest},"
            " json_extract(reported, ? || '.bytes_downloaded'), json_extract(reported, ? || '.updated'),"
            " connected, last_seen, json_extract(reported, ? || '.error')"
            " FROM devices WHERE json_type(tags, ?) = 'text' AND json_extract(tags, ?) != ''",
            (*params, mod, mod, mod, tag, tag),
        ).fetchall()
    fresh_after = time.time() - stale_after
    out: dict[str, DeviceView] = {}
    for device_id, value, state, digest, nbytes, updated, connected, last_seen, error in rows:
        online = bool(connected) and last_seen >= fresh_after
        out[device_id] = DeviceView(device_id, value, (state or "pending") if online else "offline", digest or "",
                                    int(nbytes or 0), float(updated or 0.0), online, (), str(error or ""))
    return out


def gate_opened(journal: Any, rollout_id: str, wave: int) -> float | None:
    """When `wave`'s gate opened: its tagging finished, or the operator's retry reopened it
    (the gate's timeout counts from there). The engine judges by it; the console shows it."""
    retries = journal.events(rollout_id, "retry")
    reopened = {e.seq for e in retries if e.phase == "intent" and e.data.get("reopen")}
    done = [e.ts for e in journal.events(rollout_id, "target") + retries
            if e.phase == "done" and e.wave == wave and (e.kind == "target" or e.data.get("intent") in reopened)]
    return max(done) if done else None


def count_outcomes(device_ids: Iterable[str], expected: dict[str, str], views: dict[str, DeviceView], started: float,
                   deployments: dict[str, str] | None = None, since: dict[str, float] | None = None,
                   ok_state: str = "running") -> tuple[int, int]:
    """(running the digest their variant pins, failed) among `device_ids`, on reports made
    since `started` — or since the device's own retry (`since`) — or, for running, confirmed
    by the hub applying the variant."""
    running = failed = 0
    for device_id in device_ids:
        view = views.get(device_id)
        if view is None:
            continue
        fresh = view.updated >= max(started, (since or {}).get(device_id, 0.0))
        confirmed = bool(deployments) and deployments.get(device_id, "") in view.applied  # type: ignore[union-attr]
        if view.state == ok_state and view.digest == expected[device_id] and (fresh or confirmed):
            running += 1
        elif view.state == "failed" and fresh:
            failed += 1
    return running, failed


def judge(
    policy: Policy, device_ids: Iterable[str], expected: dict[str, str], views: dict[str, DeviceView],
    started: float, now: float, deployments: dict[str, str] | None = None, timeout_from: float | None = None,
    since: dict[str, float] | None = None, retrying: Iterable[str] = (), ok_state: str = "running",
) -> GateResult | None:
    """`expected`: device id → the digest its variant pins; `deployments`: device id → its
    variant's deployment id. `started` is by the hub's clock; `now` and `timeout_from` by
    ours. `retrying`: failed devices the engine will try again (not failures yet); `ok_state`:
    the reported state that counts as done (`stopped` for a pre-staged module). None while
    undecided."""
    ids = list(device_ids)
    size = len(ids)
    waiting = set(retrying)  # failed, with a retry still to come: neither failed nor running yet
    running, failed = count_outcomes([d for d in ids if d not in waiting], expected, views, started, deployments, since,
                                     ok_state)
    finished = running + failed
    needed = policy.needed_running(size)

    def result(passed: bool, reason: str) -> GateResult:
        return GateResult(passed, running, failed, finished, size, needed, reason)

    if policy.failure_exceeded(failed, finished, size):
        return result(False, f"{failed} of {finished} finished devices failed (limit {policy.max_failed})")
    if running >= needed:
        return result(True, f"{running} of {size} running the new image (needed {needed})")
    if now - (timeout_from if timeout_from is not None else started) >= policy.gate_timeout:
        return result(False, f"gate timeout after {policy.gate_timeout:g}s: {running} of {size} running, needed {needed}")
    return None
