"""What the console's screens read: frozen snapshots, and the `ConsoleData` protocol.

Invariants:
- Nothing here imports Textual (an import-linter contract checks it): the same snapshots
  serve the console, the tests and the benchmarks.
- Rollouts are the domain's own snapshots (fleet_tui.rollout.snapshot.RolloutSnapshot), the
  same the CLI prints: the console adds only the target's short name.
- Every snapshot is an immutable value (frozen dataclasses, tuples). A screen may keep one
  as long as it likes; a newer one replaces it whole — nobody mutates one in place.
- `ConsoleData` methods may block (hub, registry, rollout journal): the UI calls them
  from worker threads or the `Sampler` (fleet_tui.ui.sampler), never on the UI thread.
- Actions (`build_rebased`, `start_rollout`, `control_rollout`) raise `FleetError` with one
  operator line on failure; the UI shows that line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

from fleet_tui.rollout.snapshot import RolloutSnapshot

if TYPE_CHECKING:
    from fleet_tui.hub.listing import ListQuery
    from fleet_tui.ui.paged_rows import Window

ROLLOUT_STATES = ("pending", "running", "paused", "halted", "succeeded", "aborted", "rolled_back")
ROLLOUT_ACTIONS = ("pause", "resume", "approve", "abort", "rollback", "continue", "retry")
DANGEROUS_ACTIONS = frozenset({"abort", "rollback", "continue"})


@dataclass(frozen=True)
class GroupRow:
    name: str
    devices: int
    online: int | None  # None: the hub cannot count it per group (Azure)
    offline: int | None
    images: tuple[tuple[str, str, int], ...]  # (short repo:tag or "", digest, device count), biggest first
    rollout_id: str = ""  # a rollout in progress on this group
    rollout_state: str = ""


@dataclass(frozen=True)
class DeviceRow:
    id: str
    group: str
    image: str  # short repo:tag (or short digest when unknown)
    digest: str
    state: str  # docs/cli.md device state
    last_seen: float  # unix time; 0 = never
    link: str = ""  # link profile name (e.g. "lte", "sat-flaky")


@dataclass(frozen=True)
class DeviceDetail:
    row: DeviceRow
    images: tuple[tuple[str, str], ...]  # (ref, digest) the device holds, current first
    layers: tuple[tuple[str, int], ...]  # (blob digest, size) cached on the device
    link: dict[str, str] = field(default_factory=dict)  # link profile: bandwidth, latency, loss, price
    events: tuple[tuple[float, str], ...] = ()  # (time, text), newest last


@dataclass(frozen=True)
class TagRow:
    repository: str  # host/ns/name or oci:DIR
    tag: str
    digest: str
    size: int  # compressed layer bytes
    created: float  # unix time; 0 = unknown
    layers: int
    dead: int = 0  # compressed bytes of earlier rebase layers it still carries (fleet_tui.planning.lineage)

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class PlanLayer:
    digest: str
    size: int
    needed: bool
    created_by: str


@dataclass(frozen=True)
class Cohort:
    """Devices of a group that hold the same image, hence pull the same bytes."""

    current: str  # short repo:tag or digest they run now
    digest: str
    devices: int
    layers: tuple[PlanLayer, ...]
    bytes: int  # per device: needed layers + manifest + config
    device_ids: tuple[str, ...] = ()  # a sample (the first few), for display
    rollback: int = -1  # per device, to go back to `current` after the update (-1: unknown)


@dataclass(frozen=True)
class Variant:
    """One way of shipping the target: the naive image, or the rebased one."""

    label: str  # "naive" / "rebased"
    ref: str
    cohorts: tuple[Cohort, ...]

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes * c.devices for c in self.cohorts)

    @property
    def devices(self) -> int:
        return sum(c.devices for c in self.cohorts)

    @property
    def per_device(self) -> int:
        """Bytes for the biggest cohort's devices (what "per device" means to an operator)."""
        return max(self.cohorts, key=lambda c: c.devices).bytes if self.cohorts else 0


@dataclass(frozen=True)
class Preview:
    target: str
    group: str
    naive: Variant
    rebased: Variant | None  # None when no rebased image exists (yet)
    per_gb: float
    currency: str = "$"
    budget_line: str = ""  # the rollout's waves priced against [rollout] budget ("" without one)
    site_lines: tuple[str, ...] = ()  # per site: uplink naive/rebased, cache, LAN (fleet_tui.fleet.sites)


@dataclass(frozen=True)
class SafetyReport:
    """What the rebaser checked before pushing: shown before the operator confirms."""

    target: str
    onto: str
    paths: tuple[str, ...]
    outside_paths_changed: tuple[str, ...]  # files that differ outside the shipped paths
    new_layer_bytes: int
    reused_layers: int
    ok: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirRow:
    """One directory of a diff: files added, removed, changed and the bytes they cost a device."""

    directory: str
    added: int
    removed: int
    changed: int
    bytes: int
    files: tuple[tuple[str, str, int], ...] = ()  # (path, change, bytes), biggest first


@dataclass(frozen=True)
class DiffView:
    """What changed from image A to image B (fleet_tui.rebase.whatchanged)."""

    a: str
    b: str
    distributions: tuple[tuple[str, str, str], ...]  # (name, before or "-", after or "-")
    directories: tuple[DirRow, ...]

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.directories)


@dataclass(frozen=True)
class DeviceStory:
    """One device in one rollout: facts (label, value) and what happened (time, text)."""

    device_id: str
    facts: tuple[tuple[str, str], ...]
    lines: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class ReportView:
    """The end-of-rollout report as the console shows it (numbers of `rollout report ID`)."""

    rollout_id: str
    title: str  # "r-0001: ml/scoring:2 → vans-lte — succeeded"
    facts: tuple[tuple[str, str], ...]
    waves: tuple[tuple[str, ...], ...]  # (wave, devices, state, started, took, gate)
    timeline: tuple[tuple[float, int], ...]  # (seconds since creation, bytes moved by then)
    problems: tuple[tuple[str, str, str], ...] = ()  # (device, wave, state) not running the target


@dataclass(frozen=True)
class Settings:
    hub: str  # what the title bar says: "local hub ~/…/hub.sqlite"
    registry: str
    module: str
    per_gb: float
    currency: str = "$"
    read_only: bool = False


class ConsoleData(Protocol):
    """Everything the console reads and sends. Calls may block: never on the UI thread."""

    def settings(self) -> Settings: ...
    def hub_health(self) -> str:
        """"" or one line about the hub's state (throttling); must not block."""
    def groups(self) -> Sequence[GroupRow]: ...
    def devices(self, group: str) -> Sequence[DeviceRow]: ...
    def device_window(self, group: str, query: "ListQuery", offset: int, limit: int,
                      counts: bool = False) -> "Window":
        """A screenful of the group's devices as `query` filters and sorts them (the
        query's condition is ignored: the group sets it), the total, and with `counts` the
        devices per state. Reads about `limit` rows on the local hub, whatever the size."""
    def device(self, device_id: str) -> DeviceDetail: ...
    def tags(self) -> Sequence[TagRow]: ...
    def preview(self, target: str, group: str) -> Preview: ...
    def safety_report(self, target: str, group: str) -> SafetyReport: ...
    def what_changed(self, a: str, b: str) -> DiffView:
        """Files and Python distributions that differ from image A to image B."""
    def build_rebased(self, target: str, group: str) -> str:
        """Push the rebased image; returns its digest-pinned ref."""
    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        """Start a staged rollout (detached); returns its id. With `rebase`, each device
        running a known image gets TARGET rebased onto it; others get TARGET itself."""
    def rollout(self, rollout_id: str) -> RolloutSnapshot: ...
    def rollout_report(self, rollout_id: str) -> ReportView: ...
    def save_report(self, rollout_id: str) -> str:
        """Write the Markdown report (with its SVG chart); returns the file's path."""
    def control_rollout(self, rollout_id: str, action: str) -> str:
        """One of ROLLOUT_ACTIONS; returns the outcome in one line (raises when it changed nothing)."""
    def close(self) -> None: ...


def best_of(naive: Variant, rebased: Variant) -> Variant:
    """The rebased variant as a rollout ships it: devices for which the rebased image is no
    cheaper (they don't run the image it was rebased onto) get the naive image instead."""
    by_digest = {c.digest: c for c in naive.cohorts}
    cohorts = tuple(
        by_digest[c.digest] if c.digest in by_digest and by_digest[c.digest].bytes <= c.bytes else c
        for c in rebased.cohorts
    )
    return Variant(rebased.label, rebased.ref, cohorts)
