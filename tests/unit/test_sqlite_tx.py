"""fleet_tui.sqlite_tx: WAL open, BEGIN IMMEDIATE writes that roll back on error, snapshot
reads, and the "database is locked" retry — shared by the local hub and the journal."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from fleet_tui.sqlite_tx import open_wal, read_tx, retry_locked, write_tx


def test_open_wal_creates_dirs_and_sets_pragmas(tmp_path):
    conn = open_wal(tmp_path / "a" / "b.sqlite", 5.0, "FULL")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    conn.close()


def test_write_commits_and_rolls_back_on_error(tmp_path):
    conn, lock = open_wal(tmp_path / "t.sqlite", 5.0, "NORMAL"), threading.RLock()
    with write_tx(conn, lock) as c:
        c.execute("CREATE TABLE t (x INTEGER)")
        c.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ValueError):
        with write_tx(conn, lock) as c:
            c.execute("INSERT INTO t VALUES (2)")
            raise ValueError("half-way")
    with read_tx(conn, lock) as c:
        assert c.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert not conn.in_transaction
    conn.close()


def test_retry_locked_waits_out_a_lock_but_not_other_errors():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert retry_locked(flaky, 5.0) == "ok" and len(calls) == 3
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_locked(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("no such table: x")), 5.0)
