"""The `FleetHub` protocol: devices, groups, desired/reported state and deployments.

Mirrors Azure IoT Hub so the embedded local hub teaches the real one:
- a device twin has `tags` (group membership is `tags.<group_tag>`), *desired* modules
  (name → digest-pinned image) and *reported* state (per module: image digest, state,
  bytes downloaded for the current update, last error; plus last seen);
- a deployment (IoT Hub "configuration") has a target condition over tags, a priority and
  modules content; a device runs the highest-priority deployment whose condition matches
  (ties broken by the later creation time, as IoT Edge does). Content is immutable after
  creation: only target condition, priority and labels change.
- twin writes carry an ETag; a stale one raises `fleet_tui.errors.Conflict`.

Every method may block (network, SQLite): call them from workers in the UI.
Device `state` values are those of docs/cli.md: pending, downloading, applying, running,
failed, offline, rolled_back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from fleet_tui.oci.manifest import DEFAULT_PLATFORM

DEVICE_STATES = ("pending", "downloading", "applying", "running", "failed", "offline", "rolled_back")


STAGE_SUFFIX = "-stage"  # a pre-staged rollout's stopped module: `<managed module>-stage`


def stage_module(module: str) -> str:
    """The stage module next to `module`: desired `stopped`, its image pulled ahead, never run."""
    return f"{module}{STAGE_SUFFIX}"


@dataclass(frozen=True)
class ModuleSpec:
    """One module a deployment asks a device to run. `definition` is the module's whole entry
    as the hub holds it (IoT Edge: version, type, status, restartPolicy, imagePullPolicy,
    startupOrder, env, settings …; createOptions joined) so a release can change the image and
    keep everything else; empty when the hub has none (a plain image + createOptions)."""

    name: str
    image: str  # digest-pinned: host/repo@sha256:…
    create_options: str = ""
    definition: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ModuleReport:
    """What a device reports about one module."""

    name: str
    image: str = ""  # the reference it runs
    digest: str = ""  # manifest digest it runs
    state: str = "pending"
    bytes_downloaded: int = 0  # for the current update; 0 when unknown (Azure twins carry none)
    error: str = ""
    updated: float = 0.0  # unix time
    platform: str = ""  # os/arch[/variant] of the device ("" = not reported: linux/amd64)
    cached: tuple[str, ...] = ()  # pinned refs of other images the device still holds, newest first
    link: str = ""  # the device's link profile name ("wifi", "cell"; "" = not reported)


@dataclass(frozen=True)
class DeviceTwin:
    device_id: str
    tags: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, ModuleSpec] = field(default_factory=dict)  # effective desired modules
    deployment_id: str = ""  # the deployment the desired modules come from
    applied: tuple[str, ...] = ()  # every deployment the hub applies to the device (layered ones too)
    reported: dict[str, ModuleReport] = field(default_factory=dict)
    connected: bool = True
    last_seen: float = 0.0
    etag: str = ""
    link: str = ""  # the device's link, where the hub reads it apart from module reports (Azure)

    def group(self, group_tag: str) -> str:
        return str(self.tags.get(group_tag, ""))

    def state(self, module: str) -> str:
        """The docs/cli.md device state for `module`: offline when not connected, else the
        module's reported state (pending when it reports nothing yet)."""
        if not self.connected:
            return "offline"
        report = self.reported.get(module)
        return report.state if report and report.state else "pending"

    def digest(self, module: str) -> str:
        """The manifest digest `module` reportedly runs ("" when unknown)."""
        report = self.reported.get(module)
        return report.digest if report else ""

    def platform(self, module: str) -> str:
        """The device's platform as its `module` report gives it (linux/amd64 when unsaid)."""
        report = self.reported.get(module)
        return (report.platform if report else "") or DEFAULT_PLATFORM

    def link_name(self, module: str) -> str:
        """The link the device reports ("" when it says nothing)."""
        rep = self.reported.get(module)
        return self.link or (rep.link if rep else "")

    def cached(self, module: str) -> tuple[str, ...]:
        """Pinned refs of images the device reports it still holds besides what `module` runs."""
        report = self.reported.get(module)
        return report.cached if report else ()


@dataclass(frozen=True)
class Deployment:
    id: str
    target_condition: str
    priority: int
    modules: dict[str, ModuleSpec]
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    etag: str = ""
    metrics: dict[str, int] = field(default_factory=dict, compare=False)  # as the hub last computed them (Azure)


@dataclass(frozen=True)
class GroupSummary:
    name: str
    devices: int
    images: dict[str, int]  # reported digest (of the managed module) → device count
    online: int | None = 0  # None: the hub cannot count it cheaply (Azure: see docs/azure.md)
    offline: int | None = 0


@dataclass(frozen=True)
class Page:
    items: list[DeviceTwin]
    continuation: str | None  # pass back to get the next page; None at the end


def iter_pages(query_devices: Callable[[str | None, int, str | None], Page], condition: str | None) -> Iterator[DeviceTwin]:
    """Every twin `query_devices` returns for `condition`, following continuations in pages
    of 1000: the shared body of each hub's `iter_devices`."""
    token: str | None = None
    while True:
        page = query_devices(condition, 1000, token)
        yield from page.items
        token = page.continuation
        if not token:
            return


class FleetHub(Protocol):
    """What the rollout engine, device agents, CLI and UI need from a hub."""

    group_tag: str

    # --- devices -------------------------------------------------------------------
    def query_devices(
        self, condition: str | None = None, page_size: int = 1000, continuation: str | None = None
    ) -> Page:
        """Devices whose tags match `condition` (IoT Hub query subset), one page at a time."""

    def iter_devices(self, condition: str | None = None) -> Iterator[DeviceTwin]:
        """All devices matching `condition`, paging underneath."""

    def get_device(self, device_id: str) -> DeviceTwin:
        """Raises NotFound for an unknown id."""

    def group_summaries(self, module: str) -> list[GroupSummary]:
        """Groups with device counts, online/offline, and the digests `module` runs."""

    def update_tags(self, device_id: str, tags: dict[str, Any], etag: str | None = None) -> DeviceTwin:
        """Merge-patch tags (a None value removes a key); stale etag → Conflict."""

    def bulk_update_tags(self, device_ids: Sequence[str], tags: dict[str, Any]) -> int:
        """Merge-patch the same tags onto many devices at once (a job on Azure); returns count."""

    # --- deployments ---------------------------------------------------------------
    def create_deployment(self, deployment: Deployment) -> Deployment: ...

    def get_deployment(self, deployment_id: str) -> Deployment: ...

    def list_deployments(self) -> list[Deployment]: ...

    def update_deployment(
        self,
        deployment_id: str,
        *,
        target_condition: str | None = None,
        priority: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> Deployment:
        """Only condition, priority and labels can change; content is immutable."""

    def delete_deployment(self, deployment_id: str) -> None: ...

    def close(self) -> None: ...


class DeviceSide(Protocol):
    """What a device agent uses (the local hub implements it; on Azure the edge agent does)."""

    def register_devices(self, devices: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Create devices with tags (idempotent); returns how many were new."""

    def desired_for(self, device_id: str) -> tuple[str, dict[str, ModuleSpec]]:
        """(deployment id, modules) the device should run now."""

    def report(
        self, device_id: str, modules: dict[str, ModuleReport], connected: bool = True
    ) -> None:
        """Replace the device's reported module state and bump last seen."""

    def desired_for_many(self, device_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, ModuleSpec]]]:
        """`desired_for` for many devices in one round trip (one process simulates
        thousands of devices); unknown ids are absent from the result."""

    def report_many(self, reports: Iterable[tuple[str, dict[str, ModuleReport], bool]]) -> int:
        """`report` for many (device id, modules, connected) at once, in one transaction;
        returns how many known devices were updated (unknown ids are skipped)."""
