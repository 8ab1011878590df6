"""`LocalHub`: the embedded fleet hub — device twins and deployments in one SQLite file.

Implements `FleetHub`: devices and tags here, deployments in `local_deployments.py`;
and `DeviceSide` (device agents) in `local_devices.py`. Many processes may open the same file at once (see local_store).

Invariants:
- tags are merge-patched like IoT Hub twins (a None value removes a key); each tag
  change bumps the twin's version, whose text is the ETag; a write with a stale ETag
  raises Conflict and changes nothing. Reported state does not move the ETag (a device
  reporting progress must not make an operator's tag write fail);
- a device's effective desired modules are materialised (local_desired) in the same
  transaction as the tag or deployment change that moves them;
- a device is online while it says it is connected and was seen within `stale_after`
  seconds; otherwise its twin reads `connected=False` and its state is "offline";
- query pages are ordered by device id; the continuation token is the last id returned.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from fleet_tui.errors import Conflict, NotFound, UsageError
from fleet_tui.hub.facts import FactGroup
from fleet_tui.hub.local_deployments import DeploymentsMixin
from fleet_tui.hub.local_desired import DesiredState
from fleet_tui.hub.local_devices import DeviceSideMixin
from fleet_tui.hub.local_facts import local_fact_groups
from fleet_tui.hub.local_listing import LocalListing
from fleet_tui.hub.local_store import (
    PLAN_MIRROR_SQL,
    Store,
    check_tags,
    dumps,
    group_of,
    modules_from_json,
    reports_from_json,
)
from fleet_tui.hub.protocol import DeviceTwin, GroupSummary, Page, iter_pages
from fleet_tui.hub.query import parse
from fleet_tui.hub.query_sql import compile_sql

if TYPE_CHECKING:
    from fleet_tui.hub.local_listing import LocalListing

TWIN_COLUMNS = (
    "d.device_id, d.tags, d.version, d.deployment_id, d.reported, d.connected, d.last_seen, p.seq, p.modules"
)
TWIN_FROM = "devices d LEFT JOIN deployments p ON p.id = d.deployment_id"


class LocalHub(DeploymentsMixin, DeviceSideMixin):
    """The embedded hub. `stale_after`: seconds without a report before a device counts
    as offline."""

    def __init__(
        self, path: str | Path, group_tag: str = "fleetGroup", module: str = "scoring", stale_after: float = 300.0,
        shard_tag: str = "fleetShard",
    ) -> None:
        self.path = Path(path)
        self.group_tag = group_tag
        self.shard_tag = shard_tag  # set at enrollment (hub/shards.py); "" = none
        self.module = module
        self.stale_after = stale_after
        self.store = Store(self.path)
        self.desired = DesiredState(self.store, group_tag)
        self._modules_cache: dict[int, dict[str, Any]] = {}
        with self.store.read() as conn:
            adopted = (self.store.meta(conn, "group_tag"), self.store.meta(conn, "module"),
                       self.store.meta(conn, "plans")) == (group_tag, module, "1")
        if not adopted:  # only then write: opening the hub to read it must not take the write lock
            with self.store.write() as conn:
                self._adopt_settings(conn)

    reports_bytes = True  # devices report bytes downloaded

    def now(self) -> float:
        """The hub's clock: this machine's (devices and engine share it)."""
        return time.time()

    @classmethod
    def from_config(cls, config: Any) -> "LocalHub":
        return cls(config.hub_path(), group_tag=config.hub.group_tag, module=config.hub.module,
                   shard_tag=config.hub.shard_tag)

    def _adopt_settings(self, conn: sqlite3.Connection) -> None:
        """Recompute the mirror columns if this file was last used with another group tag
        or managed module (all processes sharing a file should share the config)."""
        if self.store.meta(conn, "group_tag", self.group_tag) != self.group_tag:
            path = f'$."{self.group_tag}"'
            conn.execute(
                "UPDATE devices SET grp = CASE WHEN json_type(tags, ?) = 'text' THEN json_extract(tags, ?) END",
                (path, path),
            )
            self.desired.bump(conn)  # compiled conditions use grp
            self.desired.refresh_all(conn)
        if self.store.meta(conn, "module", self.module) != self.module or self.store.meta(conn, "plans") != "1":
            path = f'$."{self.module}"'
            conn.execute(
                "UPDATE devices SET cur_digest = IFNULL(json_extract(reported, ?1 || '.digest'), ''),"
                " cur_state = IFNULL(json_extract(reported, ?1 || '.state'), '')",
                (path,),
            )
            conn.execute(f"INSERT OR IGNORE INTO plans (text) SELECT DISTINCT {PLAN_MIRROR_SQL} FROM devices "
                         f"WHERE {PLAN_MIRROR_SQL} != ''", (path,))
            conn.execute(f"UPDATE devices SET plan_id = IFNULL((SELECT id FROM plans WHERE text = {PLAN_MIRROR_SQL}), 0)",
                         (path,))
            self.store.set_meta(conn, "plans", "1")
        self.store.set_meta(conn, "group_tag", self.group_tag)
        self.store.set_meta(conn, "module", self.module)

    # --- reading twins -------------------------------------------------------------

    def _modules(self, seq: int | None, text: str | None) -> dict[str, Any]:
        if seq is None or text is None:
            return {}
        cached = self._modules_cache.get(seq)  # content is immutable per deployment seq
        if cached is None:
            cached = self._modules_cache[seq] = modules_from_json(text)
        return cached

    def _twin(self, row: tuple[Any, ...], now: float) -> DeviceTwin:
        device_id, tags, version, dep_id, reported, connected, last_seen, seq, modules = row
        return DeviceTwin(
            device_id=device_id,
            tags=json.loads(tags),
            desired=dict(self._modules(seq, modules)),
            deployment_id=dep_id,
            applied=(dep_id,) if dep_id else (),
            reported=reports_from_json(reported),
            connected=bool(connected) and last_seen >= now - self.stale_after,
            last_seen=last_seen,
            etag=str(version),
        )

    def get_device(self, device_id: str) -> DeviceTwin:
        with self.store.lock:
            row = self.store.conn.execute(
                f"SELECT {TWIN_COLUMNS} FROM {TWIN_FROM} WHERE d.device_id = ?", (device_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"device {device_id!r} is not in the hub at {self.path}")
        return self._twin(row, time.time())

    def query_devices(
        self, condition: str | None = None, page_size: int = 1000, continuation: str | None = None
    ) -> Page:
        if page_size < 1:
            raise UsageError(f"page size must be at least 1, not {page_size}")
        # unqualified columns (device_id, tags, grp) exist only in `devices` of the join
        where, params = compile_sql(parse(condition or "*"), self.group_tag)
        after = _decode_token(continuation) if continuation else ""
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT {TWIN_COLUMNS} FROM {TWIN_FROM} WHERE d.device_id > ? AND ({where}) "
                "ORDER BY d.device_id LIMIT ?",
                [after, *params, page_size + 1],
            ).fetchall()
        now = time.time()
        items = [self._twin(r, now) for r in rows[:page_size]]
        token = _encode_token(items[-1].device_id) if len(rows) > page_size else None
        return Page(items, token)

    def iter_devices(self, condition: str | None = None) -> Iterator[DeviceTwin]:
        return iter_pages(self.query_devices, condition)

    def fact_groups(self, condition: str, module: str, site_tag: str = "") -> Iterator[FactGroup]:
        """What planning needs of each device, grouped in SQL (fleet_tui.hub.local_facts)."""
        return local_fact_groups(self, condition, module, site_tag)

    def listing(self) -> "LocalListing":
        """Screenful-at-a-time device lists in SQL (fleet_tui.hub.local_listing)."""
        return LocalListing(self)

    def count_by_tag(self, condition: str, tag: str) -> dict[str, int]:
        """Devices matching `condition` per value of `tags.<tag>` (devices without it: left out)."""
        where, params = compile_sql(parse(condition or "*"), self.group_tag)
        path = f'$."{_json_key(tag)}"'
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT json_extract(d.tags, ?), COUNT(*) FROM {TWIN_FROM} WHERE ({where}) "
                "AND json_type(d.tags, ?) = 'text' GROUP BY 1", [path, *params, path]).fetchall()
        return {str(value): int(n) for value, n in rows}

    def group_summaries(self, module: str) -> list[GroupSummary]:
        if module == self.module:
            digest, table = "cur_digest", "devices INDEXED BY devices_summary"
        else:
            digest, table = f"IFNULL(json_extract(reported, '$.\"{_json_key(module)}\".digest'), '')", "devices"
        with self.store.lock:
            rows = self.store.conn.execute(
                f"SELECT grp, {digest}, COUNT(*), TOTAL(connected = 1 AND last_seen >= ?) "
                f"FROM {table} GROUP BY grp, 2",
                (time.time() - self.stale_after,),
            ).fetchall()
        groups: dict[str, dict[str, Any]] = {}
        for name, dig, count, online in rows:
            g = groups.setdefault(name or "", {"devices": 0, "online": 0, "images": {}})
            g["devices"] += count
            g["online"] += int(online)
            if dig:
                g["images"][dig] = g["images"].get(dig, 0) + count
        return [
            GroupSummary(name, g["devices"], g["images"], g["online"], g["devices"] - g["online"])
            for name, g in sorted(groups.items())
        ]

    # --- tags ----------------------------------------------------------------------

    def _patch_sql(self, tags: dict[str, Any]) -> tuple[str, list[Any]]:
        check_tags(tags)
        sets, params = "tags = json_patch(tags, ?), version = version + 1", [dumps(tags)]
        if self.group_tag in tags:
            sets += ", grp = ?"
            params.append(group_of(tags, self.group_tag))
        return sets, params

    def update_tags(self, device_id: str, tags: dict[str, Any], etag: str | None = None) -> DeviceTwin:
        sets, params = self._patch_sql(tags)
        with self.store.write() as conn:
            row = conn.execute("SELECT version FROM devices WHERE device_id = ?", (device_id,)).fetchone()
            if row is None:
                raise NotFound(f"device {device_id!r} is not in the hub at {self.path}")
            if etag not in (None, "*") and etag != str(row[0]):
                raise Conflict(
                    f"device {device_id!r} changed since it was read (etag {etag} is stale, now {row[0]}); re-read and retry"
                )
            conn.execute(f"UPDATE devices SET {sets} WHERE device_id = ?", [*params, device_id])
            self.desired.refresh_ids(conn, [device_id])
        return self.get_device(device_id)

    def bulk_update_tags(self, device_ids: Sequence[str], tags: dict[str, Any]) -> int:
        sets, params = self._patch_sql(tags)
        ids = list(dict.fromkeys(device_ids))
        with self.store.write() as conn:
            count = conn.execute(
                f"UPDATE devices SET {sets} WHERE device_id IN (SELECT value FROM json_each(?))",
                [*params, json.dumps(ids)],
            ).rowcount
            self.desired.refresh_ids(conn, ids)
        return count

    def close(self) -> None:
        self.store.close()


def _json_key(name: str) -> str:
    return name.replace('"', "")


def _encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def _decode_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("after:"):
        raise UsageError(f"continuation token {token[:40]!r} is not one this hub issued; start the query again")
    return text[len("after:"):]
