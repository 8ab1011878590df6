"""Deployments of the local hub (IoT Hub "configurations"): create, read, retarget, delete.

Invariants: a deployment's modules content is immutable after creation (as on IoT Hub);
only its target condition, priority and labels change. Module images must be
digest-pinned (re-pushing a tag does not update IoT Edge devices). Every change that can
move devices between deployments bumps `deployments_rev` and re-materialises every
device's winner in the same transaction (local_desired).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from fleet_tui.errors import Conflict, NotFound, UsageError
from fleet_tui.hub.local_store import dumps, modules_from_json, modules_to_json
from fleet_tui.hub.protocol import Deployment
from fleet_tui.hub.query import parse

if TYPE_CHECKING:
    from fleet_tui.hub.local_desired import DesiredState
    from fleet_tui.hub.local_store import Store

DEPLOYMENT_ID = re.compile(r"^[a-z0-9\-:+%_#*?!(),=@;$']{1,128}$")
PINNED_IMAGE = re.compile(r"@sha256:[0-9a-f]{64}$")


class DeploymentsMixin:
    store: "Store"
    desired: "DesiredState"

    def _deployment(self, row: tuple[Any, ...]) -> Deployment:
        dep_id, condition, priority, modules, labels, created, version = row
        return Deployment(dep_id, condition, priority, modules_from_json(modules), json.loads(labels), created, str(version))

    _DEP_COLUMNS = "id, target_condition, priority, modules, labels, created, version"

    def create_deployment(self, deployment: Deployment) -> Deployment:
        d = deployment
        if not DEPLOYMENT_ID.match(d.id):
            raise UsageError(f"deployment id {d.id!r} is invalid: use up to 128 lowercase letters, digits and -:+%_#*?!(),=@;$'")
        _check_priority(d.priority)
        parse(d.target_condition)
        if not d.modules:
            raise UsageError(f"deployment {d.id!r} has no modules: give at least one module image")
        for spec in d.modules.values():
            if not PINNED_IMAGE.search(spec.image):
                raise UsageError(
                    f"module {spec.name!r} image {spec.image!r} is not digest-pinned: deploy repo@sha256:… "
                    "(re-pushing a tag does not update IoT Edge devices)"
                )
        with self.store.write() as conn:
            try:
                conn.execute(
                    "INSERT INTO deployments (id, target_condition, priority, modules, labels, created) VALUES (?,?,?,?,?,?)",
                    (d.id, d.target_condition, d.priority, modules_to_json(d.modules), dumps(d.labels), d.created or time.time()),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"deployment {d.id!r} already exists; its content is immutable, create a new id") from None
            self.desired.bump(conn)
            self.desired.refresh_all(conn)
        return self.get_deployment(d.id)

    def get_deployment(self, deployment_id: str) -> Deployment:
        with self.store.lock:
            row = self.store.conn.execute(
                f"SELECT {self._DEP_COLUMNS} FROM deployments WHERE id = ?", (deployment_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist; see list_deployments")
        return self._deployment(row)

    def list_deployments(self) -> list[Deployment]:
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT {self._DEP_COLUMNS} FROM deployments ORDER BY priority DESC, created DESC, seq DESC"
            ).fetchall()
        return [self._deployment(r) for r in rows]

    def update_deployment(
        self,
        deployment_id: str,
        *,
        target_condition: str | None = None,
        priority: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> Deployment:
        if target_condition is not None:
            parse(target_condition)
        if priority is not None:
            _check_priority(priority)
        with self.store.write() as conn:
            cur = conn.execute(
                "UPDATE deployments SET target_condition = IFNULL(?, target_condition),"
                " priority = IFNULL(?, priority), labels = IFNULL(?, labels), version = version + 1 WHERE id = ?",
                (target_condition, priority, dumps(labels) if labels is not None else None, deployment_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"deployment {deployment_id!r} does not exist; see list_deployments")
            if target_condition is not None or priority is not None:  # labels never move devices
                self.desired.bump(conn)
                self.desired.refresh_all(conn)
        return self.get_deployment(deployment_id)

    def delete_deployment(self, deployment_id: str) -> None:
        with self.store.write() as conn:
            if conn.execute("DELETE FROM deployments WHERE id = ?", (deployment_id,)).rowcount == 0:
                raise NotFound(f"deployment {deployment_id!r} does not exist; see list_deployments")
            self.desired.bump(conn)
            self.desired.refresh_all(conn)


def _check_priority(priority: Any) -> None:
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        raise UsageError(f"deployment priority must be a whole number ≥ 0, not {priority!r}")
