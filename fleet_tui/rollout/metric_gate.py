"""Judging a condition wave (shard_waves.py) from the hub's own figures, not from its twins.

Each such wave has its own deployment, so the hub's metrics of it are that wave's: the gate
reads them and the one query listing its failing devices (hub/azure_health.py) — a
configuration GET and a query per read, at most one read per `ttl` whatever the wave's size,
instead of the wave's runtime twins on every poll. Devices a retry moved to a retry
deployment (a tag, so few) are read as before, for their failures since the retry; once they
run, the wave's own metric counts them (the retry is layered over the wave's deployment,
which stays Applied), so they are never counted twice.

Same rules as gate.judge: a failure counts only when reported since the wave started (hub
clock) or since the device's own retry; a device waiting for its retry is neither failed nor
running; the failure criterion, then the success count, then the timeout (from the gate's
opening) decide. Metrics the hub has not computed yet decide nothing (`measured`).
"""

from __future__ import annotations

from typing import Any

from fleet_tui.hub.azure_health import FAILING_PAGE
from fleet_tui.rollout.context import RolloutContext
from fleet_tui.rollout.create import deployment_id
from fleet_tui.rollout.gate import DeviceView, GateResult, count_outcomes, read_devices, views_of
from fleet_tui.rollout.journal import WaveRow
from fleet_tui.rollout.shard_waves import by_condition, wave_keys


def reads_metrics(hub: Any, spec: dict[str, Any]) -> bool:
    """A condition-wave rollout on a hub that measures its deployments (Azure)."""
    return getattr(hub, "health", None) is not None and by_condition(spec) and bool(spec.get("shard_cuts"))


def wave_health(hub: Any, spec: dict[str, Any], rollout_id: str, wave: int, module: str, lagging: bool = False,
                every_lagging: bool = False) -> Any:
    """The hub's figures for wave `wave`'s deployment(s) (hub/azure_health.DeploymentHealth)."""
    prefix = deployment_id(rollout_id, "")
    ids = [deployment_id(rollout_id, k) for k in wave_keys(spec, [wave])]
    return hub.health.read(ids, module, spec["tag"], lambda dep_id: dep_id[len(prefix):], lagging,
                           every_lagging=every_lagging)


def wave_views(ctx: RolloutContext, wave: int, module: str, retried: set[str]) -> tuple[Any, dict[str, DeviceView]]:
    """(the wave deployment's health, views of its failing devices and of its retried ones)."""
    health = wave_health(ctx.hub, ctx.spec, ctx.id, wave, module)
    views = views_of(health.failing, ctx.tag, module)
    in_wave = {a.device_id for a in ctx.by_wave[wave]}
    mine = sorted(d for d in retried if d in in_wave)
    if mine:
        views.update(read_devices(ctx.hub, ctx.id, module, mine))
    return health, views


def judge_by_metrics(ctx: RolloutContext, wave: WaveRow, health: Any, views: dict[str, DeviceView],
                     since: dict[str, float], waiting: set[str], now: float, timeout_from: float | None,
                     held: int = 0) -> GateResult | None:
    """The wave's verdict (None: undecided). `views`: its failing and retried devices (wave_views);
    `since`: each retried device's last retry (hub clock); `waiting`: failed devices a retry
    will still try."""
    policy, size = ctx.policy, len(ctx.by_wave[wave.idx]) - held
    retried = [d for d in since if d in views and d not in waiting]
    _, retried_failed = count_outcomes(retried, ctx.expected, views, wave.started or 0.0, since=since)
    failing = [t.device_id for t in health.failing if t.device_id not in since and t.device_id not in waiting]
    _, failed = count_outcomes(failing, ctx.expected, views, wave.started or 0.0)
    # a retried device stays on the wave's deployment (the retry is layered over it), so the
    # metric already counts it once it runs: only its failures since the retry are added
    running, failed = health.running, failed + retried_failed
    finished, needed = running + failed, policy.needed_running(size)

    def result(passed: bool, reason: str) -> GateResult:
        return GateResult(passed, running, failed, finished, size, needed, reason)

    if policy.failure_exceeded(failed, finished, size):
        return result(False, f"{failed} of {finished} finished devices failed (limit {policy.max_failed}; hub metrics)")
    if health.measured and running >= needed:
        return result(True, f"{running} of {size} running the new image (needed {needed}; hub metrics)")
    if now - (timeout_from if timeout_from is not None else wave.started or now) >= policy.gate_timeout:
        what = "the hub had not measured the wave yet" if not health.measured else f"{running} of {size} running"
        return result(False, f"gate timeout after {policy.gate_timeout:g}s: {what}, needed {needed}")
    return None


def snapshot_fill(hub: Any, spec: dict[str, Any], rollout_id: str, waves: list[WaveRow], state: str,
                  module: str, exact: bool = False, going_back: int | None = None
                  ) -> tuple[dict[str, DeviceView], dict[int, tuple[str, int]]]:
    """What a status snapshot of a condition-wave rollout reads instead of every told twin:
    (views of each started wave's failing devices — and, once the hub counts at most a page of
    them not running yet (`exact`: however many), of those too; per started wave, the state its
    other devices read — `running` when every device of the wave is accounted for (the hub
    targets the whole wave and listed all the others), else `applying`; after a rollback
    `rolled_back` once the back deployments count every told device back — and the hub's
    running count). `going_back`: how many told devices have an image to go back to (default:
    every told device)."""
    views: dict[str, DeviceView] = {}
    fill: dict[int, tuple[str, int]] = {}
    back = None
    if state == "rolled_back":
        ids = [deployment_id(rollout_id, k) for k in spec["rollbacks"].values()]
        back = hub.health.read(ids, module, spec["tag"], lambda dep_id: dep_id[len(deployment_id(rollout_id, "")):])
    told = sum(w.size for w in waves if w.started is not None) if going_back is None else going_back
    for w in waves:
        if w.started is None:
            continue
        health = wave_health(hub, spec, rollout_id, w.idx, module)
        near = (back is None and health.measured and health.targeted >= w.size  # rolled back: nothing lags
                and (exact or w.size - health.running <= FAILING_PAGE))
        if near:
            health = wave_health(hub, spec, rollout_id, w.idx, module, lagging=True, every_lagging=exact)
        views.update(views_of(health.lagging, spec["tag"], module))
        views.update(views_of(health.failing, spec["tag"], module))
        whole = near and health.lagging_complete and health.targeted >= w.size
        settled = "running" if whole else "applying"
        if back is not None:  # the back deployments span every told wave: all of them must be back
            settled = "rolled_back" if back.measured and back.running >= told else "applying"
        fill[w.idx] = (settled, health.running)
    return views, fill
