"""Trying failed devices again: automatically by failure kind, or when the operator asks.

A part of `Engine` (`engine.retries`), asked by wave tagging, the gate and the operator's
`retry`. A retry is a new desired `version` of the managed module — IoT Edge's own signal
to recreate a module (edgeAgent compares the desired module, version included, with what
runs and recreates it, pulling the image again if it lacks it); the simulated devices and
engine agents honour it the same way. It is delivered by a retry deployment
`rollout-<id>-<variant>_r<N>` (the variant's image and definition, `version = "retry-N"`)
and the device's rollout tag set to that key.

Invariants:
- a retry is an intent naming its devices, their attempt numbers and when it started (the
  hub's clock); a resumed engine finishes exactly that retry, never another;
- a retried device's reports count for the gate only from its last retry on (older ones
  tell the failure it is being retried for);
- automatic: a device that failed (fresh report) while the policy still allows retries of
  that failure kind — `download` or `start`, read from its error text — is not a failure
  yet; it is retried once `retry_backoff × 2^(attempts so far)` passed since its failed
  report (hub clock), within the wave's gate timeout;
- `rollout retry` on a halted rollout retries every failed device of the failed wave once
  more, whatever the policy, and reopens that wave's gate (its timeout counts anew).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fleet_tui.rollout.context import RolloutContext
from fleet_tui.rollout.journal import WaveRow

RETRY_SEP = "_r"
START_WORDS = re.compile(r"\b(exit|exited|start|started|crash|crashed|restart|restarting|OOM|OOMKilled|killed|backoff|"
                         r"back-off|CrashLoopBackOff)\b", re.I)
# names the operator chose are not words about what happened: image references, quoted text,
# and the module's name ("registry/…/app-killed@sha256:…", 'pull image "…"', "module auto-start")
NAMES = re.compile(r'"[^"]*"|\S*[/@]\S*|\bmodule\s+\S+', re.I)


def failure_kind(error: str) -> str:
    """`start` when the module ran and stopped, else `download` (pull, auth, manifest, disk)."""
    return "start" if START_WORDS.search(NAMES.sub(" ", error or "")) else "download"


def retry_key(variant: str, attempt: int) -> str:
    """The tag value (and deployment key) of a variant's Nth retry: `full_r2`."""
    return f"{variant}{RETRY_SEP}{attempt}"


def base_key(key: str) -> str:
    """The variant a (retry) tag value stands for: `full_r2` → `full`."""
    return key.split(RETRY_SEP, 1)[0]


class DeviceRetries:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def retries_done(self) -> tuple[dict[str, int], dict[str, float]]:
        """Per device: attempts made so far, and when its last retry started (hub clock)."""
        attempts: dict[str, int] = {}
        since: dict[str, float] = {}
        for e in self.ctx.journal.events(self.ctx.id, "retry"):
            if e.phase == "intent":
                for device_id in e.data.get("devices", []):
                    attempts[device_id] = int(e.data["attempts"][device_id])
                    since[device_id] = float(e.data["started"])
        return attempts, since

    def failed_devices(self, wave: WaveRow, views: dict[str, Any], since: dict[str, float]) -> list[Any]:
        """Views of the wave's devices whose newest report (since the wave or their retry) says
        failed — also when the device has gone offline since: it left failed (its report still
        carries the error), and a retry waits in its desired state until it is back."""
        started = wave.started or 0.0
        out = []
        for a in self.ctx.by_wave[wave.idx]:
            view = views.get(a.device_id)
            if view is None or view.updated < max(started, since.get(a.device_id, 0.0)):
                continue
            if view.state == "failed" or (view.state == "offline" and view.error):
                out.append(view)
        return out

    def retry_plan(self, wave: WaveRow, views: dict[str, Any]) -> tuple[list[str], list[str]]:
        """(retry now, will retry later or now) among the wave's failed devices."""
        policy = self.ctx.policy
        attempts, since = self.retries_done()
        now = getattr(self.ctx.hub, "now", None)
        clock = now() if now else 0.0
        due, waiting = [], []
        for view in self.failed_devices(wave, views, since):
            kind = failure_kind(view.error)
            allowed = policy.retries_download if kind == "download" else policy.retries_start
            made = attempts.get(view.device_id, 0)
            if made >= allowed:
                continue
            waiting.append(view.device_id)
            if clock - view.updated >= policy.retry_backoff * 2 ** made:
                due.append(view.device_id)
        return due, waiting

    def retry(self, wave: int, devices: list[str], why: str, **kw: Any) -> None:
        """Intend and carry out one retry; `kw` goes to the intent record (state changes)."""
        attempts, _ = self.retries_done()
        started = getattr(self.ctx.hub, "now", lambda: 0.0)() - 1.0
        self.ctx.log(f"wave {wave + 1}: retrying {len(devices)} device{'s' if len(devices) != 1 else ''} ({why})")
        data = {"devices": devices, "attempts": {d: attempts.get(d, 0) + 1 for d in devices}, "started": started,
                "why": why, **kw.pop("data", {})}
        self.ctx.intend("retry", wave, data, **kw)

    def carry_out(self, wave: int, data: dict[str, Any], seq: int) -> None:
        """Carry out a retry intent: each device's retry deployment, then its tag set to that key."""
        ctx = self.ctx
        variant_of = {a.device_id: a.variant for a in ctx.assignments}
        by_key: dict[str, list[str]] = defaultdict(list)
        for device_id in data["devices"]:
            by_key[retry_key(variant_of[device_id], data["attempts"][device_id])].append(device_id)
        by_job = bool(getattr(ctx.hub, "tags_by_job", False))
        for key, ids in sorted(by_key.items()):
            variant = ctx.spec["variants"][base_key(key)]
            ctx.create(key, variant["image"], ctx.spec["priority"], version=f"retry-{key.rsplit(RETRY_SEP, 1)[1]}")
            if by_job:
                ctx.hub.bulk_update_tags(ids, {ctx.tag: key}, key=f"{ctx.id}-retry{seq}-{key}")
            else:
                ctx.hub.bulk_update_tags(ids, {ctx.tag: key})
        ctx.record("retry", "done", wave, {"intent": seq, "devices": len(data["devices"])})

    def retry_keys(self) -> dict[str, dict[str, Any]]:
        """Every retry key used so far → its variant (the fold pins those devices by image)."""
        variant_of = {a.device_id: a.variant for a in self.ctx.assignments}
        keys = {}
        for e in self.ctx.journal.events(self.ctx.id, "retry"):
            if e.phase == "intent":
                for device_id in e.data.get("devices", []):
                    variant = variant_of[device_id]
                    keys[retry_key(variant, e.data["attempts"][device_id])] = self.ctx.spec["variants"][variant]
        return keys
