"""SQLite plumbing of the local hub: connection, schema, transactions (via
fleet_tui.sqlite_tx, shared with the rollout journal), row codecs.

Invariants:
- one SQLite file in WAL mode shared by many processes (device agents, rollout engine,
  UI): readers never block writers; every write is one short `BEGIN IMMEDIATE`
  transaction (so a read-modify-write never fails half-way on a lock upgrade), and a
  busy database is waited for (busy_timeout) instead of failing;
- a connection belongs to the process that opened it (open a new LocalHub after fork);
  within a process a lock serialises its use, so worker threads may share the hub;
- `grp` mirrors `tags.<group_tag>` when that tag is text (else NULL), and
  `cur_digest`/`cur_state` mirror the managed module's reported digest and state, and
  `plan_id` what planning needs of its report (`plan_mirror`: image, digest, platform,
  cached images, link) as a row of `plans` (0: no report); all are recomputed when a process
  opens the file with another group tag or module (a file from before `plan_id` gains it then).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, ContextManager

from fleet_tui.errors import RemoteError, UsageError
from fleet_tui.hub.protocol import ModuleReport, ModuleSpec
from fleet_tui.sqlite_tx import ensure_schema, open_wal, read_tx, write_tx

BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    tags          TEXT NOT NULL DEFAULT '{}',
    grp           TEXT,
    version       INTEGER NOT NULL DEFAULT 1,
    deployment_id TEXT NOT NULL DEFAULT '',
    reported      TEXT NOT NULL DEFAULT '{}',
    cur_digest    TEXT NOT NULL DEFAULT '',
    cur_state     TEXT NOT NULL DEFAULT '',
    plan_id       INTEGER NOT NULL DEFAULT 0,
    connected     INTEGER NOT NULL DEFAULT 0,
    last_seen     REAL NOT NULL DEFAULT 0
);
-- covers group_summaries (and counts by state per group): one index scan, no table access
CREATE INDEX IF NOT EXISTS devices_summary ON devices (grp, cur_digest, cur_state, connected, last_seen);
-- a group's devices in id order: the console's first screenful reads ~100 rows of a 1M group
CREATE INDEX IF NOT EXISTS devices_group_id ON devices (grp, device_id);
CREATE INDEX IF NOT EXISTS devices_deployment ON devices (deployment_id);
-- what planning reads of a group (fleet_tui.hub.local_facts): one scan of this index, no table access
CREATE INDEX IF NOT EXISTS devices_plan ON devices (grp, plan_id, connected, last_seen, deployment_id, device_id);
-- the distinct plan mirrors (plan_mirror): a 1,000,000-device fleet has a handful
CREATE TABLE IF NOT EXISTS plans (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS deployments (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    target_condition TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    modules          TEXT NOT NULL,
    labels           TEXT NOT NULL DEFAULT '{}',
    created          REAL NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1
);
"""


class Store:
    """A connection to the hub file with the pragmas and transaction helpers set up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._plan_ids: dict[str, int] = {"": 0}
        try:
            self.conn = open_wal(path, BUSY_TIMEOUT_S, "NORMAL")
            self._add_columns()
            ensure_schema(self.conn, self.lock, SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise RemoteError(f"local hub {path} cannot be opened ({exc}); check hub.path in the config") from None

    def _add_columns(self) -> None:
        """Columns a file from an older fleet-tui lacks, added before the schema's indexes need them."""
        with read_tx(self.conn, self.lock) as c:
            columns = {row[1] for row in c.execute("PRAGMA table_info(devices)")}
        if columns and "plan_id" not in columns:
            with write_tx(self.conn, self.lock) as c:
                c.execute("ALTER TABLE devices ADD COLUMN plan_id INTEGER NOT NULL DEFAULT 0")

    def plan_id(self, conn: sqlite3.Connection, mirror: str) -> int:
        """The `plans` row of a plan mirror, added when new (inside the caller's write)."""
        known = self._plan_ids.get(mirror)
        if known is None:
            conn.execute("INSERT OR IGNORE INTO plans (text) VALUES (?)", (mirror,))
            known = self._plan_ids[mirror] = int(conn.execute("SELECT id FROM plans WHERE text = ?", (mirror,))
                                                 .fetchone()[0])
        return known

    def write(self) -> ContextManager[sqlite3.Connection]:
        """One short `BEGIN IMMEDIATE` write transaction (fleet_tui.sqlite_tx)."""
        return write_tx(self.conn, self.lock)

    def read(self) -> ContextManager[sqlite3.Connection]:
        """A consistent snapshot for several reads (WAL: never blocks writers)."""
        return read_tx(self.conn, self.lock)

    def meta(self, conn: sqlite3.Connection, key: str, default: str = "") -> str:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self.lock:
            self.conn.close()


# --- codecs ----------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def modules_to_json(modules: dict[str, ModuleSpec]) -> str:
    return dumps({m.name: {"image": m.image, "create_options": m.create_options,
                           **({"definition": m.definition} if m.definition else {})} for m in modules.values()})


def modules_from_json(text: str) -> dict[str, ModuleSpec]:
    return {name: ModuleSpec(name, m["image"], m.get("create_options", ""), m.get("definition") or {})
            for name, m in json.loads(text).items()}


def reports_to_json(reports: dict[str, ModuleReport], now: float) -> str:
    return dumps(
        {
            r.name: {
                "image": r.image, "digest": r.digest, "state": r.state,
                "bytes_downloaded": r.bytes_downloaded, "error": r.error, "updated": r.updated or now,
                **({"platform": r.platform} if r.platform else {}),
                **({"cached": list(r.cached)} if r.cached else {}),
                **({"link": r.link} if r.link else {}),
            }
            for r in reports.values()
        }
    )


def plan_mirror(report: ModuleReport | None) -> str:
    """The `cur_plan` column: `[image, digest, platform, cached, link]` of the managed module's
    report, as JSON ("" when the module reports nothing)."""
    if report is None:
        return ""
    return json.dumps([report.image, report.digest, report.platform, list(report.cached), report.link],
                      separators=(",", ":"))


PLAN_MIRROR_SQL = (  # plan_mirror in SQL, over `reported` and the module's JSON path (?1)
    "CASE WHEN json_type(reported, ?1) = 'object' THEN json_array("
    "IFNULL(json_extract(reported, ?1 || '.image'), ''), IFNULL(json_extract(reported, ?1 || '.digest'), ''), "
    "IFNULL(json_extract(reported, ?1 || '.platform'), ''), json(IFNULL(json_extract(reported, ?1 || '.cached'), '[]')), "
    "IFNULL(json_extract(reported, ?1 || '.link'), '')) ELSE '' END"
)


def reports_from_json(text: str) -> dict[str, ModuleReport]:
    return {name: ModuleReport(name=name, **{**r, "cached": tuple(r.get("cached") or ())})
            for name, r in json.loads(text).items()}


def group_of(tags: dict[str, Any], group_tag: str) -> str | None:
    value = tags.get(group_tag)
    return value if isinstance(value, str) else None


def check_tags(tags: dict[str, Any], where: str = "tags") -> None:
    if not isinstance(tags, dict):
        raise UsageError(f"{where} must be an object of name → value, not {type(tags).__name__}")
    for key, value in tags.items():
        if not isinstance(key, str) or not key or any(c in key for c in ". $\"") or len(key) > 128:
            raise UsageError(f"tag name {key!r} in {where} is invalid: no dots, spaces, quotes or $")
        if isinstance(value, dict):
            check_tags(value, f"{where}.{key}")
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise UsageError(f"tag {where}.{key} must be text, a number, true/false or an object")
