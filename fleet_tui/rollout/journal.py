"""The rollout journal: one SQLite file (WAL) in the state dir holding every rollout.

Tables: `rollouts` (state + immutable spec), `waves` (size, state, start time, the one gate
judgement), `assignments` (which wave each device belongs to and what it ran before — fixed
when the rollout is created), `events` (every decision and transition, timestamped) and
`commands` (pause/resume/abort/rollback/approve rows written by any process; the engine
consumes them).

Write-ahead rule: the engine records an *intent* event (with the state change it implies)
in one transaction BEFORE it touches the hub, and a *done* event after. After a SIGKILL an
intent without its done names exactly the action to finish — with the same devices, the
same wave start time — so resuming never picks new devices, never targets one twice and
never judges a gate on reports older than the wave's recorded start.

One engine per rollout: with SQLite, `EngineLock` is an flock on a file next to the journal;
the kernel drops it when its process dies, so a crashed engine never blocks a resume. With
PostgreSQL (`[journal] url`, a team's shared journal) it is a lease row with a fencing token
(lease.py): every write of the engine that holds it checks the token in the same transaction
(`_fenced`), so an engine another host took the rollout over from can no longer write.
Both databases read the same SQL (journal_db.py).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, NamedTuple, Sequence

from fleet_tui.errors import Conflict, NotFound, RemoteError
from fleet_tui.rollout.engine_lock import EngineLock
from fleet_tui.rollout.journal_db import SQLITE_SCHEMA, PgConnection
from fleet_tui.rollout.lease import Lease
from fleet_tui.secrets import SecretRef
from fleet_tui.sqlite_tx import ensure_schema, open_wal, write_tx


def operator() -> str:
    """Who is acting: the OS user, and the SSH client's address when logged in over SSH."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    client = os.environ.get("SSH_CLIENT", "").split()
    return f"{user} from {client[0]}" if client else user

ROLLOUT_STATES = ("pending", "running", "paused", "halted", "succeeded", "aborted", "rolled_back")
TERMINAL = ("succeeded", "aborted", "rolled_back")
NEEDS_ENGINE = ("pending", "running")  # states only a running engine moves on (paused and halted wait for an operator)
COMMANDS = ("pause", "resume", "abort", "rollback", "approve", "continue", "retry")


@dataclass(frozen=True)
class RolloutRow:
    id: str
    created: float
    updated: float
    state: str
    reason: str
    spec: dict[str, Any]
    pid: int


@dataclass(frozen=True)
class WaveRow:
    idx: int
    size: int
    state: str  # pending, targeting, running, baking, passed, failed
    started: float | None
    judged: float | None
    result: dict[str, Any] | None
    approved: bool
    bake_until: float | None


class Assignment(NamedTuple):
    """One device's part in a rollout, fixed at creation (a tuple: a 1,000,000-device rollout
    holds a million of them)."""

    device_id: str
    wave: int
    variant: str
    prev_image: str
    prev_digest: str
    planned_bytes: int


@dataclass(frozen=True)
class Event:
    seq: int
    ts: float
    wave: int | None
    kind: str
    phase: str
    data: dict[str, Any]


class Journal:
    def __init__(self, path: str | Path, pg: PgConnection | None = None, lease: float = 30.0, host: str = "") -> None:
        """`path`: the SQLite file; with `pg`, the name of the state it goes with (logs and
        locks live beside it) and the journal itself is the PostgreSQL database."""
        self.path = Path(path)
        self.pg, self.lease, self.host_name = pg, float(lease), host
        self.fences: dict[str, Any] = {}  # rollout id → the Lease this process holds on it (PostgreSQL)
        if pg is not None:
            self.lock = pg.lock
            self.conn: Any = pg
            self.where = pg.url
            return
        self.lock = threading.RLock()
        self.where = str(self.path)
        if sqlite3.sqlite_version_info < (3, 35):  # RETURNING (every event's seq) needs 3.35
            raise RemoteError(f"rollout journal {self.path}: this Python's SQLite is {sqlite3.sqlite_version}, the "
                              "journal needs 3.35 or newer; use a newer Python (3.11 builds bundle it) or [journal] url")
        try:
            self.conn = open_wal(self.path, 30.0, "FULL")  # FULL: an intent must survive power loss too
            ensure_schema(self.conn, self.lock, SQLITE_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise RemoteError(f"rollout journal {self.path} cannot be opened ({exc}); check state_dir in the config") from None

    @classmethod
    def for_config(cls, config: Any, check: bool = True) -> "Journal":
        """The config's journal: `[journal] url` (PostgreSQL, schema checked unless `check` is
        False — `journal init`), else `rollouts.sqlite` in the state directory."""
        section = config.journal
        if not section.url:
            return cls(config.state_path() / "rollouts.sqlite")
        password = None
        if section.password_file:
            password = SecretRef(file=section.password_file).resolve("[journal] password_file")
        elif section.password_env and os.environ.get(section.password_env):
            password = SecretRef(env=section.password_env).resolve("[journal] password_env")
        pg = PgConnection(section.url, password, section.connect_timeout)
        if check:
            try:
                pg.check_schema()
            except BaseException:
                pg.close()
                raise
        return cls(config.state_path() / "rollouts.pg", pg, section.lease, section.host)

    @property
    def shared(self) -> bool:
        """A team's journal (PostgreSQL): engines on other hosts may hold its rollouts."""
        return self.pg is not None

    def tx(self) -> ContextManager[Any]:
        """One short write transaction (SQLite: `BEGIN IMMEDIATE`, fleet_tui.sqlite_tx)."""
        return self.pg.write_tx() if self.pg is not None else write_tx(self.conn, self.lock)

    def engine_lock(self, rollout_id: str) -> Any:
        """What makes one engine per rollout: an flock here (SQLite), the lease (PostgreSQL)."""
        if self.pg is not None:
            return Lease(self, rollout_id, self.lease)
        return EngineLock(self.path, rollout_id)

    def holder(self, rollout_id: str) -> dict[str, Any] | None:
        """Who holds the rollout's lease (PostgreSQL), while it holds it: host, pid, since, expires."""
        return Lease(self, rollout_id, self.lease).holder() if self.pg is not None else None

    def _fenced(self, conn: Any, rollout_id: str) -> None:
        """In a write transaction: refuse it when this process's lease on the rollout was superseded."""
        lease = self.fences.get(rollout_id)
        if lease is not None:
            lease.check(conn)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # --- creation ----------------------------------------------------------------------
    def create(self, rollout_id: str, spec: dict[str, Any], sizes: Sequence[int],
               assignments: Sequence[Assignment], metered: Sequence[str] = ()) -> None:
        now = time.time()
        with self.tx() as conn:
            # One active rollout per group, checked inside the write transaction that inserts
            # (BEGIN IMMEDIATE; on PostgreSQL a transaction lock every creating host takes):
            # two concurrent starts serialise here, the second sees the first.
            if self.pg is not None:
                conn.execute("SELECT pg_advisory_xact_lock(7316002)")
            for other, state, other_spec in conn.execute(
                "SELECT id, state, spec FROM rollouts WHERE state NOT IN (%s)" % ",".join("?" * len(TERMINAL)), TERMINAL,
            ).fetchall():
                if spec.get("group") is not None and json.loads(other_spec).get("group") == spec["group"]:
                    raise Conflict(f"rollout {other} is already {state} in group {spec.get('group')!r}"
                                   f"{self._held_by(conn, other)}; watch it (fleet-tui rollout status {other}) "
                                   "or abort it first")
            conn.execute(
                "INSERT INTO rollouts (id, created, updated, state, spec) VALUES (?,?,?,?,?)",
                (rollout_id, now, now, "pending", json.dumps(spec, sort_keys=True)),
            )
            conn.executemany(
                "INSERT INTO waves (rollout_id, idx, size, state) VALUES (?,?,?,'pending')",
                [(rollout_id, i, s) for i, s in enumerate(sizes)],
            )
            conn.executemany(
                "INSERT INTO assignments VALUES (?,?,?,?,?,?,?)",
                [(rollout_id, a.device_id, a.wave, a.variant, a.prev_image, a.prev_digest, a.planned_bytes)
                 for a in assignments],
            )
            conn.executemany("INSERT INTO metered VALUES (?,?)", [(rollout_id, d) for d in metered])
            self._event(conn, rollout_id, "created", "done", None,
                        {"waves": list(sizes), "devices": len(assignments), "by": operator(),
                         "host": self.host_name or socket.gethostname()})

    def held_by(self, rollout_id: str) -> str:
        """Who started the rollout and, on a shared journal, which engine holds it (`, …` or "")."""
        with self.lock:
            return self._held_by(self.conn, rollout_id)

    def _held_by(self, conn: Any, rollout_id: str) -> str:
        """`, started by U on H` and, on a shared journal, `, engine on H pid P` while leased."""
        row = conn.execute("SELECT data FROM events WHERE rollout_id = ? AND kind = 'created'", (rollout_id,)).fetchone()
        data = json.loads(row[0]) if row else {}
        text = f", started by {data['by']}" + (f" on {data['host']}" if data.get("host") else "") if data.get("by") else ""
        if self.pg is not None:
            lease = Lease(self, rollout_id, self.lease).holder(conn)
            if lease:
                text += f", engine on {lease['host']} pid {lease['pid']}"
        return text

    def metered(self, rollout_id: str) -> set[str]:
        """Devices on metered links, for a link-aware policy (empty otherwise)."""
        with self.lock:
            rows = self.conn.execute("SELECT device_id FROM metered WHERE rollout_id = ?", (rollout_id,)).fetchall()
        return {d for (d,) in rows}

    def set_staged_bytes(self, rollout_id: str, staged: dict[str, int]) -> None:
        """Bytes each device downloaded while pre-staging (kept when its stage module goes)."""
        with self.tx() as conn:
            self._fenced(conn, rollout_id)
            conn.executemany("INSERT INTO staged VALUES (?,?,?) ON CONFLICT (rollout_id, device_id) "
                             "DO UPDATE SET bytes = excluded.bytes",
                             [(rollout_id, d, int(n)) for d, n in staged.items()])

    def remember_warm(self, site: str, digests: Sequence[str], ts: float | None = None) -> None:
        """A site's cache was seen holding these (fleet_tui.rollout.site_warmup checked each)."""
        now = time.time() if ts is None else ts
        with self.tx() as conn:
            conn.executemany("INSERT INTO warmed VALUES (?,?,?) ON CONFLICT (site, digest) DO UPDATE SET ts = excluded.ts",
                             [(site, d, now) for d in digests])

    def warm_digests(self, site: str, since: float) -> set[str]:
        """What the site's cache was last seen holding after `since` (older: maybe expired)."""
        with self.lock:
            rows = self.conn.execute("SELECT digest FROM warmed WHERE site = ? AND ts >= ?", (site, since)).fetchall()
        return {d for (d,) in rows}

    def site_uplink_since(self, site: str, since: float) -> int:
        """Bytes every rollout's warm-ups moved over `site`'s uplink since `since` (its `warm` events)."""
        with self.lock:
            rows = self.conn.execute("SELECT data FROM events WHERE kind = 'warm' AND ts >= ?", (since,)).fetchall()
        total = 0
        for (raw,) in rows:
            data = json.loads(raw) if raw else {}
            if data.get("site") == site:
                total += int(data.get("bytes", 0))
        return total

    def staged_bytes(self, rollout_id: str) -> dict[str, int]:
        with self.lock:
            rows = self.conn.execute("SELECT device_id, bytes FROM staged WHERE rollout_id = ?", (rollout_id,)).fetchall()
        return {d: int(n) for d, n in rows}

    def set_finals(self, rollout_id: str, finals: dict[str, tuple[str, int]]) -> None:
        """Each device's last state and bytes, kept once the rollout's tags are gone (fold)."""
        with self.tx() as conn:
            self._fenced(conn, rollout_id)
            conn.executemany("INSERT INTO finals VALUES (?,?,?,?) ON CONFLICT (rollout_id, device_id) "
                             "DO UPDATE SET state = excluded.state, bytes = excluded.bytes",
                             [(rollout_id, d, state, nbytes) for d, (state, nbytes) in finals.items()])

    def finals(self, rollout_id: str) -> dict[str, tuple[str, int]]:
        with self.lock:
            rows = self.conn.execute("SELECT device_id, state, bytes FROM finals WHERE rollout_id = ?",
                                     (rollout_id,)).fetchall()
        return {d: (state, int(n)) for d, state, n in rows}

    # --- reads -------------------------------------------------------------------------
    def referenced_digests(self) -> dict[str, set[str]]:
        """digest → ids of the rollouts naming it: target, variants and their bases, rollback
        images, and what each device ran before (every rollout, ended ones too)."""
        out: dict[str, set[str]] = {}

        def add(digest: str, rid: str) -> None:
            if digest:
                out.setdefault(digest, set()).add(rid)

        with self.lock:
            rows = self.conn.execute("SELECT id, spec FROM rollouts").fetchall()
            prev = self.conn.execute("SELECT DISTINCT rollout_id, prev_digest FROM assignments").fetchall()
        for rid, text in rows:
            spec = json.loads(text)
            add(spec.get("target_digest", ""), rid)
            for v in (spec.get("variants") or {}).values():
                add(v.get("digest", ""), rid)
                add(v.get("base", ""), rid)
            for image in spec.get("rollbacks") or {}:
                add(image.rpartition("@")[2], rid)
        for rid, digest in prev:
            add(digest, rid)
        return out

    def rollout(self, rollout_id: str) -> RolloutRow:
        with self.lock:
            row = self.conn.execute(
                "SELECT id, created, updated, state, reason, spec, pid FROM rollouts WHERE id = ?", (rollout_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"rollout {rollout_id!r} is not in the journal {self.where}; see fleet-tui rollout list")
        return RolloutRow(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])

    def list_rollouts(self) -> list[RolloutRow]:
        with self.lock:
            ids = [r[0] for r in self.conn.execute("SELECT id FROM rollouts ORDER BY created DESC").fetchall()]
        return [self.rollout(i) for i in ids]

    def waves(self, rollout_id: str) -> list[WaveRow]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT idx, size, state, started, judged, result, approved, bake_until FROM waves "
                "WHERE rollout_id = ? ORDER BY idx", (rollout_id,),
            ).fetchall()
        return [WaveRow(i, s, st, a, j, json.loads(r) if r else None, bool(ap), b) for i, s, st, a, j, r, ap, b in rows]

    def assignments(self, rollout_id: str, wave: int | None = None) -> list[Assignment]:
        sql = "SELECT device_id, wave, variant, prev_image, prev_digest, planned_bytes FROM assignments WHERE rollout_id = ?"
        params: list[Any] = [rollout_id]
        if wave is not None:
            sql += " AND wave = ?"
            params.append(wave)
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY wave, device_id", params).fetchall()
        return [Assignment(*r) for r in rows]

    def events(self, rollout_id: str, kind: str | Sequence[str] | None = None, after: int = 0) -> list[Event]:
        """The rollout's events in order; `kind`: one kind, or several."""
        sql = "SELECT seq, ts, wave, kind, phase, data FROM events WHERE rollout_id = ? AND seq > ?"
        params: list[Any] = [rollout_id, after]
        if kind:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += kinds
        with self.lock:
            rows = self.conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [Event(s, t, w, k, p, json.loads(d)) for s, t, w, k, p, d in rows]

    def actions(self, rollout_id: str, events: Sequence[Event] | None = None) -> list[dict[str, Any]]:
        """Who did what: every event an operator's command caused, with its sender (`by`)."""
        return [{"ts": e.ts, "action": e.kind, "wave": e.wave, "by": e.data["by"]}
                for e in (self.events(rollout_id) if events is None else events) if e.data.get("by")]

    def pending_commands(self, rollout_id: str) -> list[tuple[int, str, str]]:
        """(seq, kind, who sent it) of the commands not yet applied, oldest first."""
        with self.lock:
            return self.conn.execute(
                "SELECT c.seq, c.kind, COALESCE(b.who, '') FROM commands c LEFT JOIN command_by b ON b.seq = c.seq "
                "WHERE c.rollout_id = ? AND c.consumed IS NULL ORDER BY c.seq", (rollout_id,)
            ).fetchall()

    # --- writes ------------------------------------------------------------------------
    def add_command(self, rollout_id: str, kind: str) -> int:
        self.rollout(rollout_id)
        with self.tx() as conn:
            seq = int(conn.execute("INSERT INTO commands (rollout_id, ts, kind) VALUES (?,?,?) RETURNING seq",
                                   (rollout_id, time.time(), kind)).fetchone()[0])
            conn.execute("INSERT INTO command_by (seq, who) VALUES (?, ?)", (seq, operator()))
            return seq

    def record(
        self, rollout_id: str, kind: str, phase: str, wave: int | None = None, data: dict[str, Any] | None = None,
        *, state: str | None = None, reason: str | None = None, wave_set: dict[str, Any] | None = None,
        consume: int | None = None,
    ) -> int:
        """One transaction: an event, and the state changes it stands for. Returns its seq."""
        now = time.time()
        with self.tx() as conn:
            self._fenced(conn, rollout_id)
            seq = self._event(conn, rollout_id, kind, phase, wave, data or {}, now)
            if state is not None or reason is not None:
                conn.execute(
                    "UPDATE rollouts SET state = COALESCE(?, state), reason = COALESCE(?, reason), updated = ? WHERE id = ?",
                    (state, reason, now, rollout_id),
                )
            if wave_set:
                values = {k: json.dumps(v) if k == "result" else v for k, v in wave_set.items()}
                sets = ", ".join(f"{k} = ?" for k in values)
                conn.execute(f"UPDATE waves SET {sets} WHERE rollout_id = ? AND idx = ?",
                             [*values.values(), rollout_id, wave])
            if consume is not None:
                conn.execute("UPDATE commands SET consumed = ? WHERE seq = ?", (now, consume))
        return seq

    def abandon_untouched(self, rollout_id: str, reason: str) -> bool:
        """Mark a rollout whose engine never began (still pending, no action recorded)
        aborted, in one transaction; False when anything already happened to it."""
        with self.tx() as conn:
            self._fenced(conn, rollout_id)
            row = conn.execute("SELECT state FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
            kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM events WHERE rollout_id = ?", (rollout_id,))}
            if row is None or row[0] != "pending" or kinds - {"created", "engine"}:
                return False
            self._event(conn, rollout_id, "abandoned", "done", None, {"reason": reason})
            conn.execute("UPDATE rollouts SET state = 'aborted', reason = ?, updated = ? WHERE id = ?",
                         (reason, time.time(), rollout_id))
        return True

    def set_pid(self, rollout_id: str, pid: int) -> None:
        with self.tx() as conn:
            self._fenced(conn, rollout_id)
            conn.execute("UPDATE rollouts SET pid = ? WHERE id = ?", (pid, rollout_id))

    def _event(self, conn: Any, rollout_id: str, kind: str, phase: str, wave: int | None,
               data: dict[str, Any], now: float | None = None) -> int:
        cur = conn.execute(
            "INSERT INTO events (rollout_id, ts, wave, kind, phase, data) VALUES (?,?,?,?,?,?) RETURNING seq",
            (rollout_id, now or time.time(), wave, kind, phase, json.dumps(data, sort_keys=True)),
        )
        return int(cur.fetchone()[0])
