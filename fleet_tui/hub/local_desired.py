"""Materialised desired state of the local hub: which deployment each device runs.

IoT Edge rule: a device runs the highest-priority deployment whose target condition
matches its twin; on equal priority the later-created one wins. Evaluating every
deployment on every device poll would make 100,000 polling devices expensive, so the
winner is written into `devices.deployment_id` whenever it can change:
- tags change (one device, or thousands at once when a rollout widens its wave);
- a deployment is created, retargeted, reprioritised or deleted (all devices).
Then `desired_for` is one indexed lookup joined to the (immutable) deployment content.

Invariant: materialisation happens in the same transaction as the change that caused
it, so no reader ever sees tags and desired state out of step. The winner is chosen by
one SQL `CASE` over the deployments in precedence order, compiled from their conditions;
the compiled form is cached per process and rebuilt when `meta.deployments_rev` moves
(any process that changes deployments bumps it).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from fleet_tui.hub.local_store import Store
from fleet_tui.hub.query import parse
from fleet_tui.hub.query_sql import compile_sql

REV_KEY = "deployments_rev"


class DesiredState:
    def __init__(self, store: Store, group_tag: str) -> None:
        self.store = store
        self.group_tag = group_tag
        self._cache: tuple[str, str, list[Any]] | None = None  # (rev, CASE sql, params)

    def bump(self, conn: sqlite3.Connection) -> None:
        """Call inside the transaction that changed deployments."""
        rev = int(self.store.meta(conn, REV_KEY, "0")) + 1
        self.store.set_meta(conn, REV_KEY, str(rev))

    def winner_sql(self, conn: sqlite3.Connection) -> tuple[str, list[Any]]:
        """`CASE WHEN cond1 THEN id1 … ELSE '' END` in precedence order, and its params."""
        rev = self.store.meta(conn, REV_KEY, "0")
        if self._cache is None or self._cache[0] != rev:
            rows = conn.execute(
                "SELECT id, target_condition FROM deployments ORDER BY priority DESC, created DESC, seq DESC"
            ).fetchall()
            parts: list[str] = []
            params: list[Any] = []
            for dep_id, condition in rows:
                sql, cond_params = compile_sql(parse(condition), self.group_tag)
                parts.append(f"WHEN {sql} THEN ?")
                params.extend(cond_params + [dep_id])
            case = f"CASE {' '.join(parts)} ELSE '' END" if parts else "''"
            self._cache = (rev, case, params)
        return self._cache[1], list(self._cache[2])

    def refresh_all(self, conn: sqlite3.Connection) -> int:
        """Recompute every device's deployment; returns how many changed."""
        case, params = self.winner_sql(conn)
        cur = conn.execute(
            f"UPDATE devices SET deployment_id = {case} WHERE deployment_id IS NOT {case}", params + params
        )
        return cur.rowcount

    def refresh_ids(self, conn: sqlite3.Connection, device_ids: Sequence[str]) -> None:
        """Recompute the deployment of the given devices only. Callers have just written
        these rows, so rewriting them unconditionally is cheaper than evaluating the
        CASE twice to skip unchanged ones."""
        if not device_ids:
            return
        case, params = self.winner_sql(conn)
        conn.execute(
            f"UPDATE devices SET deployment_id = {case} WHERE device_id IN (SELECT value FROM json_each(?))",
            params + [json.dumps(list(device_ids))],
        )
