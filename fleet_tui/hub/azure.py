"""`AzureHub`: the `FleetHub` protocol on Azure IoT Hub through the `azure-iot-hub` SDK.

- devices: `IoTHubRegistryManager` — twin queries (raw, paged, see azure_query), `get_twin`,
  `update_twin` with a quoted If-Match etag (412 → Conflict); the modules a device runs come
  from its `$edgeAgent` module twin (see azure_edge for the state rules);
- many devices at once: `IoTHubJobManager` scheduled `scheduleUpdateTwin` jobs with a
  `deviceId IN [...]` query condition, run one after another (see azure_jobs);
- deployments: `IoTHubConfigurationManager` configurations (layered by default). Content is
  immutable: `update_deployment` changes condition, priority and labels only, re-sending
  the etag *quoted* (the SDK sends it bare, and the hub answers 409 to that —
  azure-iot-hub-python#2), with one re-read and retry on a conflict.

Every call blocks (network, budget sleeps, retry backoff): the UI calls them from workers.
Invariant: the connection string and registry passwords are held in `Secret`s only; no
message, log line, repr or returned object contains them.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any, Iterator, Mapping, Sequence

from azure.iot.hub import IoTHubConfigurationManager, IoTHubJobManager, IoTHubRegistryManager
from azure.iot.hub.connection_string import ConnectionString
from azure.iot.hub.models import Configuration, ConfigurationContent, Twin

from fleet_tui.config import Config, RegistryAuth
from fleet_tui.errors import Conflict, NotFound, UsageError
from fleet_tui.hub import azure_edge as edge
from fleet_tui.hub.azure_jobs import run_tag_jobs
from fleet_tui.hub.azure_query import RawQuery, in_chunks, in_list, literal, path_name
from fleet_tui.hub.azure_retry import HubCaller, HubLimits, disable_sdk_retries, limits_from_config
from fleet_tui.hub.protocol import Deployment, DeviceTwin, GroupSummary, Page, iter_pages
from fleet_tui.secrets import Secret, SecretRef, remember

RANKS_TTL = 30.0  # seconds a read of configuration priorities is reused
AGENT_QUERY = f"SELECT * FROM devices.modules WHERE moduleId = {literal(edge.EDGE_AGENT)}"


def _quoted(etag: str) -> str:
    return etag if etag == "*" or (len(etag) > 1 and etag[0] == etag[-1] == '"') else f'"{etag}"'


def parse_connection_string(secret: Secret, source: str) -> str:
    """The host name of a valid *service* connection string; one clear line otherwise."""
    try:
        parsed = ConnectionString(secret.reveal())
    except (ValueError, TypeError):
        raise UsageError(
            f"IoT Hub connection string from {source} is malformed; expected "
            "HostName=…;SharedAccessKeyName=…;SharedAccessKey=… (copy it from the hub's Shared access policies)"
        ) from None
    if parsed.get("DeviceId") or not parsed.get("SharedAccessKeyName"):
        raise UsageError(f"IoT Hub connection string from {source} is a device connection string; use a hub policy such as iothubowner")
    key = parsed.get("SharedAccessKey") or ""
    remember(key)
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"IoT Hub connection string from {source}: SharedAccessKey is not base64; copy the key again") from None
    return str(parsed["HostName"])


class AzureHub:
    """Azure IoT Hub behind `FleetHub`. All methods block: call them from workers."""

    def __init__(
        self,
        connection_string: Secret,
        *,
        group_tag: str = "fleetGroup",
        module: str = "scoring",
        registry_auth: Mapping[str, RegistryAuth] | None = None,
        limits: HubLimits | None = None,
        ca_bundle: str | None = None,
        source: str = "the connection string",
    ) -> None:
        self.host = parse_connection_string(connection_string, source)
        self.group_tag = path_name(group_tag, "group tag")
        self.module = module
        self.limits = limits or HubLimits()
        self.registry_auth = dict(registry_auth or {})
        self.caller = HubCaller(self.host, self.limits)
        value = connection_string.reveal()
        try:
            self.registry = IoTHubRegistryManager.from_connection_string(value)
            self.configs = IoTHubConfigurationManager.from_connection_string(value)
            self.jobs = IoTHubJobManager.from_connection_string(value)
        except Exception as exc:  # the SDK's messages may echo the string: never pass them on
            raise UsageError(f"IoT Hub connection string from {source} was refused by the SDK ({type(exc).__name__})") from None
        for manager in (self.registry, self.configs, self.jobs):
            disable_sdk_retries(manager.protocol, self.limits.timeout)
            if ca_bundle:
                manager.protocol.config.connection.verify = ca_bundle
        self.query = RawQuery(self.registry, self.caller)
        self._ranks_cache: tuple[float, dict[str, tuple[int, float]]] | None = None

    @classmethod
    def from_config(cls, config: Config) -> "AzureHub":
        """The hub named by `config.hub`; the connection string comes from the env var
        `hub.connection_string_env` (never from a file in the repo); call budget and retries
        from `hub.tier`, `hub.units` and the explicit overrides (see `limits_from_config`)."""
        env = config.hub.connection_string_env
        secret = SecretRef(env=env).resolve("IoT Hub connection string")
        return cls(
            secret,
            group_tag=config.hub.group_tag,
            module=config.hub.module,
            registry_auth=config.registry.auth,
            limits=limits_from_config(config.hub),
            source=f"${env}",
        )

    def __repr__(self) -> str:
        return f"AzureHub(host={self.host!r}, group_tag={self.group_tag!r})"

    # --- devices -------------------------------------------------------------------
    def _agent_twins(self, ids: Sequence[str]) -> dict[str, dict]:
        twins: dict[str, dict] = {}
        for chunk in in_chunks(ids):
            for row in self.query.all(f"{AGENT_QUERY} AND deviceId IN {in_list(chunk)}"):
                twins[str(row.get("deviceId"))] = row
        return twins

    def _ranks(self) -> dict[str, tuple[int, float]]:
        """id → (priority, created) of every configuration, read at most every RANKS_TTL s
        and only for devices with several applied ones (deployment writes drop the cache)."""
        now = time.monotonic()
        if self._ranks_cache is None or now - self._ranks_cache[0] > RANKS_TTL:
            ranks = {d.id: (d.priority, d.created) for d in self.list_deployments()}
            self._ranks_cache = (now, ranks)
        return self._ranks_cache[1]

    def _twin(self, device: Mapping[str, Any], agent: Mapping[str, Any] | None) -> DeviceTwin:
        agent = agent or {}
        several = len(edge.applied_ids(agent)) > 1
        return DeviceTwin(
            device_id=str(device.get("deviceId", "")),
            tags=dict(device.get("tags") or {}),
            desired=edge.desired_modules(agent),
            deployment_id=edge.applied_configuration(agent, self._ranks() if several else None),
            reported=edge.module_reports(agent),
            connected=device.get("connectionState", "Connected") == "Connected",
            last_seen=edge.timestamp(device.get("lastActivityTime")),
            etag=str(device.get("etag") or ""),
        )

    def query_devices(self, condition: str | None = None, page_size: int = 1000, continuation: str | None = None) -> Page:
        """One page of device twins matching `condition` (an IoT Hub WHERE clause over tags)."""
        sql = "SELECT * FROM devices" + (f" WHERE {condition}" if condition else "")
        rows, token = self.query.page(sql, page_size, continuation)
        agents = self._agent_twins([str(r.get("deviceId")) for r in rows])
        return Page([self._twin(r, agents.get(str(r.get("deviceId")))) for r in rows], token)

    def iter_devices(self, condition: str | None = None) -> Iterator[DeviceTwin]:
        return iter_pages(self.query_devices, condition)

    def _agent_twin(self, device_id: str) -> dict:
        what = f"$edgeAgent twin of {device_id}"
        try:
            raw = self.caller.call(
                "other", what, lambda: self.registry.protocol.modules.get_twin(device_id, edge.EDGE_AGENT, raw=True)
            )
        except NotFound:
            return {}  # not an IoT Edge device (or the runtime never connected)
        return raw.response.json()

    def get_device(self, device_id: str) -> DeviceTwin:
        raw = self.caller.call("other", f"device {device_id}", lambda: self.registry.protocol.devices.get_twin(device_id, raw=True))
        return self._twin(raw.response.json(), self._agent_twin(device_id))

    def group_summaries(self, module: str) -> list[GroupSummary]:
        """Groups with counts, online/offline and the digests `module` runs: two paged
        projections (devices → group, `$edgeAgent` → image) joined here, ~2 queries per
        1000 devices (S1: 20 queries/min)."""
        tag = self.group_tag
        mod = path_name(module, "module")
        groups: dict[str, dict[str, Any]] = {}
        member: dict[str, str] = {}
        for row in self.query.all(f"SELECT deviceId, tags.{tag} AS grp, connectionState FROM devices"):
            name = "" if row.get("grp") is None else str(row.get("grp"))
            g = groups.setdefault(name, {"devices": 0, "online": 0, "images": {}})
            g["devices"] += 1
            g["online"] += row.get("connectionState") == "Connected"
            member[str(row.get("deviceId"))] = name
        sql = f"SELECT deviceId, properties.reported.modules.{mod}.settings.image AS image FROM devices.modules WHERE moduleId = {literal(edge.EDGE_AGENT)}"
        for row in self.query.all(sql):
            name = member.get(str(row.get("deviceId")))
            digest = edge.image_digest(str(row.get("image") or "")) or str(row.get("image") or "")
            if name is not None and digest:
                images = groups[name]["images"]
                images[digest] = images.get(digest, 0) + 1
        return [
            GroupSummary(name, g["devices"], g["images"], g["online"], g["devices"] - g["online"])
            for name, g in sorted(groups.items())
        ]

    def update_tags(self, device_id: str, tags: dict[str, Any], etag: str | None = None) -> DeviceTwin:
        """PATCH /twins/{id} with If-Match (quoted; `*` when no etag); stale → Conflict."""
        patch = Twin(tags=tags)
        result = self.caller.call(
            "twin_update", f"tags of device {device_id}", lambda: self.registry.update_twin(device_id, patch, etag or "*")
        )
        device = {
            "deviceId": device_id,
            "tags": result.tags or {},
            "etag": result.etag,
            "connectionState": result.connection_state or "Connected",
        }
        return self._twin(device, self._agent_twin(device_id))

    def bulk_update_tags(self, device_ids: Sequence[str], tags: dict[str, Any]) -> int:
        """Merge `tags` onto many devices with scheduled twin-update jobs (one per ~7 KB of
        ids, run one after another); returns how many device updates succeeded."""
        return run_tag_jobs(self.jobs, self.caller, self.limits, device_ids, tags)

    # --- deployments ---------------------------------------------------------------
    def _deployment(self, model: Configuration) -> Deployment:
        return edge.deployment_from_configuration(model.serialize(keep_readonly=True))

    def create_deployment(self, deployment: Deployment) -> Deployment:
        """PUT /configurations/{id}: layered unless labelled `fleet-tui.kind=base`."""
        content = edge.modules_content(deployment, self.registry_auth)
        model = Configuration(
            id=deployment.id,
            schema_version="1.0",
            labels=dict(deployment.labels),
            content=ConfigurationContent(modules_content=content),
            target_condition=deployment.target_condition,
            priority=deployment.priority,
        )
        what = f"deployment {deployment.id}"
        self._ranks_cache = None
        return self._deployment(self.caller.call("config_write", what, lambda: self.configs.create_configuration(model)))

    def get_deployment(self, deployment_id: str) -> Deployment:
        what = f"deployment {deployment_id}"
        return self._deployment(self.caller.call("other", what, lambda: self.configs.get_configuration(deployment_id)))

    def list_deployments(self) -> list[Deployment]:
        models = self.caller.call("other", "list of deployments", lambda: self.configs.get_configurations())
        return sorted((self._deployment(m) for m in models or []), key=lambda d: (-d.priority, d.id))

    def update_deployment(
        self,
        deployment_id: str,
        *,
        target_condition: str | None = None,
        priority: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> Deployment:
        """Change condition/priority/labels (content is immutable); one retry on a conflict."""
        what = f"deployment {deployment_id}"
        self._ranks_cache = None
        for attempt in (1, 2):
            current = self.caller.call("other", what, lambda: self.configs.get_configuration(deployment_id))
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
        what = f"deployment {deployment_id}"
        self._ranks_cache = None
        self.caller.call("config_write", what, lambda: self.configs.delete_configuration(deployment_id, "*"))

    def apply_on_device(self, device_id: str, deployment: Deployment) -> None:
        """Per-device content (`applyConfigurationContent`): for lab devices only — never
        on devices that automatic deployments target, IoT Edge does not mix the two."""
        content = edge.modules_content(
            Deployment(deployment.id, "", 0, deployment.modules, {edge.KIND_LABEL: "base"}), self.registry_auth
        )
        what = f"content for device {device_id}"
        payload = ConfigurationContent(modules_content=content)
        self.caller.call("config_write", what, lambda: self.configs.apply_configuration_on_edge_device(device_id, payload))

    def close(self) -> None:
        for manager in (self.registry, self.configs, self.jobs):
            manager.protocol.close()
        if getattr(self.registry, "amqp_svc_client", None):
            self.registry.amqp_svc_client.disconnect_sync()
