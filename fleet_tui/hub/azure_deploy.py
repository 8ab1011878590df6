"""Deployments on Azure IoT Hub: IoT Edge configurations through `IoTHubConfigurationManager`.

- create: layered by default (the managed module only, its whole definition — azure_edge);
  base with the operator's manifest or a minimal one (no placeholder password ever). The
  hub holds at most `max_configurations` (100 on basic/standard hubs, layered included) and
  answers the next create with 413 `ConfigurationCountLimitExceeded`: `room()` counts first,
  so callers refuse in one line naming the limit before anything is half-created.
- every fleet-tui deployment carries labels `fleet-tui.kind`, `fleet-tui.group` and a custom
  metric `running` (devices the hub applied it to that report its image running), which is
  how the groups view learns what runs without paging twins (`images_by_group`).
- content is checked against the hub's deployment limits first (azure_limits: 50 modules,
  32 KB of desired properties per module twin, 4 KB per value);
- content is immutable: `update_deployment` changes condition, priority and labels only,
  re-sending the etag *quoted* (the SDK sends it bare, and the hub answers 409 to that —
  azure-iot-hub-python#2), with one re-read and retry on a conflict.
"""

from __future__ import annotations

import time
from typing import Any

from azure.iot.hub.models import (
    Configuration,
    ConfigurationContent,
    ConfigurationMetrics,
    ConfigurationQueriesTestInput,
)

from fleet_tui.errors import Conflict, FleetError, UsageError
from fleet_tui.hub import azure_edge as edge
from fleet_tui.hub.azure_agent import EDGE_AGENT, image_digest
from fleet_tui.hub.azure_limits import check_content
from fleet_tui.hub.azure_query import literal, path_name
from fleet_tui.hub.protocol import Deployment

RANKS_TTL = 30.0  # seconds a read of configuration priorities is reused
GROUP_LABEL = "fleet-tui.group"


def _quoted(etag: str) -> str:
    return etag if etag == "*" or (len(etag) > 1 and etag[0] == etag[-1] == '"') else f'"{etag}"'


class Deployments:
    """Mixed into AzureHub: `configs`, `caller`, `module`, auth and limits come from there."""

    configs: Any
    caller: Any
    module: str
    host: str
    max_configurations: int
    _ranks_cache: tuple[float, dict[str, tuple[int, float]]] | None

    def _ranks(self) -> dict[str, tuple[int, float]]:
        """id → (priority, created) of every configuration, read at most every RANKS_TTL s
        and only for devices with several applied ones (deployment writes drop the cache)."""
        now = time.monotonic()
        if self._ranks_cache is None or now - self._ranks_cache[0] > RANKS_TTL:
            self._ranks_cache = (now, {d.id: (d.priority, d.created) for d in self.list_deployments()})
        return self._ranks_cache[1]

    def _deployment(self, model: Configuration) -> Deployment:
        return edge.deployment_from_configuration(model.serialize(keep_readonly=True))

    def _running_metric(self, deployment: Deployment) -> dict[str, str]:
        spec = deployment.modules.get(self.module)
        if spec is None or not image_digest(spec.image):
            return {}
        mod = path_name(self.module, "module")
        return {"running": (
            f"SELECT deviceId FROM devices.modules WHERE moduleId = {literal(EDGE_AGENT)} AND "
            f"configurations.[[{deployment.id}]].status = 'Applied' AND "
            f"properties.reported.modules.{mod}.settings.image = {literal(spec.image)} AND "
            f"properties.reported.modules.{mod}.runtimeStatus = 'running'")}

    def room(self, needed: int = 1) -> int:
        """Configurations that can still be created; FleetError naming the limit when fewer than
        `needed` (one list call)."""
        present = len(self.list_deployments())
        left = self.max_configurations - present
        if left < needed:
            raise FleetError(
                f"IoT Hub {self.host} holds {present} of its {self.max_configurations} configurations (deployments, "
                f"layered included) and {needed} more are needed; delete unused ones — `fleet-tui deployments --prune` "
                "removes the ones fleet-tui left")
        return left

    def create_deployment(self, deployment: Deployment) -> Deployment:
        """PUT /configurations/{id}: layered unless labelled `fleet-tui.kind=base`."""
        credentials = None
        if deployment.labels.get(edge.KIND_LABEL) == "base" and self.registry_credentials == "pull-token":
            from fleet_tui.hub.azure_auth import resolved_credentials

            credentials = resolved_credentials(deployment, self.registry_auth)
        content = edge.modules_content(deployment, self.module, self.base_manifest, credentials, self.edge_version)
        check_content(deployment.id, content)  # one line naming the limit, before the PUT
        model = Configuration(
            id=deployment.id, schema_version="1.0", labels=dict(deployment.labels),
            content=ConfigurationContent(modules_content=content), target_condition=deployment.target_condition,
            priority=deployment.priority, metrics=ConfigurationMetrics(queries=self._running_metric(deployment)),
        )
        self._ranks_cache = None
        what = f"deployment {deployment.id}"
        return self._deployment(self.caller.call("config_write", what, lambda: self.configs.create_configuration(model)))

    def check_condition(self, condition: str) -> None:
        """POST /configurations/testQueries: the hub's own parse of a target condition, before a
        deployment uses it; its complaint becomes one line (UsageError)."""
        test = ConfigurationQueriesTestInput(target_condition=condition, custom_metric_queries={})
        result = self.caller.call("config_write", "test of a target condition",
                                  lambda: self.configs.test_configuration_queries(test))
        error = str(getattr(result, "target_condition_error", "") or "")
        if error:
            raise UsageError(f"IoT Hub {self.host} refuses the target condition ({len(condition):,} characters): "
                             f"{error.splitlines()[0][:200]}")

    def get_deployment(self, deployment_id: str) -> Deployment:
        what = f"deployment {deployment_id}"
        return self._deployment(self.caller.call("config_write", what, lambda: self.configs.get_configuration(deployment_id)))

    def list_deployments(self) -> list[Deployment]:
        models = self.caller.call("config_write", "list of deployments", lambda: self.configs.get_configurations())
        return sorted((self._deployment(m) for m in models or []), key=lambda d: (-d.priority, d.id))

    def update_deployment(self, deployment_id: str, *, target_condition: str | None = None,
                          priority: int | None = None, labels: dict[str, str] | None = None) -> Deployment:
        """Change condition/priority/labels (content is immutable); one retry on a conflict. A
        configuration that already says what is asked is not written again: a PUT that timed out
        but landed (its retry then meets 412) ends here, as does a redo after a restart."""
        what = f"deployment {deployment_id}"
        self._ranks_cache = None
        for attempt in (1, 2):
            current = self.caller.call("config_write", what, lambda: self.configs.get_configuration(deployment_id))
            if ((target_condition is None or current.target_condition == target_condition)
                    and (priority is None or current.priority == priority)
                    and (labels is None or dict(current.labels or {}) == dict(labels))):
                return self._deployment(current)
            if target_condition is not None:
                current.target_condition = target_condition
            if priority is not None:
                current.priority = priority
            if labels is not None:
                current.labels = dict(labels)
            etag = _quoted(current.etag or "*")
            try:
                result = self.caller.call("config_write", what, lambda: self.configs.update_configuration(current, etag))
                return self._deployment(result)
            except Conflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def delete_deployment(self, deployment_id: str) -> None:
        self._ranks_cache = None
        self.caller.call("config_write", f"deployment {deployment_id}",
                         lambda: self.configs.delete_configuration(deployment_id, "*"))

    def apply_on_device(self, device_id: str, deployment: Deployment) -> None:
        """Per-device content (`applyConfigurationContent`): for lab devices only — never on
        devices that automatic deployments target, IoT Edge does not mix the two."""
        base = Deployment(deployment.id, "", 0, deployment.modules, {edge.KIND_LABEL: "base"})
        content = edge.modules_content(base, self.module, self.base_manifest, None, self.edge_version)
        payload = ConfigurationContent(modules_content=content)
        self.caller.call("config_write", f"content for device {device_id}",
                         lambda: self.configs.apply_configuration_on_edge_device(device_id, payload))

    def images_by_group(self) -> dict[str, dict[str, int]]:
        """group → {digest: devices running it} from the `running` metric of fleet-tui's
        deployments (the hub recomputes metrics every few minutes): one list call."""
        out: dict[str, dict[str, int]] = {}
        for dep in self.list_deployments():
            group, spec = dep.labels.get(GROUP_LABEL), dep.modules.get(self.module)
            if group is None or spec is None or "running" not in dep.metrics:
                continue
            digest = image_digest(spec.image)
            images = out.setdefault(group, {})
            images[digest] = max(images.get(digest, 0), dep.metrics["running"])
        return out
