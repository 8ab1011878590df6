"""The journal's two databases behind one small connection API: the embedded SQLite file (the
default) and a team's PostgreSQL server (psycopg 3).

`Journal` writes one SQL text for both: `?` placeholders, `COALESCE`, `INSERT … ON CONFLICT …
DO UPDATE`, `RETURNING seq` (SQLite ≥ 3.35 reads all of it). `PgConnection` turns `?` into
psycopg's `%s` and keeps the sqlite3 calls the journal makes (`execute` returning a cursor,
`executemany`), so nothing above this file knows which database it talks to.

Invariants (PostgreSQL):
- the connection is in autocommit; a write is one `BEGIN … COMMIT` (`write_tx`), rolled back on
  any exception; reads outside it see committed data only;
- a lost connection (server restart, network drop) surfaces as `RemoteError` naming the server
  (never its password) and the next call reconnects — the engine retries a step on it;
- the schema is versioned (`schema_version`): opening checks it and says what to do when it is
  missing, older or newer; only `create_schema` (`fleet-tui journal init`) writes DDL, and it is
  idempotent.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from fleet_tui.errors import RemoteError, UsageError
from fleet_tui.secrets import Secret, redact

SCHEMA_VERSION = 1

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS waves (
    rollout_id TEXT NOT NULL, idx INTEGER NOT NULL, size INTEGER NOT NULL, state TEXT NOT NULL,
    started REAL, judged REAL, result TEXT, approved INTEGER NOT NULL DEFAULT 0, bake_until REAL,
    PRIMARY KEY (rollout_id, idx)
);
CREATE TABLE IF NOT EXISTS assignments (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, wave INTEGER NOT NULL, variant TEXT NOT NULL,
    prev_image TEXT NOT NULL, prev_digest TEXT NOT NULL, planned_bytes INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL, ts REAL NOT NULL,
    wave INTEGER, kind TEXT NOT NULL, phase TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_rollout ON events (rollout_id, kind);
CREATE TABLE IF NOT EXISTS finals (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS commands (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL, ts REAL NOT NULL,
    kind TEXT NOT NULL, consumed REAL
);
CREATE TABLE IF NOT EXISTS command_by (seq INTEGER PRIMARY KEY, who TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staged (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS warmed (
    site TEXT NOT NULL, digest TEXT NOT NULL, ts REAL NOT NULL, PRIMARY KEY (site, digest)
);
CREATE TABLE IF NOT EXISTS metered (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (rollout_id, device_id)
);
"""

# PostgreSQL's own tables: the schema's version, and the leases of a shared journal (lease.py)
PG_ONLY = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    rollout_id TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,
    token BIGINT NOT NULL, since DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL
);
"""


def pg_schema(sqlite_schema: str) -> str:
    """The journal's tables in PostgreSQL's types, from the one SQLite text (so the two cannot
    drift): an autoincrement key becomes BIGSERIAL, REAL DOUBLE PRECISION (PostgreSQL's REAL is
    4 bytes: a timestamp would lose its seconds), INTEGER BIGINT (byte counts pass 2^31)."""
    text = sqlite_schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
    return PG_ONLY + re.sub(r"\bINTEGER\b", "BIGINT", text)


PG_SCHEMA = pg_schema(SQLITE_SCHEMA)


def _sql(text: str) -> str:
    """sqlite3's `?` placeholders as psycopg's `%s` (a literal `%` doubled first)."""
    return text.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection that answers the sqlite3 calls the journal makes."""

    def __init__(self, url: str, password: Secret | None, connect_timeout: float) -> None:
        self.url, self.password, self.connect_timeout = url, password, connect_timeout
        self._conn: Any = None
        self._in_tx = False
        self.lock = threading.RLock()
        self.connect()

    def connect(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, int(self.connect_timeout)),
                                  "application_name": "fleet-tui"}
        if self.password:
            kwargs["password"] = self.password.reveal()
        try:
            self._conn = psycopg.connect(self.url, **kwargs)
        except psycopg.Error as exc:
            raise self.error(exc) from None
        return self._conn

    def error(self, exc: BaseException) -> RemoteError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1 if "FATAL" in str(exc) else 0]
        text = redact(first.strip())
        if "password authentication failed" in text or "no password supplied" in text:
            return RemoteError(f"journal {self.url}: {text}; check the password in the variable named by "
                               "[journal] password_env (or password_file)")
        if "does not exist" in text and "database" in text:
            return RemoteError(f"journal {self.url}: {text}; create it (createdb) or fix [journal] url")
        return RemoteError(f"journal {self.url} is unreachable ({text}); check the server and [journal] url")

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(connection)` under the lock (threads share this connection); a lost connection
        is a `RemoteError` and is reopened by the next call — except inside a transaction, whose
        first half would be gone: that one fails whole instead."""
        import psycopg

        with self.lock:
            if self._conn is None and self._in_tx:
                raise RemoteError(f"journal {self.url}: the connection was lost in the middle of a transaction")
            conn = self.connect()
            try:
                return fn(conn)
            except psycopg.OperationalError as exc:
                self._drop()
                raise self.error(exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._call(lambda conn: conn.execute(_sql(sql), tuple(params)))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._call(lambda conn: conn.cursor().executemany(_sql(sql), rows))

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
        self._conn = None

    def close(self) -> None:
        self._drop()

    @contextmanager
    def write_tx(self) -> Iterator["PgConnection"]:
        import psycopg

        with self.lock:
            self.execute("BEGIN")
            self._in_tx = True
            try:
                try:
                    yield self
                except BaseException:
                    try:
                        if self._conn is not None:
                            self._conn.execute("ROLLBACK")
                    except psycopg.Error:
                        self._drop()
                    raise
                self.execute("COMMIT")
            finally:
                self._in_tx = False

    # --- schema --------------------------------------------------------------------------
    def schema_version(self) -> int | None:
        """The journal schema's version (None: no fleet-tui schema in this database)."""
        row = self.execute("SELECT to_regclass('schema_version')").fetchone()
        if row is None or row[0] is None:
            return None
        found = self.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(found[0]) if found and found[0] is not None else None

    def check_schema(self) -> None:
        version = self.schema_version()
        if version is None:
            raise UsageError(f"journal {self.url} has no fleet-tui schema yet: run `fleet-tui journal init` once")
        if version < SCHEMA_VERSION:
            raise UsageError(f"journal {self.url} has schema version {version}, older than this fleet-tui's "
                             f"{SCHEMA_VERSION}: run `fleet-tui journal init` to migrate it")
        if version > SCHEMA_VERSION:
            raise UsageError(f"journal {self.url} has schema version {version}, newer than this fleet-tui knows "
                             f"({SCHEMA_VERSION}): upgrade fleet-tui on this host")

    def create_schema(self) -> tuple[int | None, int]:
        """Create or migrate the schema (idempotent): (version before, version now)."""
        before = self.schema_version()
        if before is not None and before > SCHEMA_VERSION:
            self.check_schema()
        with self.write_tx():
            self.execute("SELECT pg_advisory_xact_lock(7316001)")  # two inits at once: one creates
            for statement in PG_SCHEMA.split(";"):
                if statement.strip():
                    self.execute(statement)
            self.execute("DELETE FROM schema_version")
            self.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        return before, SCHEMA_VERSION

    def now(self) -> float:
        """The server's clock (every host judges a lease by the same one)."""
        return float(self.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
