"""Rehearsing a rollout: its whole policy run against a model of the group, before a single
device is touched, far faster than real time (`rollout start --rehearse`).

The model is the simulated fleet's own (fleet_tui.devices), evaluated in closed form instead
of being run:
- per device: its link profile — the link it reports, looked up in `[sim.links]` (else the
  default profile) — and whether it fails, decided by the same `FailureModel` (seed, device,
  image, attempt) the simulated fleet uses; its bytes are the rollout's own pull plan, so the
  rehearsal's bytes are the bytes the rollout will move;
- one update takes the link's round trips (manifest, config, one per chunk of each layer)
  plus bytes / bandwidth plus the expected outage time over that span plus the apply time —
  in device seconds, divided by `[sim] speed` — plus half a hub poll of the device, half a
  report period and half an engine poll (the expected waits between the parts);
- the engine: waves start inside windows and within the budget; devices are told once per
  engine poll as the engine paces them — the rate (constant, or exponential: raised by the
  devices that succeeded so far, earlier waves counted whole), at most `max_downloading`
  updating at once, devices on metered links only inside the metered windows; a gate passes
  at the `needed`-th success, fails when the failure criterion trips among finished devices,
  or times out; retries follow the policy's kinds and backoff; bake time is added; approvals
  are waits for a human, not timed;
- pre-stage: the stage waves pull without starting (no apply time, download failures only);
  then the switch wave tells every device at once and costs each a manifest round trip and
  its start (start failures there), moving no layer bytes.
Not modelled: idle outages (a device off while nothing is asked of it).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right, insort
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from fleet_tui import units, windows
from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.devices.simconfig import parse_sim
from fleet_tui.devices.simulated import FailureModel
from fleet_tui.errors import UsageError
from fleet_tui.rollout import pacing
from fleet_tui.rollout.create import plan_rollout
from fleet_tui.rollout.policy import Policy

REQUESTS_PER_UPDATE = 2  # manifest and config, besides one request per chunk of each layer


@dataclass(frozen=True)
class DeviceModel:
    seconds: float  # one attempt at the update, request to report, real seconds
    fails: tuple[str, ...]  # per attempt: "" (succeeds), "download" or "start"


@dataclass
class WaveForecast:
    index: int
    size: int
    bytes: int
    start: float  # seconds from the rehearsal's start
    end: float
    verdict: str  # "passes", "fails", "halts (budget)", "not reached"
    running: int = 0
    failed: int = 0
    risks: list[str] = field(default_factory=list)

    def to_json(self, per_gb: float) -> dict[str, Any]:
        return {"size": self.size, "bytes": self.bytes, "cost": round(self.bytes / 1e9 * per_gb, 2),
                "start_s": round(self.start, 1), "end_s": round(self.end, 1), "verdict": self.verdict,
                "running": self.running, "failed": self.failed, "risks": self.risks}


def device_seconds(nbytes: int, layers: Sequence[int], profile: Any, chunk: int, apply: float) -> float:
    """Device seconds of one update over `profile` (as fleet_tui.devices.simulated spends them)."""
    requests = REQUESTS_PER_UPDATE + sum(math.ceil(size / chunk) for size in layers)
    busy = requests * profile.latency + nbytes / profile.bandwidth
    outages = profile.offline_per_hour * busy / 3600.0 * profile.offline_seconds
    return busy + outages + apply


def rehearse_waves(policy: Policy, waves: Sequence[Sequence[str]], wave_bytes: Sequence[int], models: dict[str, DeviceModel],
                   budget: int | None, start_wall: float, engine_poll: float, metered: frozenset[str] = frozenset(),
                   switch: dict[str, DeviceModel] | None = None) -> list[WaveForecast]:
    """The forecast of every wave (`wave_bytes`: what each wave's plan pulls); stops at the first
    that halts or fails. `switch`: the devices' models at a pre-staged rollout's switch, one
    more wave of every device (it pulls no layer)."""
    out: list[WaveForecast] = []
    t, spent, stopped = 0.0, 0, False
    everyone = [d for ids in waves for d in ids]
    staging = policy if switch is None else replace(policy, retries_download=0, retries_start=0)  # as the engine
    plans = [(ids, models, staging, nbytes) for ids, nbytes in zip(waves, wave_bytes)]
    if switch is not None:  # told at once (no rate, no limit: the bytes are on the devices)
        plans.append((everyone, switch, replace(policy, rate=0, max_downloading=0, metered_windows=()), 0))
    for i, (ids, wave_models, wave_policy, nbytes) in enumerate(plans):
        forecast = WaveForecast(i, len(ids), nbytes, t, t, "not reached")
        out.append(forecast)
        if stopped:
            continue
        is_open, change = windows.window_state(policy.windows, policy.timezone, start_wall + t)
        if not is_open:
            forecast.risks.append(f"waits {units.span(change)} for its window")
            t += change
        if budget is not None and spent + nbytes > budget:
            forecast.verdict, stopped = "halts (budget)", True
            forecast.risks.append(f"spend would reach {spent + nbytes:,} B of the {budget:,} B budget")
            forecast.start = forecast.end = t
            continue
        if i > 0 and policy.approve_each:
            forecast.risks.append("waits for `rollout approve` (not timed)")
        forecast.start = t
        earlier = sum(len(w) for w in waves[:i]) if switch is None or i < len(waves) else 0
        end, running, failed, verdict, risks = _run_wave(wave_policy, ids, wave_models, t, engine_poll, start_wall,
                                                         earlier, metered)
        forecast.end, forecast.running, forecast.failed, forecast.verdict = end, running, failed, verdict
        forecast.risks += risks
        spent += nbytes
        t = end + (policy.bake if verdict == "passes" else 0.0)
        stopped = verdict != "passes"
    return out


def _outcome(model: DeviceModel, told: float, policy: Policy, poll: float) -> tuple[float, bool]:
    """(when the device reports its end, succeeded), retries of the right kind included."""
    if not model.fails[0]:  # the common case: the first attempt succeeds
        return told + model.seconds, True
    when = told
    for attempt, failure in enumerate(model.fails, start=1):
        when += model.seconds if failure != "download" else model.seconds * 0.1
        if not failure:
            return when, True
        allowed = policy.retries_download if failure == "download" else policy.retries_start
        if attempt > allowed:
            return when, False
        when += policy.retry_backoff * 2 ** (attempt - 1) + poll
    return when, False


def _run_wave(policy: Policy, ids: Sequence[str], models: dict[str, DeviceModel], t0: float, poll: float,
              start_wall: float, earlier: int = 0, metered: frozenset[str] = frozenset()
              ) -> tuple[float, int, int, str, list[str]]:
    """(end, running, failed, verdict, risks) of one wave starting at t0."""
    told, finishes = _tell(policy, ids, models, t0, poll, earlier, start_wall, metered)
    # the engine judges once per poll, on everything reported by then (never one device at a time)
    by_poll: dict[float, list[bool]] = {}
    for when, ok in finishes:
        tick = t0 + math.ceil(max(0.0, when - t0) / poll) * poll if poll > 0 else when
        by_poll.setdefault(tick, []).append(ok)
    size, needed = len(ids), policy.needed_running(len(ids))
    tagged_end = (max(told) if told else t0) + poll
    deadline = tagged_end + policy.gate_timeout
    running = failed = 0
    risks: list[str] = []
    for when in sorted(by_poll):
        if when > deadline:
            break
        reported = by_poll[when]
        running, failed = running + sum(reported), failed + len(reported) - sum(reported)
        if policy.failure_exceeded(failed, running + failed, size):
            return when, running, failed, "fails", [f"{failed} devices predicted to fail (limit {policy.max_failed})"]
        if running >= needed:
            took = when - tagged_end
            if took > 0.8 * policy.gate_timeout:
                risks.append(f"gate at risk: needs {took:.0f}s of its {policy.gate_timeout:g}s timeout")
            if failed:
                risks.append(f"{failed} predicted failures (limit {policy.max_failed})")
            is_open, _ = windows.window_state(policy.windows, policy.timezone, start_wall + when)
            if not is_open:
                risks.append("its window closes before the wave ends")
            return when, running, failed, "passes", risks
    return deadline + poll, running, failed, "fails", [f"gate times out: {running} of {size} running (needed {needed})"]


def _tell(policy: Policy, ids: Sequence[str], models: dict[str, DeviceModel], t0: float, poll: float, earlier: int,
          start_wall: float, metered: frozenset[str]) -> tuple[list[float], list[tuple[float, bool]]]:
    """When each device is told and how it ends, paced as the engine paces (fleet_tui.rollout.
    tagging): once per poll, as many as the rate allows — `rate_now` of the devices succeeded so
    far, earlier waves counted whole — and `max_downloading` leaves room for, metered devices
    only inside a metered window. Steps from one moment something can change to the next."""
    n = len(ids)
    told, ends = [0.0] * n, [(0.0, False)] * n
    held = set(metered) if policy.metered_windows else set()
    if not policy.rate and not policy.max_downloading and not held.intersection(ids):  # all told at the wave's start
        for i, d in enumerate(ids):
            told[i] = t0 + poll
            ends[i] = _outcome(models[d], told[i], policy, poll)
        return told, ends
    tags: list[float] = []  # tell times so far, in order
    done_ok: list[float] = []  # sorted report times of successes
    done_all: list[float] = []  # sorted report times of every told device
    free = deque(i for i in range(n) if ids[i] not in held)
    holding = deque(i for i in range(n) if ids[i] in held)
    t = t0 + poll
    for _ in range(20 * n + 10_000):  # each step tells a device or reaches the next change
        if not free and not holding:
            break
        allowed, rate = 1 << 30, 0.0
        if policy.rate:
            rate = policy.rate_now(earlier + bisect_right(done_ok, t))
            allowed = pacing.rate_allowance(rate, tags[bisect_right(tags, t - pacing.RATE_SPAN_S):], t)
        if policy.max_downloading:
            allowed = min(allowed, policy.max_downloading - (len(tags) - bisect_right(done_all, t)))
        is_open, change = (windows.window_state(policy.metered_windows, policy.timezone, start_wall + t)
                           if held else (True, 0.0))
        window_open, reopens = (windows.window_state(policy.windows, policy.timezone, start_wall + t)
                                if policy.windows else (True, 0.0))  # a window closing mid-wave stops telling
        take: list[int] = []
        for queue in ((free, holding) if is_open else (free,)) if window_open else ():
            while queue and len(take) < allowed:
                take.append(queue.popleft())
        for i in take:
            told[i] = t
            ends[i] = _outcome(models[ids[i]], t, policy, poll)
            tags.append(t)
            insort(done_all, ends[i][0])
            if ends[i][1]:
                insort(done_ok, ends[i][0])
        # the next moment something can change: a report, a rate slot, a window opening
        finished = bisect_right(done_all, t)
        later = [x for x in (done_all[finished] if finished < len(done_all) else None,
                             tags[-1] + pacing.RATE_SPAN_S / rate if rate and tags else None,
                             t + change if held and not is_open else None,
                             t + reopens if not window_open else None) if x is not None and x > t]
        nxt = min(later) if later and not take else t + poll
        if poll > 0:
            nxt = t0 + math.ceil((max(nxt, t + poll) - t0) / poll - 1e-9) * poll
        t = nxt if nxt > t else t + 1e-3
    for i in [*free, *holding]:  # never reached within the step budget: told last
        told[i] = t
        ends[i] = _outcome(models[ids[i]], t, policy, poll)
    return told, ends


@dataclass(frozen=True)
class Rehearsal:
    rollout: Any  # the PlannedRollout (nothing journalled)
    waves: list[WaveForecast]
    model: str  # what the devices were modelled from, in words

    @property
    def seconds(self) -> float:
        reached = [w for w in self.waves if w.verdict != "not reached"]
        return reached[-1].end if reached else 0.0

    @property
    def bytes(self) -> int:
        return sum(w.bytes for w in self.waves if w.verdict in ("passes", "fails"))


def rehearse(config: Any, hub: Any, journal: Any, target: str, group: str, policy: Policy, rebase: str | None = None,
             auto_rebase: bool = False, start_wall: float | None = None) -> Rehearsal:
    """Plan the rollout exactly as `rollout start` would (nothing journalled, no device told),
    then forecast it wave by wave on the simulated fleet's model of its devices."""
    planned = plan_rollout(config, hub, journal, target, group, policy, rebase, auto_rebase,
                           confirm_over_budget=lambda _why: True, check_active=False)
    policy = Policy.from_dict(planned.spec["policy"])
    spec, model = _sim_model(config)
    failures = FailureModel(spec.failures, spec.seed) if spec is not None else FailureModel()
    links = spec.links if spec is not None else {}
    default = links.get("default") or _default_link()
    speed = spec.speed if spec is not None else 1.0
    chunk = spec.chunk_bytes if spec is not None else 256 * 1024
    apply = spec.apply_seconds if spec is not None else 3.0
    fleet_poll = spec.poll_seconds if spec is not None else 2.0
    report = 1.0 / spec.report_hz if spec is not None else 0.25
    link_of: dict[str, str] = {}
    for st in planned.states.states:
        link_of.update(dict.fromkeys(st.device_ids, st.key.link))
    attempts = 1 + max(policy.retries_download, policy.retries_start)
    models: dict[str, DeviceModel] = {}
    switch: dict[str, DeviceModel] | None = {} if policy.pre_stage else None
    waits = fleet_poll / 2 + report / 2
    never = (False,) * attempts
    applies = {(kind, v["image"]): failures.applies(kind, v["image"])
               for kind in ("download", "start") for v in planned.spec["variants"].values()}
    # devices of a state pull alike and most never fail: one model object per distinct model
    shared: dict[tuple[Any, ...], DeviceModel] = {}
    for a in planned.assignments:
        d, link = a.device_id, link_of[a.device_id]
        image = planned.spec["variants"][a.variant]["image"]
        downloads = tuple(failures.fails("download", d, image, k) for k in range(1, attempts + 1)) \
            if applies[("download", image)] else never
        starts = tuple(failures.fails("start", d, image, k) for k in range(1, attempts + 1)) \
            if applies[("start", image)] else never
        key = (a.planned_bytes, link, downloads, starts)
        dm = shared.get(key)
        if dm is None:
            profile = links.get(link) or default
            pull = device_seconds(a.planned_bytes, [a.planned_bytes], profile, chunk, 0.0) / speed
            if switch is None:
                kinds = tuple("download" if dl else "start" if s else "" for dl, s in zip(downloads, starts))
                dm = DeviceModel(pull + apply / speed + waits, kinds)
            else:  # staging pulls without starting; the switch only starts (a manifest round trip)
                start = (REQUESTS_PER_UPDATE * profile.latency + apply) / speed
                dm = DeviceModel(pull + waits, tuple("download" if dl else "" for dl in downloads))
                shared[("switch", *key)] = DeviceModel(start + waits, tuple("start" if s else "" for s in starts))
            shared[key] = dm
        models[d] = dm
        if switch is not None:
            switch[d] = shared[("switch", *key)]
    by_wave: dict[int, list[str]] = {}
    wave_bytes: dict[int, int] = {}
    for a in planned.assignments:
        by_wave.setdefault(a.wave, []).append(a.device_id)
        wave_bytes[a.wave] = wave_bytes.get(a.wave, 0) + a.planned_bytes
    budget = (planned.spec.get("budget") or {}).get("bytes")
    waves = rehearse_waves(policy, [by_wave[w] for w in sorted(by_wave)], [wave_bytes[w] for w in sorted(by_wave)],
                           models, budget,
                           time.time() if start_wall is None else start_wall, policy.poll,
                           frozenset(planned.metered), switch)
    return Rehearsal(planned, waves, model + ("; idle outages not modelled" if links else ""))


def _sim_model(config: Any) -> tuple[Any, str]:
    try:
        spec = parse_sim(config.sim)
    except UsageError:
        return None, "no [sim] section: default link (2 Mbit/s, 100 ms), no failures, apply 3 s"
    rules = len(spec.failures)
    return spec, (f"[sim]: {len(spec.links)} link profiles, {rules} failure rule{'' if rules == 1 else 's'}, "
                  f"seed {spec.seed}, speed {spec.speed:g}x")


def _default_link() -> Any:
    return LinkProfile()
