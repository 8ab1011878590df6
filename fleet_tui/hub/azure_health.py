"""How a deployment is doing, from the hub's own figures: what a gate reads on a big fleet.

A wave whose devices a target condition selects (rollout/shard_waves.py) is judged without
paging its twins: the deployment's metrics — the hub's `systemMetrics` (`targetedCount`,
`appliedCount`) and fleet-tui's custom `running` metric (devices the deployment applies to
that report its image running: azure_deploy._running_metric) — plus **one** query that lists
only the devices it applies to that report trouble (`lastDesiredStatus.code` other than 200,
or the managed module backing off / failed / unhealthy / dead), each classified as the
twin reader classifies it (azure_agent.module_reports: a 500 that says "still pulling" is a
slow download, not a failure).

Cadence (learn.microsoft.com/azure/iot-edge/module-deployment-monitoring): the hub computes
metrics shortly after a configuration changes, then about every 5 minutes; reading them more
often than every `ttl` seconds (default 30) gains nothing, so one read serves every caller of
this process for `ttl` (the engine's gate and the console's snapshots share it). A metric the
hub has not computed yet is absent, as is a deployment not created yet: `measured` is False
and a gate stays undecided.

Cost per read: one configuration GET per deployment (configurations class: 20/min/unit) and
one query (queries class), whatever the size of the wave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from fleet_tui.errors import NotFound
from fleet_tui.hub import azure_agent as agent_state
from fleet_tui.hub.azure_query import literal, path_name
from fleet_tui.hub.protocol import DeviceTwin

FAILING_PAGE = 1000  # one page: past that many failures every gate has long failed
TROUBLE = sorted(agent_state.FAILED_RUNTIME)


@dataclass(frozen=True)
class DeploymentHealth:
    measured: bool  # every deployment asked for has its metrics computed by the hub
    targeted: int
    applied: int
    running: int  # applied and reporting the deployment's image running
    failing: tuple[DeviceTwin, ...]  # applied and failed, as the twin reader classifies them
    read_at: float  # our clock, when the hub was asked
    lagging: tuple[DeviceTwin, ...] = ()  # (asked for) targeted, not running its image yet: failed ones too
    lagging_complete: bool = False  # `lagging` is every such device (one page held them all)


def failing_query(deployment_id: str, module: str) -> str:
    mod = path_name(module, "module")
    trouble = ", ".join(literal(s) for s in TROUBLE)
    return (f"SELECT * FROM devices.modules WHERE moduleId = {literal(agent_state.EDGE_AGENT)} AND "
            f"configurations.[[{deployment_id}]].status = 'Applied' AND "
            f"(properties.reported.lastDesiredStatus.code != 200 OR "
            f"properties.reported.modules.{mod}.runtimeStatus IN [{trouble}])")


def lagging_query(deployment_id: str, module: str, image: str) -> str:
    """The devices it targets that do not run `image` yet (undefined reports included)."""
    mod = path_name(module, "module")
    at = f"properties.reported.modules.{mod}"
    return (f"SELECT * FROM devices.modules WHERE moduleId = {literal(agent_state.EDGE_AGENT)} AND "
            f"(configurations.[[{deployment_id}]].status = 'Applied' OR "
            f"configurations.[[{deployment_id}]].status = 'Targeted') AND "
            f"(NOT IS_DEFINED({at}.runtimeStatus) OR {at}.runtimeStatus != 'running' OR "
            f"{at}.settings.image != {literal(image)})")


class HealthReader:
    """`read(ids, module, tag, key_of)` → DeploymentHealth, cached per (ids, module) for `ttl` s."""

    def __init__(self, hub: Any, ttl: float = 30.0) -> None:
        self.hub, self.ttl = hub, ttl
        self._cache: dict[tuple[tuple[str, ...], str], DeploymentHealth] = {}

    def read(self, deployment_ids: Sequence[str], module: str, tag: str,
             key_of: Callable[[str], str], lagging: bool = False,
             clock: Callable[[], float] = time.monotonic, every_lagging: bool = False) -> DeploymentHealth:
        """`tag`/`key_of`: the failing twins carry `{tag: key_of(deployment id)}` so a reader
        that keys devices by rollout tag value (gate.views_of) sees which deployment they are on.
        `lagging`: also list (one page) the devices not running the deployment's image yet —
        what a status needs to name every device, once the wave is nearly done; `every_lagging`:
        every page of them (what a rollout's final states need, read once)."""
        cache_key = (tuple(deployment_ids), module, lagging, every_lagging)
        now = clock()
        hit = self._cache.get(cache_key)
        if hit is not None and now - hit.read_at < self.ttl:
            return hit
        measured, targeted, applied, running = True, 0, 0, 0
        failing: list[DeviceTwin] = []
        behind: list[DeviceTwin] = []
        complete = lagging
        for dep_id in deployment_ids:
            try:
                deployment = self.hub.get_deployment(dep_id)
            except NotFound:  # not created yet (the wave is being told) or folded away
                measured = complete = False
                continue
            metrics = deployment.metrics
            measured &= "running" in metrics and "targetedCount" in metrics
            targeted += int(metrics.get("targetedCount", 0))
            applied += int(metrics.get("appliedCount", 0))
            running += int(metrics.get("running", 0))
            rows, _ = self.hub.query.page(failing_query(dep_id, module), FAILING_PAGE)
            for row in rows:
                device = {"deviceId": str(row.get("deviceId", "")), "tags": {tag: key_of(dep_id)}}
                # connected: a failure counts as one whether or not the runtime is up now
                twin = replace(self.hub._twin(device, row, None), connected=True)
                report = twin.reported.get(module)
                if report is not None and report.state == "failed":  # gone offline since: still failed
                    failing.append(twin)
            spec = deployment.modules.get(module)
            if lagging and spec is not None:
                sql = lagging_query(dep_id, module, spec.image)
                if every_lagging:
                    rows, token = list(self.hub.query.all(sql, FAILING_PAGE)), None
                else:
                    rows, token = self.hub.query.page(sql, FAILING_PAGE)
                complete &= token is None
                behind += [self.hub._twin({"deviceId": str(r.get("deviceId", "")), "tags": {tag: key_of(dep_id)}}, r, None)
                           for r in rows]
        health = DeploymentHealth(measured, targeted, applied, running, tuple(failing), now, tuple(behind),
                                  complete and measured)
        self._cache[cache_key] = health
        return health
