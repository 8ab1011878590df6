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

import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from fleet_tui.errors import RemoteError, UsageError
from fleet_tui.secrets import Secret, redact

SCHEMA_VERSION = 1

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL, pid BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS waves (
    rollout_id TEXT NOT NULL, idx INTEGER NOT NULL, size BIGINT NOT NULL, state TEXT NOT NULL,
    started DOUBLE PRECISION, judged DOUBLE PRECISION, result TEXT, approved INTEGER NOT NULL DEFAULT 0,
    bake_until DOUBLE PRECISION, PRIMARY KEY (rollout_id, idx)
);
CREATE TABLE IF NOT EXISTS assignments (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, wave INTEGER NOT NULL, variant TEXT NOT NULL,
    prev_image TEXT NOT NULL, prev_digest TEXT NOT NULL, planned_bytes BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY, rollout_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    wave INTEGER, kind TEXT NOT NULL, phase TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_rollout ON events (rollout_id, kind);
CREATE TABLE IF NOT EXISTS finals (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL, bytes BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS commands (
    seq BIGSERIAL PRIMARY KEY, rollout_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, consumed DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS command_by (seq BIGINT PRIMARY KEY, who TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staged (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, bytes BIGINT NOT NULL, PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGSERIAL PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS warmed (
    site TEXT NOT NULL, digest TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (site, digest)
);
CREATE TABLE IF NOT EXISTS metered (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS leases (
    rollout_id TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,
    token BIGINT NOT NULL, since DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL
);
"""


def _sql(text: str) -> str:
    """sqlite3's `?` placeholders as psycopg's `%s` (a literal `%` doubled first)."""
    return text.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection that answers the sqlite3 calls the journal makes."""

    def __init__(self, url: str, password: Secret | None, connect_timeout: float) -> None:
        self.url, self.password, self.connect_timeout = url, password, connect_timeout
        self._conn: Any = None
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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        import psycopg

        conn = self.connect()
        try:
            return conn.execute(_sql(sql), tuple(params))
        except psycopg.OperationalError as exc:
            self._drop()
            raise self.error(exc) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        import psycopg

        rows = list(rows)
        if not rows:
            return
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.executemany(_sql(sql), rows)
        except psycopg.OperationalError as exc:
            self._drop()
            raise self.error(exc) from None

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
