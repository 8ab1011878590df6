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
- the engine: waves start inside windows and within the budget; devices are told at the
  policy's (constant) rate; a gate passes at the `needed`-th success, fails when the failure
  criterion trips among finished devices, or times out; retries follow the policy's kinds and
  backoff; bake time is added; approvals are waits for a human, not timed.
Not modelled (said in the output's model line when used): idle outages (a device off while
nothing is asked of it), the exponential rate, `max_downloading`, metered-link holds and the
pre-stage switch wave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from fleet_tui.rollout import pacing
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


def rehearse_waves(policy: Policy, waves: Sequence[Sequence[str]], plan: dict[str, int], models: dict[str, DeviceModel],
                   budget: int | None, start_wall: float, engine_poll: float) -> list[WaveForecast]:
    """The forecast of every wave; stops at the first that halts or fails."""
    out: list[WaveForecast] = []
    t, spent, stopped = 0.0, 0, False
    for i, ids in enumerate(waves):
        wave_bytes = sum(plan.get(d, 0) for d in ids)
        forecast = WaveForecast(i, len(ids), wave_bytes, t, t, "not reached")
        out.append(forecast)
        if stopped:
            continue
        is_open, change = pacing.window_state(policy.windows, policy.timezone, start_wall + t)
        if not is_open:
            forecast.risks.append(f"waits {pacing.span_text(change)} for its window")
            t += change
        if budget is not None and spent + wave_bytes > budget:
            forecast.verdict, stopped = "halts (budget)", True
            forecast.risks.append(f"spend would reach {spent + wave_bytes:,} B of the {budget:,} B budget")
            forecast.start = forecast.end = t
            continue
        if i > 0 and policy.approve_each:
            forecast.risks.append("waits for `rollout approve` (not timed)")
        forecast.start = t
        end, running, failed, verdict, risks = _run_wave(policy, ids, models, t, engine_poll, start_wall)
        forecast.end, forecast.running, forecast.failed, forecast.verdict = end, running, failed, verdict
        forecast.risks += risks
        spent += wave_bytes
        t = end + (policy.bake if verdict == "passes" else 0.0)
        stopped = verdict != "passes"
    return out


def _run_wave(policy: Policy, ids: Sequence[str], models: dict[str, DeviceModel], t0: float, poll: float,
              start_wall: float) -> tuple[float, int, int, str, list[str]]:
    """(end, running, failed, verdict, risks) of one wave starting at t0."""
    told = _tag_times(policy, len(ids), t0, poll)
    finishes: list[tuple[float, bool]] = []  # (when the device reports it, succeeded)
    for device_id, at in zip(ids, told):
        model = models[device_id]
        when, ok = at, False
        for attempt, failure in enumerate(model.fails, start=1):
            when += model.seconds if failure != "download" else model.seconds * 0.1
            if not failure:
                ok = True
                break
            allowed = policy.retries_download if failure == "download" else policy.retries_start
            if attempt > allowed:
                break
            when += policy.retry_backoff * 2 ** (attempt - 1) + poll
        finishes.append((when, ok))
    # the engine judges once per poll, on everything reported by then (never one device at a time)
    by_poll: dict[float, list[bool]] = {}
    for when, ok in finishes:
        tick = t0 + math.ceil(max(0.0, when - t0) / poll) * poll if poll > 0 else when
        by_poll.setdefault(tick, []).append(ok)
    size, needed = len(ids), policy.needed_running(len(ids))
    tagged_end = (told[-1] if told else t0) + poll
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
            is_open, _ = pacing.window_state(policy.windows, policy.timezone, start_wall + when)
            if not is_open:
                risks.append("its window closes before the wave ends")
            return when, running, failed, "passes", risks
    return deadline + poll, running, failed, "fails", [f"gate times out: {running} of {size} running (needed {needed})"]


def _tag_times(policy: Policy, n: int, t0: float, poll: float) -> list[float]:
    """When each of `n` devices is told, under the rate (concurrency is not modelled past it)."""
    if not policy.rate:
        return [t0 + poll] * n
    rate = policy.rate
    first = max(1, math.floor(rate / 60))
    return [t0 + poll + (0.0 if k < first else (k - first + 1) * 60.0 / rate) for k in range(n)]


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
    import time

    from fleet_tui.devices.simulated import FailureModel
    from fleet_tui.rollout.create import plan_rollout

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
    module = planned.spec["module"]
    twins = {t.device_id: t for t in planned.twins}
    attempts = 1 + max(policy.retries_download, policy.retries_start)
    plan = {a.device_id: a.planned_bytes for a in planned.assignments}
    models: dict[str, DeviceModel] = {}
    for a in planned.assignments:
        profile = links.get(twins[a.device_id].link_name(module)) or default
        image = planned.spec["variants"][a.variant]["image"]
        kinds = tuple("download" if failures.fails("download", a.device_id, image, k)
                      else "start" if failures.fails("start", a.device_id, image, k) else "" for k in range(1, attempts + 1))
        seconds = device_seconds(a.planned_bytes, [a.planned_bytes], profile, chunk, apply) / speed
        models[a.device_id] = DeviceModel(seconds + fleet_poll / 2 + report / 2, kinds)
    by_wave: dict[int, list[str]] = {}
    for a in planned.assignments:
        by_wave.setdefault(a.wave, []).append(a.device_id)
    budget = (planned.spec.get("budget") or {}).get("bytes")
    waves = rehearse_waves(policy, [by_wave[w] for w in sorted(by_wave)], plan, models, budget,
                           time.time() if start_wall is None else start_wall, policy.poll)
    unmodelled = [name for used, name in ((policy.rate_every, "the exponential rate"),
                                          (policy.max_downloading, "max_downloading"),
                                          (policy.metered_windows, "metered-link holds"),
                                          (policy.pre_stage, "the pre-stage switch wave")) if used]
    return Rehearsal(planned, waves, model + (f"; not modelled: {', '.join(unmodelled)}" if unmodelled else ""))


def _sim_model(config: Any) -> tuple[Any, str]:
    from fleet_tui.devices.simconfig import parse_sim
    from fleet_tui.errors import UsageError

    try:
        spec = parse_sim(config.sim)
    except UsageError:
        return None, "no [sim] section: default link (2 Mbit/s, 100 ms), no failures, apply 3 s"
    rules = len(spec.failures)
    return spec, (f"[sim]: {len(spec.links)} link profiles, {rules} failure rule{'' if rules == 1 else 's'}, "
                  f"seed {spec.seed}, speed {spec.speed:g}x")


def _default_link() -> Any:
    from fleet_tui.devices.linkmodel import LinkProfile

    return LinkProfile()
