"""The seeded console's staged rollout (`console --fake-data`): progress as a pure function of
*rollout time*, drawn as the domain's own `RolloutSnapshot`.

Rollout time is wall time since start minus paused spans, so pause/resume/approve/abort/
rollback are just timestamps and any snapshot can be recomputed exactly (frozen-clock
tests and screenshots draw the same bars every run). Waves are 1 device, 10%, 50%, the
rest; the canary wave's gate waits for approval (which may be given ahead, while paused).
A wave's gate passes once `needed` devices (95%) run the new image; short of that (too
many offline) it waits for the gate timeout and then halts the rollout. The next wave
starts a 10 s bake later. Devices on a flaky link sometimes fail at 40%.

Honest endings: an abort stops new waves while started devices carry on; a rollback pins
every device of the started waves back (`rolled_back`); waves that never started keep
`pending` devices (the console shows them as untouched). Events are the live rollout's
operator lines: journal-shaped events through fleet_tui.rollout.event_text.
"""

from __future__ import annotations

from fleet_tui.rollout.event_text import EventText
from fleet_tui.rollout.journal import Assignment, Event, WaveRow
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.snapshot import RolloutDevice, RolloutSnapshot, Wave

RATES = {"wifi": 5_000_000.0, "lte": 1_500_000.0, "sat-flaky": 400_000.0}  # bytes/s per device
APPLY_S = 3.0
SOAK_S = 10.0
GATE_TIMEOUT_S = 300.0
POLICY = Policy(waves=("1", "10%", "50%", "100%"), success="95%", gate_timeout=GATE_TIMEOUT_S, max_failed="5%",
                bake=SOAK_S)
GATES = ("canary: 1 running, operator approves", "≥ 95% running in 300 s, bake 10 s",
         "≥ 95% running in 300 s, bake 10 s", "≥ 95% running in 300 s")


class FakeRollout:
    def __init__(self, rid: str, group: str, target: str, devices: list[tuple[str, int, bool]],
                 started: float, link: str, per_gb: float, previous: str = "") -> None:
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
        self.commands: list[tuple[float, str, str]] = []  # (wall time, command, state it found)
        firsts = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        self.text = EventText(POLICY, [Assignment(devices[i][0], k, "full", previous, "", devices[i][1])
                                       for k, first in enumerate(firsts) for i in range(first, first + self.sizes[k])])

    # --- time and commands -----------------------------------------------------------
    def rtime(self, now: float) -> float:
        paused = sum((end if end is not None else now) - start for start, end in self.pauses)
        return max(0.0, now - self.started - paused)

    def control(self, action: str, now: float) -> None:
        rt, state = self.rtime(now), self.state(now)
        if action == "pause" and state == "running":
            self.pauses.append((now, None))
        elif action == "resume" and state == "paused":
            self.pauses[-1] = (self.pauses[-1][0], now)
        elif action == "approve" and self.approved_at is None and state in ("running", "paused"):
            self.approved_at = rt
        elif action in ("abort", "rollback") and self.ended is None:
            self.ended = ("aborted" if action == "abort" else "rolled_back", rt)
        elif action == "rollback" and self.ended is not None and self.ended[0] == "aborted":
            self.ended = ("rolled_back", self.ended[1])  # the waves the abort reached go back
        else:
            state = "ignored:" + state
        self.commands.append((now, action, state))

    # --- plan ------------------------------------------------------------------------
    def _device_plan(self, i: int, wave_start: float) -> tuple[float, float, bool]:
        """(start, download seconds, fails) in rollout time."""
        h = (i * 2654435761) % 1000
        rate = self.rate * (0.6 + (h % 80) / 100)
        return wave_start + (i % 50) * 0.4, self.devices[i][1] / rate, self.flaky and h % 23 == 1

    def _waves(self) -> list[tuple[int, int, float | None, float | None, float | None]]:
        """(first index, size, start, gate passed, gate failed) per wave in rollout time
        (None: not yet / never). Waves after a failed gate or the end never start."""
        out, first, start = [], 0, 0.0
        cut = self.ended[1] if self.ended else None
        for k, size in enumerate(self.sizes):
            if k == 1 and start is not None:
                start = None if self.approved_at is None else max(start, self.approved_at)
            if start is None or (cut is not None and start > cut):
                out.append((first, size, None, None, None))
                first, start = first + size, None
                continue
            ends, failed, failed_at = [], 0, None
            for i in range(first, first + size):
                if not self.devices[i][2]:
                    s, d, fails = self._device_plan(i, start)
                    if fails:
                        failed += 1
                        if failed > max(1, size // 20) and failed_at is None:
                            failed_at = s + d * 0.4
                    else:
                        ends.append(s + d + APPLY_S)
            needed = POLICY.needed_running(size)
            ends.sort()
            passed = ends[needed - 1] if needed and len(ends) >= needed else (start if not needed else None)
            if passed is None and failed_at is None:
                failed_at = start + GATE_TIMEOUT_S
            if failed_at is not None and (passed is None or failed_at < passed):
                passed = None
            else:
                failed_at = None
            out.append((first, size, start, passed, failed_at))
            first, start = first + size, (None if passed is None else passed + SOAK_S)
        return out

    def _device(self, i: int, rt: float, wave_start: float | None) -> tuple[str, int]:
        _id, total, offline = self.devices[i]
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
        rt = self.rtime(now)
        back = self.ended is not None and self.ended[0] == "rolled_back"
        at = min(rt, self.ended[1]) if back and self.ended else rt  # a rollback freezes progress
        waves, devices, wave_rows = self._waves(), [], []
        for k, (first, size, start, passed, failed_at) in enumerate(waves):
            counts: dict[str, int] = {}
            for i in range(first, first + size):
                st, nbytes = self._device(i, at, start)
                if back and start is not None and st != "offline":
                    st = "rolled_back"
                counts[st] = counts.get(st, 0) + 1
                if not light:
                    reason = {"offline": "offline", "failed": "exited on start, exit code 1"}.get(st, "")
                    devices.append(RolloutDevice(self.devices[i][0], k, st, nbytes, self.devices[i][1], reason=reason))
            wstate, deadline = "pending", None
            if start is not None and at >= start:
                if passed is not None and at >= passed:
                    wstate = "succeeded"
                elif failed_at is not None and at >= failed_at:
                    wstate = "failed"
                else:
                    wstate = "running"
                    deadline = None if self.ended else now + (start + GATE_TIMEOUT_S - at)
            done = counts.get("running", 0) + counts.get("rolled_back", 0)
            result = ""
            if wstate == "failed":  # the engine's judgement, as the real snapshot carries it
                failed = counts.get("failed", 0)
                result = (f"{failed} of {done + failed} finished devices failed" if failed > max(1, size // 20) else
                          f"timed out after {GATE_TIMEOUT_S:g}s, {done} of {size} running "
                          f"(needed {POLICY.needed_running(size)})")
            wave_rows.append(Wave(k, size, wstate, GATES[min(k, 3)], done, counts.get("failed", 0), result,
                                  needed=POLICY.needed_running(size), deadline=deadline))
        state = self._state(wave_rows)
        awaiting = state == "running" and self._awaiting(waves, rt)
        approvable = state in ("running", "paused") and self.approved_at is None and len(waves) > 1
        if light:
            return RolloutSnapshot(self.id, self.group, self.target, state, tuple(wave_rows), (), 0, 0, (), None, 0,
                                   (), now, awaiting, approvable=approvable)
        bytes_total = sum(d.bytes for d in devices)
        planned = sum(d.total for d in devices if d.state != "offline")
        moving = state in ("running", "aborted", "paused")
        samples = tuple(self._throughput(rt - s, waves) for s in range(29, -1, -1)) if moving else (0.0,) * 30
        eta = (planned - bytes_total) / samples[-1] if samples[-1] > 0 else None
        return RolloutSnapshot(self.id, self.group, self.target, state, tuple(wave_rows), tuple(devices),
                               bytes_total, planned, samples, eta, bytes_total / 1e9 * self.per_gb,
                               tuple(self._events(now, rt, waves, wave_rows)[-50:]), now, awaiting,
                               approvable=approvable)

    def _awaiting(self, waves: list, rt: float) -> bool:
        return self.approved_at is None and len(waves) > 1 and waves[0][3] is not None and rt >= waves[0][3]

    def _state(self, wave_rows: list[Wave]) -> str:
        if self.ended:
            return self.ended[0]
        if any(w.state == "failed" for w in wave_rows):
            return "halted"
        if self.pauses and self.pauses[-1][1] is None:
            return "paused"
        if all(w.state == "succeeded" for w in wave_rows):
            return "succeeded"
        return "running"

    def _events(self, now: float, rt: float, waves: list, rows: list[Wave]) -> list[tuple[float, str]]:
        """The journal events a live engine would have written by now, as its operator lines."""
        wall = lambda t: now - (rt - t)  # noqa: E731 - rollout time → wall time (pauses aside)
        raw: list[tuple[float, str, int | None, dict]] = [(self.started, "deploy", None, {})]
        results: list[WaveRow] = []
        for k, (_first, size, start, passed, failed_at) in enumerate(waves):
            if start is None or start > rt:
                continue
            raw.append((wall(start), "target", k, {"devices": size}))
            running = rows[k].done
            if passed is not None and passed <= rt:
                passing = POLICY.needed_running(size)  # the gate passes on the needed-th device
                raw.append((wall(passed), "judge", k, {"passed": True, "running": passing, "size": size}))
                if k + 1 < len(waves) and waves[k + 1][2] is not None:
                    raw.append((wall(passed + SOAK_S), "baked", k, {}))
                elif k + 1 == len(waves) and not self.ended:
                    raw.append((wall(passed), "finish", None, {}))
            elif failed_at is not None and failed_at <= rt:
                timeout = rows[k].failed <= max(1, size // 20)
                result = {"passed": False, "running": running, "failed": rows[k].failed, "size": size,
                          "needed": rows[k].needed, "reason": "gate timeout" if timeout else "failed"}
                results.append(WaveRow(k, size, "failed", start, failed_at, result, False, None))
                raw += [(wall(failed_at), "judge", k, result), (wall(failed_at), "halt", k, {})]
        for ts, command, state in self.commands:
            if state.startswith("ignored:"):
                raw.append((ts, "command_ignored", None, {"command": command, "state": state[8:]}))
            elif command == "rollback":
                raw.append((ts, "rollback", None, {"waves": [k for k, w in enumerate(waves) if w[2] is not None]}))
            else:
                raw.append((ts, command, 1 if command == "approve" else None, {}))
        events = [Event(seq, ts, wave, kind, "done", data)
                  for seq, (ts, kind, wave, data) in enumerate(sorted(raw, key=lambda e: e[0]))]
        return self.text.lines(events, results)

    def _throughput(self, rt: float, waves: list) -> float:
        total = 0.0
        for first, size, start, _passed, _failed in waves:
            if start is None or rt < start:
                continue
            for i in range(first, first + size):
                if self.devices[i][2]:
                    continue
                s, secs, fails = self._device_plan(i, start)
                if s <= rt < s + secs * (0.4 if fails else 1):
                    total += self.devices[i][1] / secs
        return total
