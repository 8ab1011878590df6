"""Stable shards: every device carries `tags.<shard_tag>` = two digits, written once.

A wave on a big hub is a target condition over shards (rollout/shard_waves.py), not a tag
write per device per rollout, so the shard must already be on every twin before a rollout
starts. It is set at enrollment (the local hub's `register_devices`) or by one backfill
(`fleet-tui hub shards --backfill`) on a hub whose devices were enrolled elsewhere.

Invariants:
- `shard_of` is a pure function of the device id (sha256, mod 100, two digits "00"-"99"), so a
  backfill interrupted anywhere and run again writes the same values; it writes only devices
  whose tag is missing or wrong, and a device right already is never written again;
- one shard's devices are written together (one twin-update job per ~7 KB of ids on Azure,
  with a deterministic job id, so a repeat waits for a job already started);
- the shard values are literals of the documented character set (digits only), so a
  condition built from them never needs escaping.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

SHARDS = 100


def shard_of(device_id: str) -> str:
    """The device's shard, "00"-"99": the same on every host, release and run."""
    return f"{int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], 'big') % SHARDS:02d}"


def valid_shard(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 2 and value.isdigit()


def current_shards(hub: Any, tag: str, condition: str | None) -> Iterator[tuple[str, Any]]:
    """(device id, its shard tag value or None) for the devices matching `condition`: one
    projection query per page on Azure (no module twins), the twins themselves elsewhere."""
    projection = getattr(hub, "tag_projection", None)
    if projection is not None:
        yield from projection(tag, condition)
        return
    for twin in hub.iter_devices(condition):
        yield twin.device_id, twin.tags.get(tag)


@dataclass
class ShardCensus:
    devices: int = 0
    right: int = 0  # already carry their shard
    todo: dict[str, list[str]] = field(default_factory=dict)  # shard → devices to write (missing or wrong)
    wrong: int = 0  # carry a value that is not their shard (written by something else)
    per_shard: dict[str, int] = field(default_factory=dict)  # shard → devices in it

    @property
    def to_write(self) -> int:
        return sum(len(v) for v in self.todo.values())

    @property
    def missing(self) -> int:
        return self.to_write - self.wrong


def census(pairs: Iterable[tuple[str, Any]]) -> ShardCensus:
    out = ShardCensus()
    todo: dict[str, list[str]] = defaultdict(list)
    per: dict[str, int] = defaultdict(int)
    for device_id, value in pairs:
        out.devices += 1
        shard = shard_of(device_id)
        per[shard] += 1
        if value == shard:
            out.right += 1
            continue
        out.wrong += value is not None
        todo[shard].append(device_id)
    out.todo, out.per_shard = dict(sorted(todo.items())), dict(sorted(per.items()))
    return out


def backfill(hub: Any, tag: str, found: ShardCensus, ops_per_s: float,
             progress: Callable[[int, int, float], None] = lambda done, total, eta: None) -> int:
    """Write each device's shard (shard by shard); `progress(done, total, eta_seconds)` after
    each shard, with the ETA at the hub's rate for such writes. Returns devices written."""
    total = found.to_write
    done, t0 = 0, time.monotonic()
    for shard, ids in found.todo.items():
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:10]
        if getattr(hub, "tags_by_job", False):
            done += hub.bulk_update_tags(ids, {tag: shard}, key=f"shard-{shard}-{digest}")
        else:
            done += hub.bulk_update_tags(ids, {tag: shard})
        elapsed = time.monotonic() - t0
        rate = ops_per_s if ops_per_s > 0 else (done / elapsed if elapsed > 0 else 0.0)
        progress(done, total, (total - done) / rate if rate > 0 else 0.0)
    return done
