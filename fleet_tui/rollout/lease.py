"""One engine per rollout across hosts: a lease row with a fencing token, in a team's PostgreSQL
journal (what `EngineLock`'s flock is on one host).

- `acquire`: in one transaction (`SELECT … FOR UPDATE`), take the rollout's row if nobody holds
  it, its holder let it lapse (`expires` passed, by the server's clock — every host judges by the
  same one), its holder is a process of this very host that is gone (a kill -9 here resumes at
  once, as with SQLite's flock), or it is this very lease; each take sets a new token, one more
  than the last;
- a thread renews it every third of its length (`UPDATE … WHERE token = mine`); a renewal that
  finds another token means another host took the rollout over: the lease is `lost`;
- `check` runs inside every write transaction the holding engine makes (`Journal._fenced`): it
  reads the row `FOR SHARE` and refuses (`Superseded`) unless the token is still this lease's —
  so an engine that was paused (a frozen VM, a long network cut) and wakes up after a takeover
  cannot write one event more, whatever its own clock says;
- `release` lets the lease lapse at once (`expires = 0`, only if the token is still ours).
What it does not guarantee: hub actions the old engine had already started when it was
superseded may still land (they are the write-ahead intents the new holder finishes anyway, and
hub actions are idempotent: deployments by id, tags by value).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

from fleet_tui.errors import Conflict, FleetError


class Superseded(Conflict):
    """This engine's lease was taken over: it must stop writing."""


class Lease:
    def __init__(self, journal: Any, rollout_id: str, ttl: float) -> None:
        self.journal, self.id, self.ttl = journal, rollout_id, float(ttl)
        self.host, self.pid = getattr(journal, "host_name", "") or socket.gethostname(), os.getpid()
        self.me = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.token: int | None = None
        self.lost = ""  # why the lease is gone ("" while held)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- taking and keeping it -------------------------------------------------------------
    def acquire(self, wait: float = 2.0) -> "Lease":
        deadline = time.monotonic() + wait
        while True:
            taken, other = self._try_take()
            if taken:
                break
            if time.monotonic() >= deadline:
                raise Conflict(f"rollout {self.id} is held by the engine on {other['host']} pid {other['pid']} "
                               f"(lease until {time.strftime('%H:%M:%S', time.localtime(other['expires']))}); another "
                               "host may take it over once that lapses (`fleet-tui rollout resume` then)")
            time.sleep(0.1)
        self.journal.fences[self.id] = self
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.id}", daemon=True)
        self._thread.start()
        return self

    def _try_take(self) -> tuple[bool, dict[str, Any]]:
        journal = self.journal
        with journal.tx() as conn:
            now = journal.pg.now()
            # a row to lock even for a rollout's first lease: two first takers then serialise on it
            conn.execute("INSERT INTO leases VALUES (?, '', '', 0, 0, 0, 0) ON CONFLICT (rollout_id) DO NOTHING",
                         (self.id,))
            row = conn.execute("SELECT holder, host, pid, token, expires FROM leases WHERE rollout_id = ? FOR UPDATE",
                               (self.id,)).fetchone()
            if row is not None and row[0] != self.me and row[4] > now and not self._dead_here(row[1], int(row[2])):
                return False, {"host": row[1], "pid": row[2], "expires": row[4]}
            token = (int(row[3]) if row is not None else 0) + 1
            conn.execute("INSERT INTO leases VALUES (?,?,?,?,?,?,?) ON CONFLICT (rollout_id) DO UPDATE SET "
                         "holder = excluded.holder, host = excluded.host, pid = excluded.pid, token = excluded.token, "
                         "since = excluded.since, expires = excluded.expires",
                         (self.id, self.me, self.host, self.pid, token, now, now + self.ttl))
        self.token, self.lost = token, ""
        return True, {}

    def _dead_here(self, host: str, pid: int) -> bool:
        """A holder on this very host whose process is gone (kill -9): no need to wait for its lease."""
        if host != self.host or pid == self.pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def renew(self) -> bool:
        """Extend the lease; False (and `lost` says why) once another host holds the rollout."""
        with self.journal.tx() as conn:
            now = self.journal.pg.now()
            cur = conn.execute("UPDATE leases SET expires = ? WHERE rollout_id = ? AND token = ? AND holder = ?",
                               (now + self.ttl, self.id, self.token, self.me))
            if cur.rowcount == 0:
                self.lost = self._taken_by(conn)
                return False
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # noqa: BLE001 - the server is away (or hiccuped): the next renewal tries again
                continue  # the server is away: the next renewal tries again; `check` fences the writes

    def _taken_by(self, conn: Any) -> str:
        row = conn.execute("SELECT host, pid, token FROM leases WHERE rollout_id = ?", (self.id,)).fetchone()
        if row is None:
            return f"the lease of rollout {self.id} is gone"
        return f"rollout {self.id} was taken over by the engine on {row[0]} pid {row[1]} (lease {row[2]})"

    def check(self, conn: Any) -> None:
        """Inside a write transaction: raise `Superseded` unless this lease still holds the rollout."""
        row = conn.execute("SELECT token, holder FROM leases WHERE rollout_id = ? FOR SHARE", (self.id,)).fetchone()
        if row is None or int(row[0]) != self.token or row[1] != self.me:
            self.lost = self.lost or self._taken_by(conn)
            raise Superseded(f"{self.lost}; this engine (pid {self.pid}) wrote nothing more and stops")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # a renewal already under way must not extend the lease after this
        if self.journal.fences.get(self.id) is self:
            del self.journal.fences[self.id]
        if self.token is None:
            return
        try:
            with self.journal.tx() as conn:
                conn.execute("UPDATE leases SET expires = 0 WHERE rollout_id = ? AND token = ?", (self.id, self.token))
        except FleetError:
            pass  # the server is away: the lease lapses on its own
        self.token = None

    # --- reading it ------------------------------------------------------------------------
    def holder(self, conn: Any = None) -> dict[str, Any] | None:
        """The holder while its lease runs (None when lapsed or never taken)."""
        conn = conn or self.journal.conn
        row = conn.execute("SELECT host, pid, token, since, expires, extract(epoch FROM clock_timestamp()) "
                           "FROM leases WHERE rollout_id = ?", (self.id,)).fetchone()  # one round trip, the server's clock
        if row is None or row[4] <= float(row[5]) or self._dead_here(row[0], int(row[1])):
            return None
        return {"host": row[0], "pid": int(row[1]), "token": int(row[2]), "since": float(row[3]),
                "expires": float(row[4])}

    def held_elsewhere(self) -> bool:
        holder = self.holder()
        return holder is not None and not (self.token is not None and holder["token"] == self.token)
