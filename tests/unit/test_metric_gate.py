"""A condition wave judged from the hub's metrics (rollout/metric_gate.judge_by_metrics): the
deployment's `running` metric already counts a retried device once it runs, failures since a
retry count, and an unmeasured wave decides nothing until the timeout."""

from __future__ import annotations

import types

from fleet_tui.hub.azure_health import DeploymentHealth
from fleet_tui.rollout.gate import DeviceView
from fleet_tui.rollout.metric_gate import judge_by_metrics
from fleet_tui.rollout.policy import Policy

NEW = "sha256:" + "b" * 64
IDS = [f"d{i}" for i in range(20)]
NS = types.SimpleNamespace


def _ctx(**policy) -> NS:
    return NS(policy=Policy(success="95%", **policy), by_wave={1: [NS(device_id=d) for d in IDS]},
              expected={d: NEW for d in IDS})


def _judge(running: int, views=None, since=None, measured=True, now=300.0, ctx=None):
    health = DeploymentHealth(measured=measured, targeted=20, applied=20, running=running, failing=(), read_at=0.0)
    return judge_by_metrics(ctx or _ctx(), NS(idx=1, started=100.0), health, views or {}, since or {}, set(), now, 290.0)


def test_a_retried_device_that_runs_is_counted_once():
    views = {"d0": DeviceView("d0", "full_r1", "running", NEW, 0, 200.0, True)}  # retried, runs now
    assert _judge(18, views, {"d0": 150.0}) is None  # 18 of the 20 (d0 among them): 19 needed, undecided
    passed = _judge(19, views, {"d0": 150.0})
    assert passed.passed and passed.running == 19 and "hub metrics" in passed.reason


def test_a_retried_device_failing_since_its_retry_counts_as_failed():
    views = {"d0": DeviceView("d0", "full_r1", "failed", NEW, 0, 200.0, True, (), "exit 1")}
    verdict = _judge(18, views, {"d0": 150.0}, ctx=_ctx(max_failed="0"))
    assert verdict is not None and not verdict.passed and verdict.failed == 1


def test_an_unmeasured_wave_waits_then_times_out_saying_so():
    assert _judge(0, measured=False) is None
    late = _judge(0, measured=False, now=290.0 + Policy().gate_timeout)
    assert late is not None and not late.passed and "not measured" in late.reason
