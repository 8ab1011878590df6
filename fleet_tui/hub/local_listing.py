"""The local hub's device listing in SQL (fleet_tui.hub.listing): a screenful of a group is
one indexed range read, whatever the group's size.

Invariants:
- only mirror columns and two JSON fields per *returned* row are read: no twin is built;
- a window sorted by id with no needle walks the (grp, device_id) index: opening a
  1,000,000-device group reads `limit` rows; other sorts and needles scan the group once
  (in a worker, never the UI thread);
- the state is computed as `DeviceTwin.state` computes it (offline unless connected and
  seen within `stale_after`; "pending" when the module reports no state);
- the needle and condition are bound parameters (LIKE with `\\` escapes), never SQL text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fleet_tui.hub.listing import ListedDevice, ListQuery
from fleet_tui.hub.query import parse
from fleet_tui.hub.query_sql import compile_sql

if TYPE_CHECKING:
    from fleet_tui.hub.local import LocalHub

STATE = ("CASE WHEN connected = 1 AND last_seen >= :fresh THEN IFNULL(NULLIF(cur_state, ''), 'pending') "
         "ELSE 'offline' END")
LINK = "IFNULL(COALESCE(NULLIF(json_extract(reported, :mod_link), ''), json_extract(tags, '$.link')), '')"
ORDER = {"id": "device_id", "state": STATE, "digest": "cur_digest", "link": LINK, "last_seen": "last_seen"}
CHUNK = 1000  # rows per statement when streaming a whole group


class LocalListing:
    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        key = hub.module.replace('"', "")
        self._paths = {"mod_link": f'$."{key}".link', "mod_image": f'$."{key}".image'}

    def _where(self, q: ListQuery) -> tuple[str, dict[str, Any]]:
        cond, positional = compile_sql(parse(q.condition or "*"), self.hub.group_tag)
        params: dict[str, Any] = {f"c{i}": v for i, v in enumerate(positional)}
        parts = iter(cond.split("?"))  # compile_sql binds every literal: each ? is a placeholder
        where = next(parts) + "".join(f":c{i}" + rest for i, rest in enumerate(parts))
        params.update(self._paths, fresh=time.time() - self.hub.stale_after)
        needle = q.needle.strip().lower()
        if needle:
            params["like"] = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params["digests"] = json.dumps(list(q.digests))
            where += (f" AND (device_id LIKE :like ESCAPE '\\' OR {STATE} LIKE :like ESCAPE '\\'"
                      f" OR {LINK} LIKE :like ESCAPE '\\' OR cur_digest LIKE :like ESCAPE '\\'"
                      " OR cur_digest IN (SELECT value FROM json_each(:digests)))")
        if q.state:
            where += f" AND {STATE} = :state"
            params["state"] = q.state
        return where, params

    def _order(self, q: ListQuery) -> str:
        direction = " DESC" if q.descending else ""
        if q.sort == "id":
            return f"device_id{direction}"
        return f"{ORDER[q.sort]}{direction}, device_id{direction}"

    def _select(self, where: str, tail: str, params: dict[str, Any]) -> list[ListedDevice]:
        sql = (f"SELECT device_id, IFNULL(grp, ''), cur_digest, IFNULL(json_extract(reported, :mod_image), ''), "
               f"{STATE}, last_seen, {LINK} FROM devices WHERE {where} {tail}")
        with self.hub.store.lock:
            rows = self.hub.store.conn.execute(sql, params).fetchall()
        return [ListedDevice(i, g, dg, str(im), s, ls, str(ln)) for i, g, dg, im, s, ls, ln in rows]

    def total(self, q: ListQuery) -> int:
        where, params = self._where(q)
        with self.hub.store.lock:
            return int(self.hub.store.conn.execute(f"SELECT COUNT(*) FROM devices WHERE ({where})", params)
                       .fetchone()[0])

    def state_counts(self, q: ListQuery) -> dict[str, int]:
        where, params = self._where(q)
        with self.hub.store.lock:
            rows = self.hub.store.conn.execute(
                f"SELECT {STATE}, COUNT(*) FROM devices WHERE ({where}) GROUP BY 1", params).fetchall()
        return {state: int(n) for state, n in rows}

    def window(self, q: ListQuery, offset: int, limit: int) -> Sequence[ListedDevice]:
        where, params = self._where(q)
        params.update(limit=max(0, limit), offset=max(0, offset))
        return self._select(f"({where})", f"ORDER BY {self._order(q)} LIMIT :limit OFFSET :offset", params)

    def iter_all(self, q: ListQuery) -> Iterator[ListedDevice]:
        """Every device of `q` in id order, CHUNK rows per statement (keyset: no OFFSET)."""
        where, params = self._where(q)  # the order is the id's, whatever q.sort says
        after = ""
        while True:
            params.update(after=after, limit=CHUNK)
            rows = self._select(f"({where}) AND device_id > :after", "ORDER BY device_id LIMIT :limit", params)
            yield from rows
            if len(rows) < CHUNK:
                return
            after = rows[-1].id
