"""Rebase NEW onto OLD: the Python API the CLI, the UI and the rollout engine call.

`prepare_rebase()` does all the reading and computing — diff of merged filesystems,
safety report, the new layer (in a temp dir), config and manifest, byte counts — and
pushes nothing; the UI shows that preview before the operator confirms. Layers are read
through the layer index cache in the state dir (`layerindex.py`): OLD's layers, indexed
when OLD was NEW at the previous release, are not streamed again, and the new layer is
indexed when written. `RebasePlan.push()` then publishes (blobs first, manifest last).
`rebase()` is both in one call.

Reads: one rebase streams each blob at most once. The diff reads OLD's and NEW's layers
above the shared prefix together (`readplan.py`: over the cores), keeping meanwhile the
bytes of NEW's files the new layer may ship (`spooling.Keeper`); only a file it did not keep
makes the layer holding it be read again (`delta.spools_for`), e.g. a NEW layer that came
from the index. Pushing mounts OLD's blobs (never reads them).

Layer budget: a result has at most `rebase.max_layers` (125, what engines register). When
OLD is that deep, appending is ruled out and the new layer is merged into a seam over OLD's
top layer(s) (`seam.py` prices it; the appended layer is built too, so the result says what
merging cost devices holding OLD: `layer_budget`); a rebase is refused, before anything is
pushed, only when no candidate fits (`--append`, or *paths* mode when OLD's top layers hold
files outside the paths).

Modes: *paths* ships NEW's entries under the given paths that differ from OLD (and
whiteouts for what NEW lacks there; parents NEW adds come along); it refuses when
dependencies changed outside the paths (see `safety.py`). *auto* ships every difference,
so the result's merged filesystem equals NEW's.
Refusal rules (both overridden by `force`): a dependency change in paths mode; a saving
under `MIN_SAVING` against the naive pull of NEW by an OLD holder (then NEW is the answer).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import Config
from fleet_tui.errors import FleetError, UsageError
from fleet_tui.oci.image import DEFAULT_PLATFORM, Image, load_image
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.reference import Reference, parse_reference
from fleet_tui.oci.store import open_store
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rebase.delta import build_delta, spools_for
from fleet_tui.rebase.diff import Change, Diff
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.publish import Assembled, assemble, push_rebased
from fleet_tui.rebase.readplan import index_written
from fleet_tui.rebase.safety import SafetyReport, safety_report
from fleet_tui.rebase.seam import Candidate, SeamChoice, choose, prefix_view, seam_candidates
from fleet_tui.rebase.spooling import Keeper
from fleet_tui.rebase.tree import Progress

MIN_SAVING = 0.20
MAX_LAYERS = 125  # moby refuses deeper images: "max depth exceeded" (layer/layer_store.go maxLayerDepth)
COMPRESSIONS = ("gzip", "zstd")


@dataclass
class RebaseResult:
    ref: str | None  # digest-pinned ref to deploy: the rebased image, or NEW on fallback
    digest: str | None
    pushed: bool
    mode: str
    reused_layers: int
    new_layer: dict[str, Any]
    bytes_for_old_holders: int
    bytes_naive: int
    outside_paths_changed: list[dict]
    warnings: list[str] = field(default_factory=list)
    refused: str | None = None
    fallback: bool = False
    changes: dict[str, int] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)  # multi-platform: per platform
    index_bytes: int = 0
    onto_layers: int = 0  # OLD's layers; `reused_layers` of them are kept (the rest dropped: the seam)
    bytes_for_fresh: int = 0  # a device holding nothing pulls this
    seam: list[dict[str, Any]] = field(default_factory=list)  # each candidate costed (fleet_tui.rebase.seam)
    layer_budget: dict[str, Any] = field(default_factory=dict)  # what merging into a seam cost (SeamChoice.budget_json)

    @property
    def saving(self) -> float:
        return 1 - self.bytes_for_old_holders / self.bytes_naive if self.bytes_naive else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "digest": self.digest, "pushed": self.pushed, "mode": self.mode,
            "reused_layers": self.reused_layers, "new_layer": self.new_layer,
            "bytes_for_old_holders": self.bytes_for_old_holders, "bytes_naive": self.bytes_naive,
            "saving": round(self.saving, 4), "outside_paths_changed": self.outside_paths_changed,
            "warnings": self.warnings, "refused": self.refused, "fallback": self.fallback,
            "changes": self.changes, "blobs": self.blobs, "seconds": round(self.seconds, 3),
            "platforms": self.platforms, "index_bytes": self.index_bytes,
            "onto_layers": self.onto_layers, "dropped_layers": max(0, self.onto_layers - self.reused_layers),
            "bytes_for_fresh": self.bytes_for_fresh, "seam": self.seam, "layer_budget": self.layer_budget,
        }


@dataclass
class RebasePlan:
    new: Image
    old: Image
    target: Reference
    mode: str
    paths: list[str]
    diff: Diff
    writes: list[Change]
    whiteouts: list[Change]
    report: SafetyReport
    layer: LayerResult
    layer_path: str
    assembled: Assembled
    bytes_naive: int
    workdir: str
    config: Config
    force: bool = False
    started: float = field(default_factory=time.monotonic)
    onto: Image | None = None  # OLD as named; `old` is the part of it the result keeps
    seam: SeamChoice | None = None

    @property
    def bytes_for_old_holders(self) -> int:
        return self.layer.size + len(self.assembled.config_bytes) + len(self.assembled.manifest_bytes)

    @property
    def saving(self) -> float:
        return 1 - self.bytes_for_old_holders / self.bytes_naive if self.bytes_naive else 0.0

    @property
    def refused(self) -> str | None:
        if self.force:
            return None
        if self.mode == "paths" and self.report.refuses:
            return self.report.refusal()
        if self.saving < MIN_SAVING:
            return (f"the rebased image would save only {self.saving:.0%} of the {self.bytes_naive} bytes an OLD "
                    f"holder pulls for NEW (< {MIN_SAVING:.0%}); deploy {self.new.pinned} instead (or --force)")
        return None

    @property
    def fallback(self) -> bool:
        return self.refused is not None and not (self.mode == "paths" and self.report.refuses)

    def result(self, pushed: bool, blobs: dict[str, int] | None = None) -> RebaseResult:
        refused = self.refused
        if refused is None:  # pushed, or a preview: the ref it has (would have)
            ref, digest = self.target.pinned(self.assembled.digest), self.assembled.digest
        elif self.fallback:
            ref, digest = self.new.pinned, self.new.digest
        else:
            ref = digest = None
        counts = {"written": len(self.writes), "whiteouts": len(self.whiteouts), "differences": len(self.diff.changes)}
        onto = self.onto or self.old
        extra = len(self.assembled.config_bytes) + len(self.assembled.manifest_bytes)
        return RebaseResult(
            ref, digest, pushed,
            self.mode, len(self.old.layers), {"digest": self.layer.digest, "size": self.layer.size},
            self.bytes_for_old_holders, self.bytes_naive, [c.to_json() for c in self.report.outside],
            list(self.report.warnings), refused, self.fallback, counts, blobs or {}, time.monotonic() - self.started,
            onto_layers=len(onto.layers), bytes_for_fresh=sum(layer.size for layer in self.old.layers) + self.layer.size
            + extra, seam=self.seam.to_json(len(onto.layers), extra) if self.seam else [],
            layer_budget=self.seam.budget_json(len(onto.layers), self.config.rebase.max_layers, extra) if self.seam else {},
        )

    def push(self, progress: Progress | None = None) -> RebaseResult:
        """Publish unless refused; the manifest goes last, so an error leaves nothing tagged."""
        if self.refused:
            return self.result(pushed=False)
        store = open_store(self.target, self.config, create=True)
        blobs = push_rebased(self.old, self.target, store, self.assembled, self.layer_path, progress)
        return self.result(pushed=True, blobs=blobs)

    def push_untagged(self, progress: Progress | None = None) -> dict[str, int]:
        """Publish blobs and the manifest by digest only (a multi-platform index tags it)."""
        store = open_store(self.target, self.config, create=True)
        return push_rebased(self.old, self.target.with_digest(self.assembled.digest), store, self.assembled,
                            self.layer_path, progress, tag=False)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RebasePlan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def target_reference(tag: str, new: Image) -> Reference:
    """A bare tag names NEW's repository; anything with a `/`, `@` or `oci:` is a full ref."""
    if "/" in tag or "@" in tag or tag.startswith("oci:"):
        return parse_reference(tag)
    try:
        return parse_reference(f"{new.ref.name}:{tag}")
    except UsageError:
        raise UsageError(f"--tag {tag!r} is not a valid tag; use letters, digits, '_', '.', '-' or a full reference") from None


def normalise_paths(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        for part in p.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.startswith("/"):
                raise UsageError(f"--paths {part!r} must be an absolute path inside the image, e.g. /var/azureml-app")
            out.append(posixpath.normpath(part).strip("/"))  # "/" is the whole image: ""
    if not out:
        raise UsageError("--paths names no path; give absolute paths like /var/azureml-app/azureml-models, or use --auto")
    return sorted(set(out))


def check_depth(old: Image, max_layers: int = MAX_LAYERS) -> None:
    if len(old.layers) + 1 > max_layers:
        raise FleetError(f"{old.ref} has {len(old.layers)} layers; a rebase onto it would have {len(old.layers) + 1}, "
                         f"more than rebase.max_layers = {max_layers} (engines refuse more than {MAX_LAYERS}: "
                         f"\"max depth exceeded\") — deploy NEW instead, or rebase onto an image with fewer layers")


def _no_fit(old: Image, max_layers: int, auto: bool) -> str:
    why = ("no rebase onto fewer of its layers keeps everything outside --paths as OLD has it (OLD's top layers hold "
           "files there) — use --auto, or deploy NEW" if not auto else "no rebase onto fewer of its layers could be "
           "built — deploy NEW")
    return (f"{old.ref} has {len(old.layers)} layers and a result may have at most {max_layers} "
            f"(rebase.max_layers; engines refuse more than {MAX_LAYERS}: \"max depth exceeded\"); {why}")


def prepare_rebase(new: Image | str, onto: Image | str, tag: str, config: Config, paths: list[str] | None = None,
                   auto: bool = False, force: bool = False, progress: Progress | None = None,
                   compression: str = "gzip", platform: str = DEFAULT_PLATFORM, append: bool = False) -> RebasePlan:
    if bool(paths) == bool(auto):
        raise UsageError("choose one of --paths P[,P…] or --auto")
    if compression not in COMPRESSIONS:
        raise UsageError(f"--compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
    started = time.monotonic()
    new_img, old_img = _load_both(new, onto, config, platform)
    if compression == "zstd" and old_img.family != "oci":
        raise UsageError(f"--compression zstd needs an OCI image; {old_img.ref} is Docker v2 (its layers are gzip only)")
    target = target_reference(tag, new_img)
    wanted = [] if auto else normalise_paths(paths or [])
    cache = LayerIndex.for_config(config)
    workdir = tempfile.mkdtemp(prefix="fleet-rebase-")
    try:
        keeper = Keeper(workdir, None if auto else wanted)  # NEW's files kept during the diff's read
        max_keep = config.rebase.max_layers - 1  # the layer budget, less the new layer
        candidates = seam_candidates(old_img, new_img, wanted, auto, append, progress, cache, keeper, max_keep)
        if not any(c.keep <= max_keep for c in candidates):
            if append:
                check_depth(old_img, config.rebase.max_layers)
            raise FleetError(_no_fit(old_img, config.rebase.max_layers, auto))

        def build(c: Candidate, where: str) -> None:
            os.makedirs(where, exist_ok=True)
            spools = spools_for(new_img, c.writes, keeper, progress)  # reads only what was not kept
            c.layer, c.layer_path = build_delta(new_img, c.writes, c.whiteouts, where, progress, compression, spools)

        seam = choose(candidates, build, workdir, max_keep)
        chosen = seam.chosen
        base = prefix_view(old_img, chosen.keep)
        check_depth(base, config.rebase.max_layers)
        how = "--auto" if auto else "--paths " + ",".join("/" + p for p in wanted)
        assert chosen.layer is not None
        assembled = assemble(base, new_img, chosen.layer, f"fleet-tui rebase {how}")
        # the new layer, read back through every check, is indexed: a rebase onto this result
        # (next month's OLD) or a verify of it reads none of its bytes
        index_written(chosen.layer_path, chosen.layer, assembled.layer_descriptor.media_type, new_img, target, cache)
        naive = plan_pull(new_img, [old_img]).total_bytes
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return RebasePlan(new_img, base, target, "auto" if auto else "paths", wanted, chosen.diff, chosen.writes,
                      chosen.whiteouts, safety_report(chosen.outside), chosen.layer, chosen.layer_path, assembled,
                      naive, workdir, config, force, started, onto=old_img, seam=seam)


def _load_both(new: Image | str, onto: Image | str, config: Config, platform: str) -> tuple[Image, Image]:
    """NEW and OLD, their manifests and configs fetched at the same time."""
    def load(image: Image | str) -> Image:
        return image if isinstance(image, Image) else load_image(image, config, platform)
    with ThreadPoolExecutor(2) as pool:
        new_f, old_f = pool.submit(load, new), pool.submit(load, onto)
        return new_f.result(), old_f.result()


def preview_rebase(new: Image | str, onto: Image | str, tag: str, config: Config, paths: list[str] | None = None,
                   auto: bool = False, force: bool = False, progress: Progress | None = None,
                   append: bool = False) -> RebaseResult:
    """Everything `rebase` would report, without pushing anything."""
    with prepare_rebase(new, onto, tag, config, paths, auto, force, progress, append=append) as plan:
        return plan.result(pushed=False)


def rebase(new: Image | str, onto: Image | str, tag: str, config: Config, paths: list[str] | None = None,
           auto: bool = False, force: bool = False, progress: Progress | None = None,
           append: bool = False) -> RebaseResult:
    with prepare_rebase(new, onto, tag, config, paths, auto, force, progress, append=append) as plan:
        return plan.push(progress)
