"""The fake data's staged rollout: progress as a pure function of *rollout time*.

Rollout time is wall time since start minus paused spans, so pause/resume/approve/abort/
rollback are just timestamps and any snapshot can be recomputed exactly (frozen-clock
tests and screenshots draw the same bars every run). Waves are 1 device, 10%, 50%, the
rest; the canary wave's gate waits for approval; later waves start when the previous one
finished plus a 10 s soak. Devices on a flaky link sometimes fail at 40%.
"""

from __future__ import annotations

from fleet_tui.ui.state import RolloutDevice, RolloutSnapshot, Wave

RATES = {"wifi": 5_000_000.0, "lte": 1_500_000.0, "sat-flaky": 400_000.0}  # bytes/s per device
APPLY_S = 3.0
SOAK_S = 10.0
GATES = ("canary: 1 running, operator approves", "≥ 95% running, soak 10 s", "≥ 95% running, soak 10 s", "≥ 95% running")


class FakeRollout:
    def __init__(self, rid: str, group: str, target: str, devices: list[tuple[str, int, bool]],
                 started: float, link: str, per_gb: float) -> None:
        self.id, self.group, self.target, self.started, self.per_gb = rid, group, target, started, per_gb
        self.devices = devices  # (id, bytes to pull, offline)
        self.rate = RATES.get(link, 1_500_000.0)
        self.flaky = "flaky" in link
        n = len(devices)
        sizes, left = [], n
        for want in (1, max(1, n // 10), max(1, n // 2), n):
            take = min(left, want if want < n else left)
            sizes.append(take)
            left -= take
        self.sizes = [s for s in sizes if s] or [0]
        self.pauses: list[tuple[float, float | None]] = []  # wall-time spans
        self.approved_at: float | None = None  # rollout time
        self.ended: tuple[str, float] | None = None  # ("aborted"/"rolled_back", rollout time)
        self.log: list[tuple[float, str]] = [(started, f"rollout {rid} of {target} to {group} started")]

    # --- time ------------------------------------------------------------------------
    def rtime(self, now: float) -> float:
        paused = sum((end if end is not None else now) - start for start, end in self.pauses)
        return max(0.0, now - self.started - paused)

    def control(self, action: str, now: float) -> None:
        rt = self.rtime(now)
        if action == "pause" and not (self.pauses and self.pauses[-1][1] is None):
            self.pauses.append((now, None))
        elif action == "resume" and self.pauses and self.pauses[-1][1] is None:
            self.pauses[-1] = (self.pauses[-1][0], now)
        elif action == "approve" and self.approved_at is None:
            self.approved_at = rt
        elif action in ("abort", "rollback") and self.ended is None:
            self.ended = ("aborted" if action == "abort" else "rolled_back", rt)
        self.log.append((now, f"operator: {action}"))

    # --- per device --------------------------------------------------------------------
    def _device_plan(self, i: int, wave_start: float) -> tuple[float, float, bool]:
        """(start, download seconds, fails) in rollout time."""
        h = (i * 2654435761) % 1000
        rate = self.rate * (0.6 + (h % 80) / 100)
        return wave_start + (i % 50) * 0.4, self.devices[i][1] / rate, self.flaky and h % 23 == 0

    def _waves(self) -> list[tuple[int, int, float | None, float | None]]:
        """(first index, size, start, end) per wave, in rollout time (None: not yet)."""
        out, first, start = [], 0, 0.0
        for k, size in enumerate(self.sizes):
            if k == 1:
                start = None if self.approved_at is None else max(start, self.approved_at)
            if start is None:
                out.append((first, size, None, None))
                first += size
                continue
            ends = []
            for i in range(first, first + size):
                if not self.devices[i][2]:
                    s, d, fails = self._device_plan(i, start)
                    ends.append(s + d * (0.4 if fails else 1) + APPLY_S)
            end = max(ends, default=start)
            out.append((first, size, start, end))
            first, start = first + size, end + SOAK_S
        return out

    def _device(self, i: int, rt: float, wave_start: float | None) -> tuple[str, int]:
        did, total, offline = self.devices[i]
        if offline:
            return "offline", 0
        if wave_start is None or rt < wave_start:
            return "pending", 0
        start, secs, fails = self._device_plan(i, wave_start)
        if rt < start:
            return "pending", 0
        t = rt - start
        if fails and t >= secs * 0.4:
            return "failed", int(total * 0.4)
        if t < secs:
            return "downloading", int(total * t / secs) if secs else total
        return ("applying" if t < secs + APPLY_S else "running"), total

    # --- snapshot ----------------------------------------------------------------------
    def state(self, now: float) -> str:
        return self.snapshot(now, light=True).state

    def snapshot(self, now: float, light: bool = False) -> RolloutSnapshot:
        live_rt = self.rtime(now)
        rt = min(live_rt, self.ended[1]) if self.ended else live_rt
        waves, devices, wave_rows = self._waves(), [], []
        for k, (first, size, start, end) in enumerate(waves):
            counts: dict[str, int] = {}
            for i in range(first, first + size):
                st, nbytes = self._device(i, rt, start)
                if self.ended and self.ended[0] == "rolled_back" and st in ("running", "applying"):
                    st = "rolled_back"
                counts[st] = counts.get(st, 0) + 1
                if not light:
                    devices.append(RolloutDevice(self.devices[i][0], k, st, nbytes, self.devices[i][1]))
            done = counts.get("running", 0) + counts.get("rolled_back", 0)
            wstate = "pending" if start is None or rt < start else ("succeeded" if end is not None and rt >= end else "running")
            wave_rows.append(Wave(k, size, wstate, GATES[min(k, 3)], done, counts.get("failed", 0)))
        state = self._state(now, waves, wave_rows, rt)
        if light:
            return RolloutSnapshot(self.id, self.group, self.target, state, tuple(wave_rows), (), 0, 0, (), None, 0, (), now)
        bytes_total = sum(d.bytes for d in devices)
        planned = sum(d.total for d in devices if d.state != "offline")
        samples = tuple(self._throughput(rt - s, waves) for s in range(29, -1, -1)) if state == "running" else (0.0,) * 30
        eta = (planned - bytes_total) / samples[-1] if samples[-1] > 0 else None
        events = list(self.log) + [(self.started + (w[2] or 0), f"wave {k + 1} ({w[1]} devices) started")
                                   for k, w in enumerate(waves) if w[2] is not None and w[2] <= rt]
        if self.approved_at is None and waves[0][3] is not None and rt >= waves[0][3] and len(waves) > 1:
            events.append((now, "canary wave done: waiting for approval (press a)"))
        return RolloutSnapshot(self.id, self.group, self.target, state, tuple(wave_rows), tuple(devices),
                               bytes_total, planned, samples, eta, bytes_total / 1e9 * self.per_gb,
                               tuple(sorted(events)[-50:]), now, state == "running" and self._awaiting(waves, rt))

    def _awaiting(self, waves: list, rt: float) -> bool:
        return self.approved_at is None and len(waves) > 1 and waves[0][3] is not None and rt >= waves[0][3]

    def _state(self, now: float, waves: list, wave_rows: list[Wave], rt: float) -> str:
        if self.ended:
            return self.ended[0]
        if self.pauses and self.pauses[-1][1] is None:
            return "paused"
        if any(w.failed > max(1, w.size // 20) for w in wave_rows):
            return "halted"
        if all(w.state == "succeeded" for w in wave_rows):
            return "succeeded"
        return "running"

    def _throughput(self, rt: float, waves: list) -> float:
        total = 0.0
        for first, size, start, _end in waves:
            if start is None or rt < start:
                continue
            for i in range(first, first + size):
                if self.devices[i][2]:
                    continue
                s, secs, fails = self._device_plan(i, start)
                if s <= rt < s + secs * (0.4 if fails else 1):
                    total += self.devices[i][1] / secs
        return total
