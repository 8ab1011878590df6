"""`preview --json`: a group's plans as JSON, written at the speed of the terminal.

A 1,000,000-device group is hundreds of MB of JSON, one object per device, and every device
of a cohort shares all but its id: so each cohort's part is serialised once, each device
adds only its id, and the text goes out in chunks of a few MB (one write each, not millions).

JSON needs no terminal sanitiser: every string passes `json.dumps` (ASCII only, control
characters escaped), and device ids of the safe charset are quoted as they are, so nothing
a hub or device chose can reach the terminal raw (tests/integration/test_hostile_text.py).

`--by state` prints one object per cohort — the distinct (running image, held images,
platform) that the plan is made of — with its device count and a sample of ids, instead of
one object per device.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, TextIO

from fleet_tui.fleet.groupplan import Cohort, GroupPlan

SAFE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']*")  # needs no JSON escape (Azure's device id charset)
CHUNK = 4096  # devices per write
SAMPLE = 5  # device ids shown per state


def _id(device_id: str) -> str:
    return f'"{device_id}"' if SAFE_ID.fullmatch(device_id) else json.dumps(device_id)


def _cohort(c: Cohort) -> dict[str, Any]:
    layers = [l.digest for l in c.plan.layers if l.needed] if c.bytes_per_device else []
    return {"bytes": c.bytes_per_device, "layers": layers, "running": c.digest, "known_image": c.known,
            "held": list(c.held), "rollback_bytes": c.rollback_per_device}


def _totals(plan: GroupPlan, per_gb: float, currency: str) -> str:
    return (f'"total_bytes": {plan.total_bytes}, "rollback_bytes": {plan.rollback_bytes}, '
            f'"cost": {json.dumps(round(plan.total_bytes / 1e9 * per_gb, 2))}, "currency": {json.dumps(currency)}')


def plan_parts(plan: GroupPlan, per_gb: float, currency: str, by_state: bool,
               sites: list[dict[str, Any]] | None = None) -> Iterator[str]:
    """The plan's JSON object, in pieces, without its closing brace (the caller adds keys).
    `sites`: the plan per site (fleet_tui.fleet.sites), when the config has sites."""
    yield f'{{"target": {json.dumps(plan.target)}, "target_digest": {json.dumps(plan.target_digest)}, '
    if by_state:
        states = [{**_cohort(c), "image": c.image, "platform": c.platform, "devices": len(c.device_ids),
                   "total_bytes": c.bytes_total, "sample": list(c.device_ids[:SAMPLE])} for c in plan.cohorts]
        yield f'"states": {json.dumps(states)}, '
    else:
        yield '"devices": ['
        first = True
        for c in plan.cohorts:
            tail = ", " + json.dumps(_cohort(c))[1:]  # '"bytes": …}' shared by the cohort's devices
            ids = c.device_ids
            for start in range(0, len(ids), CHUNK):
                text = ",\n".join(f'{{"id": {_id(d)}{tail}' for d in ids[start:start + CHUNK])
                yield ("\n" if first else ",\n") + text
                first = False
        yield "\n], "
    yield _totals(plan, per_gb, currency)
    if sites is not None:
        yield f', "sites": {json.dumps(sites)}'


class ChunkedWriter:
    """Collects text and writes it in chunks of about `limit` characters."""

    def __init__(self, out: TextIO, limit: int = 1 << 22) -> None:
        self.out, self.limit, self.parts, self.size = out, limit, [], 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self.parts))
        self.parts.clear()
        self.size = 0


def write_preview(out: TextIO, plan: GroupPlan, other: GroupPlan | None, extra: dict[str, Any],
                  per_gb: float, currency: str, by_state: bool) -> None:
    """`{…plan, "group", "compare": {…}, "waves", "budget"}` (`extra` holds group, waves, budget,
    and with sites configured `sites` and `compare_sites`: lists of per-site JSON objects)."""
    w = ChunkedWriter(out)
    for piece in plan_parts(plan, per_gb, currency, by_state, extra.get("sites")):
        w.write(piece)
    w.write(f', "group": {json.dumps(extra["group"])}')
    if other is not None:
        w.write(', "compare": ')
        for piece in plan_parts(other, per_gb, currency, by_state, extra.get("compare_sites")):
            w.write(piece)
        w.write("}")
    for key in ("waves", "budget"):
        w.write(f', {json.dumps(key)}: {json.dumps(extra[key])}')
    w.write("}\n")
    w.flush()
    out.flush()
