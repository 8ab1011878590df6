"""SQLite plumbing shared by the local hub and the rollout journal: open a file in WAL mode
that many processes share, and run short transactions on one connection per process.

Invariants:
- a connection is in autocommit mode (`isolation_level=None`): transactions are exactly
  the `BEGIN`s below, never ones the sqlite3 module opens behind our back;
- a write is one `BEGIN IMMEDIATE` transaction, so it holds the write lock from the start
  and a read-modify-write never fails half-way on a lock upgrade; an exception rolls it
  back and propagates;
- a busy database is waited for (busy_timeout), never failed on at once; switching a new
  file to WAL, which needs a moment of exclusive access, is retried as long.
Callers own the lock that serialises a connection's users within a process.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
Lock = AbstractContextManager[object]  # a threading.Lock or RLock


def retry_locked(fn: Callable[[], T], timeout: float) -> T:
    """Call `fn` until it stops failing with "database is locked", for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_wal(path: Path, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """A connection to `path` (created with its parent dirs) in WAL mode; `synchronous` is
    the pragma's value (NORMAL, FULL). Raises sqlite3.DatabaseError or OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"), busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_tx(conn: sqlite3.Connection, lock: Lock) -> Iterator[sqlite3.Connection]:
    """One short write transaction, taken with the write lock up front."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def read_tx(conn: sqlite3.Connection, lock: Lock) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for several reads (WAL: never blocks writers)."""
    with lock:
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")


def ensure_schema(conn: sqlite3.Connection, lock: Lock, schema: str) -> None:
    """Create what `schema` (`CREATE … IF NOT EXISTS` statements) names and the file lacks.
    When everything exists nothing is written, so opening a file only to read it never takes
    the write lock (a reader must not wait behind a writer, nor fail on a full disk)."""
    wanted = set(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", schema))
    with read_tx(conn, lock) as c:
        have = {name for (name,) in c.execute("SELECT name FROM sqlite_master")}
    if wanted <= have:
        return
    with write_tx(conn, lock) as c:
        for statement in schema.split(";"):
            if statement.strip():
                c.execute(statement)
