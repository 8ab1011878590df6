"""Who did what outside a rollout's own commands: image builds (rebase pushes), registry
prunes, deployment prunes — one row each in the journal's `audit` table, with the operator
(OS user, SSH client address when present) and the time. `trail()` merges them with every
rollout's operator actions (start, pause, approve, abort, rollback, retry, continue: the
journal's events that carry `by`), newest first — what `fleet-tui log` prints.

Invariants: a row is written after the action succeeded (a refused push is not a build);
details are plain facts (refs, digests, counts) — never a credential: the callers pass
references and digests, and `record` drops any key that names a secret.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fleet_tui.rollout.journal import Journal, operator

if TYPE_CHECKING:
    from fleet_tui.rollout.journal import Journal

ACTIONS = ("build", "prune", "deployments-prune")
_SECRET_KEYS = ("password", "secret", "token", "connection_string", "key")


def record(journal: Journal, action: str, subject: str, detail: dict[str, Any] | None = None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    clean = {k: v for k, v in (detail or {}).items() if not any(s in k.lower() for s in _SECRET_KEYS)}
    with journal.tx() as conn:
        conn.execute("INSERT INTO audit (ts, who, action, subject, detail) VALUES (?,?,?,?,?)",
                     (time.time(), operator(), action, subject, json.dumps(clean, sort_keys=True)))


def record_for_config(config: Any, action: str, subject: str, detail: dict[str, Any] | None = None) -> None:
    """`record` in the journal of `config`'s state directory (opened for this one row)."""
    journal = Journal.for_config(config)
    try:
        record(journal, action, subject, detail)
    finally:
        journal.close()


def trail(journal: Journal, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first: builds and prunes, and every rollout's operator actions."""
    with journal.lock:
        rows = journal.conn.execute(
            "SELECT ts, who, action, subject, detail FROM audit ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        acted = journal.conn.execute(
            # data is json.dumps(…, sort_keys=True): a `by` key reads `"by": ` (both databases match it)
            "SELECT ts, rollout_id, kind, wave, data FROM events WHERE data LIKE '%\"by\": %' "
            "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
    out = [{"ts": ts, "by": who, "action": action, "subject": subject, "detail": json.loads(detail)}
           for ts, who, action, subject, detail in rows]
    for ts, rid, kind, wave, data in acted:
        by = json.loads(data).get("by")
        if by:
            out.append({"ts": ts, "by": by, "action": f"rollout {kind}", "subject": rid,
                        "detail": {} if wave is None else {"wave": wave + 1}})
    out.sort(key=lambda e: -e["ts"])
    return out[:limit]
