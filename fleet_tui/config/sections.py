"""The `[registry]`, `[hub]` and `[cost]` sections of the config, as pydantic models.

Invariant: secrets are never values here, only references to them (`password_env`,
`password_file`, `connection_string_env`). Every field has a default and a description;
docs/configuration.md is generated from these descriptions (`fleet_tui.config.reference`).
Models are strict (a string is not a number) and frozen.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet_tui.config.units import Duration, Strs
from fleet_tui.secrets import SecretRef

HUB_TIERS = ("S1", "S2", "S3")


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RegistryAuth(Section):
    """Credentials for one registry host, by reference only."""

    username: str = Field("", description="user name to log in with")
    password_env: str | None = Field(None, description="environment variable that holds the password or token")
    password_file: str | None = Field(None, description="file that holds the password or token")

    def password_ref(self) -> SecretRef:
        return SecretRef(env=self.password_env, file=self.password_file)


class RegistryConfig(Section):
    default: str = Field("", description="registry (or `oci:DIR`) the Images screen opens, e.g. `127.0.0.1:5000`")
    repositories: Strs = Field((), description="repositories listed on the Images screen (`host/ns/name` or `oci:DIR`)")
    insecure: Strs = Field((), description="hosts reached over plain HTTP (127.0.0.1 and localhost always are)")
    auth: dict[str, RegistryAuth] = Field(
        default_factory=dict, description="credentials per registry host: `[registry.auth.\"HOST\"]`")
    timeout: Duration = Field(30.0, gt=0, description="time allowed for one registry request")
    retries: int = Field(4, ge=0, le=20, description="retries of a failed request (429, 5xx, connection) with backoff")


class HubConfig(Section):
    kind: Literal["local", "azure"] = Field(
        "local", description="`local`: the embedded SQLite hub; `azure`: Azure IoT Hub (docs/azure.md)")
    path: str = Field("", description="local hub file; empty: `hub.sqlite` in the state directory")
    connection_string_env: str = Field(
        "IOTHUB_CONNECTION_STRING", description="azure: environment variable that holds the IoT Hub connection string")
    group_tag: str = Field("fleetGroup", min_length=1, description="twin tag that names a device's group: `tags.<group_tag>`")
    site_tag: str = Field("site", min_length=1, description="twin tag that names a device's site (`[sites.NAME]`): "
                          "`tags.<site_tag>`")
    shard_tag: str = Field("fleetShard", pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$",
                           description="twin tag holding a device's stable shard `00`-`99` (set at enrollment or by "
                           "`fleet-tui hub shards --backfill`): big rollouts widen a target condition over shards "
                           "instead of tagging every device")
    waves_by: Literal["auto", "tags"] = Field(
        "auto", description="azure: `auto` runs a rollout's waves as target conditions over shards when the group "
        "allows it (docs/azure.md), `tags` tags every device per wave")
    module: str = Field("scoring", min_length=1, description="the IoT Edge module whose image fleet-tui manages")
    tier: Literal["S1", "S2", "S3"] = Field("S1", description="azure: IoT Hub tier, for its documented throttles")
    units: int = Field(1, ge=1, le=200, description="azure: IoT Hub units of that tier")
    max_retries: int = Field(5, ge=0, le=20, description="azure: retries of a throttled (429), 5xx or unreachable call")
    queries_per_minute: float = Field(0, ge=0, description="azure: query budget override; 0 = the tier's limit × units")
    config_writes_per_minute: float = Field(
        0, ge=0, description="azure: configurations budget override (create, update, list, delete); 0 = 20/min × units")
    twin_updates_per_second: float = Field(
        0, ge=0, description="azure: twin updates budget override; 0 = the tier's limit × units")
    request_timeout: Duration = Field(30.0, gt=0, description="azure: time allowed for one HTTP request")
    auth: Literal["connection-string", "azure-ad"] = Field(
        "connection-string", description="azure: a hub policy connection string (`connection_string_env`) or Azure AD")
    host: str = Field("", description="azure, with `auth = \"azure-ad\"`: the hub's host name, e.g. `myhub.azure-devices.net`")
    credential: Literal["default", "environment", "managed-identity", "azure-cli", "workload-identity"] = Field(
        "default", description="azure-ad: which azure-identity credential (`default` = DefaultAzureCredential)")
    liveness_window: Duration = Field(
        600.0, gt=0, description="azure: an Edge device whose `$edgeAgent` reported this recently counts as online even "
        "if `$edgeHub` reads Disconnected (the hub updates connection state with up to 5 minutes of delay)")
    metrics_poll: Duration = Field(
        30.0, gt=0, description="azure: seconds between reads of a condition wave's deployment metrics and failing "
        "devices (the hub recomputes metrics about every 5 minutes; each read is one configuration call and one query)")
    max_configurations: int = Field(100, ge=1, le=1000, description="azure: configurations the hub holds at most "
                                    "(100 on basic and standard hubs, 10 on free ones; layered deployments included)")
    base_manifest: str = Field("", description="azure: the operator's deployment manifest (JSON with `modulesContent`) "
                               "used as the content of base deployments")
    registry_credentials: Literal["none", "pull-token"] = Field(
        "none", description="azure: `pull-token` writes the resolved `[registry.auth]` token into base deployments "
        "(IoT Edge reads credentials only from there, in clear: use a pull-only token)")
    image_gc_threshold: Duration = Field(
        7 * 86400.0, ge=0, description="azure: how long an image a device stopped running stays cached (aziot-edged "
        "`[image_garbage_collection] image_age_cleanup_threshold`, default 7d; 0 = devices keep nothing): plans count "
        "it as held within this time of the rollout that replaced it")
    link_property: str = Field("", pattern=r"^([A-Za-z_$][\w$-]*(\.[A-Za-z_$][\w$-]*)*)?$",
                               description="azure: device twin reported property (dotted path, e.g. `link` or "
                               "`network.kind`) naming each device's link, for link-aware rollouts (`[rollout] "
                               "unmetered_links`); \"\" = devices report none")
    edge_version: str = Field("1.6", pattern=r"^\d+\.\d+$",
                              description="azure: IoT Edge version of the system modules in base deployments fleet-tui writes")


class CostConfig(Section):
    per_gb: float = Field(400.0, ge=0, description="cellular data price per GB (10^9 bytes), in `currency`")
    currency: str = Field("$", max_length=8, description="currency symbol shown with costs")


class NotifyConfig(Section):
    command: str = Field("", description="shell command run when a rollout halts, waits for approval or ends; the "
                         "event is JSON on its stdin (e.g. `\"curl -s -d @- https://…\"` or a script)")
    webhook_env: str = Field("", description="environment variable holding a URL that gets the same JSON as a POST "
                             "(by reference: webhook URLs often carry a token)")
    timeout: Duration = Field(10.0, gt=0, description="how long one notification may take; a failure never stops "
                              "the rollout")


class RebaseConfig(Section):
    max_layers: int = Field(125, ge=2, le=125, description="deepest image a rebase may push; engines refuse more "
                            "than 125 layers (\"max depth exceeded\"); lower it for older engines or headroom")
