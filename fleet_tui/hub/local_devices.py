"""The device side of the local hub: registering devices, polling desired state, reporting.

One process may simulate 10,000 devices, so every call has a batch form that does its
work in one statement or one transaction (`desired_for_many`, `report_many`,
`register_devices`) instead of one round trip per device.

Invariants: registration is idempotent (an existing device keeps its tags and state);
a report replaces the device's whole reported module map, stamps `updated` on module
reports that carry none, sets last seen to now, and mirrors the managed module's digest
and state into the indexed columns in the same statement.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from fleet_tui.errors import NotFound, UsageError
from fleet_tui.hub.local_store import check_tags, dumps, group_of, plan_mirror, reports_to_json
from fleet_tui.hub.protocol import ModuleReport, ModuleSpec

if TYPE_CHECKING:
    from fleet_tui.hub.local_desired import DesiredState
    from fleet_tui.hub.local_store import Store

from fleet_tui.hub.shards import shard_of

DEVICE_ID = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
_CHUNK = 5000  # ids per statement: json_each keeps it one parameter, this bounds memory


class DeviceSideMixin:
    store: "Store"
    desired: "DesiredState"
    group_tag: str
    shard_tag: str
    module: str

    def _modules(self, seq: int | None, text: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def register_devices(self, devices: Iterable[tuple[str, dict[str, Any]]]) -> int:
        rows = []
        for device_id, tags in devices:
            if not isinstance(device_id, str) or not DEVICE_ID.match(device_id):
                raise UsageError(
                    f"device id {device_id!r} is invalid: use up to 128 letters, digits and -.%_*?!(),:=@$'"
                )
            check_tags(tags)
            clean = {k: v for k, v in tags.items() if v is not None}
            if self.shard_tag:  # enrollment writes the stable shard (hub/shards.py), once
                clean.setdefault(self.shard_tag, shard_of(device_id))
            rows.append((device_id, dumps(clean), group_of(clean, self.group_tag)))
        with self.store.write() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO devices (device_id, tags, grp) VALUES (?, ?, ?)", rows)
            added = conn.total_changes - before
            if added:
                ids = [r[0] for r in rows]
                for i in range(0, len(ids), _CHUNK):
                    self.desired.refresh_ids(conn, ids[i : i + _CHUNK])
        return added

    def desired_for(self, device_id: str) -> tuple[str, dict[str, ModuleSpec]]:
        found = self.desired_for_many([device_id])
        if device_id not in found:
            raise NotFound(f"device {device_id!r} is not registered in the hub; register it first")
        return found[device_id]

    def desired_for_many(self, device_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, ModuleSpec]]]:
        out: dict[str, tuple[str, dict[str, ModuleSpec]]] = {}
        ids = list(device_ids)
        with self.store.read() as conn:
            for i in range(0, len(ids), _CHUNK):
                rows = conn.execute(
                    "SELECT d.device_id, d.deployment_id, p.seq, p.modules FROM devices d "
                    "LEFT JOIN deployments p ON p.id = d.deployment_id "
                    "WHERE d.device_id IN (SELECT value FROM json_each(?))",
                    (json.dumps(ids[i : i + _CHUNK]),),
                ).fetchall()
                for device_id, dep_id, seq, modules in rows:
                    out[device_id] = (dep_id, dict(self._modules(seq, modules)))
        return out

    def report(self, device_id: str, modules: dict[str, ModuleReport], connected: bool = True) -> None:
        if self.report_many([(device_id, modules, connected)]) == 0:
            raise NotFound(f"device {device_id!r} is not registered in the hub; register it first")

    def report_many(self, reports: Iterable[tuple[str, dict[str, ModuleReport], bool]]) -> int:
        now = time.time()
        rows = []
        for device_id, modules, connected in reports:
            managed = modules.get(self.module)
            rows.append(
                (
                    reports_to_json(modules, now),
                    managed.digest if managed else "",
                    managed.state if managed else "",
                    plan_mirror(managed),  # → plan_id below, inside the write
                    1 if connected else 0,
                    now,
                    device_id,
                )
            )
        with self.store.write() as conn:
            rows = [(*r[:3], self.store.plan_id(conn, r[3]), *r[4:]) for r in rows]
            before = conn.total_changes
            conn.executemany(
                "UPDATE devices SET reported = ?, cur_digest = ?, cur_state = ?, plan_id = ?, connected = ?, last_seen = ? "
                "WHERE device_id = ?",
                rows,
            )
            return conn.total_changes - before
