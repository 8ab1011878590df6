"""Where a rebase builds: on top of all of OLD (append), or on OLD's bottom layers (the seam).

Appending one layer to whatever devices run grows the image by a layer and a dead model
every release: a device installed after a year pulls every model ever shipped. So each
candidate *k* — keep OLD's bottom k layers, add one layer that makes the merged filesystem
what was asked — is costed, and the cheapest for the fleet wins:

- *old holder*: bytes a device that runs OLD pulls (the new layer; config and manifest are
  the same for every candidate);
- *fresh device*: bytes a device holding nothing pulls (the kept layers + the new layer);
- *layers*: k + 1; *dead*: bytes of kept files the new layer hides (uncompressed).

Rule: among candidates whose old-holder bytes are within `TOLERANCE` (5 %, + 1 KiB for tar
headers) of the best, the one a fresh device pulls least wins; ties go to fewer layers.
Old-holder bytes are estimated from the files each candidate ships (sizes, headers at their
compressed weight), before anything is compressed; only the winner is built. A
candidate is only considered where the result stays what the mode promises: in *auto*
mode the merged filesystem equals NEW whatever k is; in *paths* mode dropping OLD's upper
layers must not change anything outside the paths (the changes outside are the same as
against all of OLD). Candidates: k = len(OLD) (append) down to the layers OLD shares with
NEW (never below 1, at most `MAX_CANDIDATES`); a keep that would re-ship more live files than
the tolerance allows is never diffed. `seam_candidates` diffs and costs them (the first diff
reads the layers; the others take them from the index's memory and reuse NEW's build).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from fleet_tui.errors import FleetError
from fleet_tui.oci.image import Image
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.manifest import ImageConfig, Manifest
from fleet_tui.rebase.diff import Built, Change, Diff, diff_images, layer_changes, shared_prefix
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.mergedfs import Inode
from fleet_tui.rebase.spooling import Keeper
from fleet_tui.rebase.tree import Progress, ancestors, is_under

TOLERANCE, SLACK = 1.05, 1024
MAX_CANDIDATES = 8
TAR_HEADER = 64  # a 512-byte tar header, as it compresses: the estimate ranks candidates, real sizes decide


def prefix_view(image: Image, keep: int) -> Image:
    """`image` as if it had only its bottom `keep` layers (same ref and digest: the base it
    names). The config's diff_ids and history are cut to match."""
    if keep >= len(image.layers):
        return image
    doc = copy.deepcopy(image.config.doc)
    doc["rootfs"] = {**(doc.get("rootfs") or {}), "diff_ids": list(image.config.diff_ids[:keep])}
    history, seen = [], 0
    for entry in image.config.history:
        if not entry.get("empty_layer"):
            if seen == keep:
                break
            seen += 1
        history.append(entry)
    doc["history"] = history
    manifest = Manifest(image.manifest.media_type, image.manifest.config, list(image.manifest.layers[:keep]),
                        dict(image.manifest.annotations))
    return replace(image, layers=list(image.layers[:keep]), config=ImageConfig(doc), manifest=manifest)


@dataclass
class Candidate:
    keep: int
    diff: Diff
    inside: list[Change]
    outside: list[Change]
    writes: list[Change]
    whiteouts: list[Change]
    kept_bytes: int  # compressed bytes of the kept layers
    unpacked: int  # file bytes + headers the new layer carries, before compression
    dead: int  # bytes of kept files the new layer hides or deletes (uncompressed)
    layer: LayerResult | None = None
    layer_path: str = ""

    @property
    def layer_bytes(self) -> int:
        return self.layer.size if self.layer is not None else self.unpacked

    @property
    def fresh(self) -> int:
        return self.kept_bytes + self.layer_bytes

    def to_json(self, layers_total: int, chosen: bool, extra: int) -> dict[str, Any]:
        return {"kept_layers": self.keep, "dropped_layers": layers_total - self.keep, "layers": self.keep + 1,
                "old_holder_bytes": self.layer_bytes + extra, "fresh_device_bytes": self.fresh + extra,
                "dead_bytes": self.dead, "estimated": self.layer is None, "chosen": chosen}


@dataclass
class SeamChoice:
    chosen: Candidate
    candidates: list[Candidate] = field(default_factory=list)
    appended: Candidate | None = None  # built too when the layer budget ruled appending out

    def budget_json(self, layers_total: int, max_layers: int, extra: int) -> dict[str, Any]:
        """What the layer budget cost (empty when appending was allowed): the bytes a device
        holding OLD pulls for the merged layer vs for an appended one (both built)."""
        if self.appended is None or self.appended.layer is None:
            return {}
        merged, appended = self.chosen.layer_bytes + extra, self.appended.layer_bytes + extra
        return {"max_layers": max_layers, "onto_layers": layers_total, "merged_layers": layers_total - self.chosen.keep,
                "old_holder_bytes": merged, "old_holder_bytes_if_appended": appended,
                "extra_old_holder_bytes": merged - appended, "layers": self.chosen.keep + 1}

    def to_json(self, layers_total: int, extra: int) -> list[dict[str, Any]]:
        return [c.to_json(layers_total, c is self.chosen, extra) for c in self.candidates]

    def summary(self, layers_total: int) -> str:
        """One line for an operator: what was kept and what that saves a fresh device."""
        c = self.chosen
        if c.keep == layers_total:
            return f"on all {layers_total} of OLD's layers (dropping any would cost devices that run OLD more)"
        append = next((a for a in self.candidates if a.keep == layers_total), None)
        saved = f"; a new device pulls {append.fresh - c.fresh:,} B less than if appended" if append else ""
        return (f"keeps {c.keep} of OLD's {layers_total} layers, drops the top {layers_total - c.keep} "
                f"(NEW replaces what they hold){saved}")


def candidate_keeps(old: Image, new: Image, append_only: bool) -> list[int]:
    n = len(old.layers)
    if append_only or n <= 1:
        return [n]
    low = max(1, shared_prefix(old, new), n - MAX_CANDIDATES + 1)
    return list(range(n, low - 1, -1))


def live_bytes(diff: Diff) -> dict[int, int]:
    """Per layer of OLD: bytes (+ headers) of its files NEW keeps unchanged — what the new
    layer would have to ship again if that layer were dropped."""
    changed = {c.path for c in diff.changes}
    live: dict[int, int] = {}
    for path, node in diff.a_fs.walk():
        if node.kind == "file" and path not in changed and node.source[0] >= 0:
            live[node.source[0]] = live.get(node.source[0], 0) + node.size + TAR_HEADER
    return live


def worth_trying(keeps: list[int], append: "Candidate", live: dict[int, int]) -> list[int]:
    """The keeps below the append candidate whose new layer could still be near the cheapest:
    dropping layers k.. must re-ship their live files, less at most the whiteouts it saves.
    Stops at the first that cannot (dropping more only adds)."""
    out, extra = [], -TAR_HEADER * len(append.whiteouts)
    for keep in keeps:
        if keep == append.keep:
            continue
        extra += sum(n for layer, n in live.items() if keep <= layer < (out[-1] if out else append.keep))
        if append.unpacked + extra > append.unpacked * TOLERANCE + SLACK:
            break
        out.append(keep)
    return out


def costed(keep: int, old: Image, diff: Diff, inside: list[Change], outside: list[Change],
           stored: Callable[[Inode], int] | None = None) -> Candidate:
    """`stored`: the bytes a file of NEW takes in the new layer (a sparse file: its data only);
    default its size."""
    writes, whiteouts = layer_changes(inside)
    size = stored or (lambda node: node.size)
    unpacked = sum(TAR_HEADER + (size(c.new) if c.new is not None and c.new.kind == "file" else 0) for c in writes)
    unpacked += TAR_HEADER * len(whiteouts)
    dead = sum(c.old.size for c in inside if c.old is not None and c.old.kind == "file")
    kept = sum(layer.size for layer in old.layers[:keep])
    return Candidate(keep, diff, inside, outside, writes, whiteouts, kept, unpacked, dead)


def near_cheapest(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates whose estimated new layer is near the cheapest estimate: the ones to build."""
    best = min(c.unpacked for c in candidates)
    return [c for c in candidates if c.unpacked <= best * TOLERANCE + SLACK]


def choose(candidates: list[Candidate], build: Callable[[Candidate, str], None], workdir: str,
           max_keep: int | None = None) -> SeamChoice:
    """Among the candidates near the cheapest estimate for old holders, build and return the one
    a fresh device pulls least of (ties: fewer layers). One layer is built: the candidates ship
    the same kind of files, so their estimates rank them as their compressed sizes would.
    `max_keep` (the layer budget less the new layer): only candidates within it count; when
    that rules appending out, the appended layer is built too, to say what merging costs. The
    caller checks that some candidate fits."""
    fits = [c for c in candidates if max_keep is None or c.keep <= max_keep]
    near = sorted(near_cheapest(fits), key=lambda c: (c.kept_bytes + c.unpacked, c.keep))
    build(near[0], os.path.join(workdir, f"keep-{near[0].keep}"))
    appended = max(candidates, key=lambda c: c.keep)
    if appended in fits:
        return SeamChoice(near[0], candidates)
    build(appended, os.path.join(workdir, f"keep-{appended.keep}"))
    return SeamChoice(near[0], candidates, appended)


def same_outside(a: list[Change], b: list[Change]) -> bool:
    """The same changes outside the paths (by path and resulting state)."""
    def key(changes: list[Change]) -> set[tuple]:
        return {(c.path, c.new.identity() if c.new is not None else None) for c in changes}
    return key(a) == key(b)


def inside_paths(change: Change, paths: list[str]) -> bool:
    if any(is_under(change.path, p) for p in paths):
        return True
    # a parent directory NEW adds for the paths comes along (else the engine would invent one)
    return (change.old is None and change.new is not None and change.new.kind == "dir"
            and any(change.path in set(ancestors(p)) for p in paths))


def seam_candidates(old: Image, new: Image, wanted: list[str], auto: bool, append: bool,
                    progress: Progress | None, cache: LayerIndex, keeper: Keeper | None = None,
                    max_keep: int | None = None) -> list[Candidate]:
    """One costed candidate per number of OLD's layers kept (fleet_tui.rebase.seam); keeps
    whose new layer cannot come near the cheapest are never diffed — unless none of those fits
    the layer budget (`max_keep`): then the keeps within it are tried, most kept first, until
    one gives a valid candidate (merging the new layer into a seam over OLD's top layers)."""
    def split(diff: Diff) -> tuple[list[Change], list[Change]]:
        if auto:
            return diff.changes, []
        inside = [c for c in diff.changes if inside_paths(c, wanted)]
        return inside, [c for c in diff.changes if not inside_paths(c, wanted)]

    keeps = candidate_keeps(old, new, append)
    built: Built = {}  # NEW's layers are built once for every candidate
    diff = diff_images(old, new, progress, exact=False, cache=cache, keeper=keeper, built=built)
    inside, reference = split(diff)
    if not inside:
        raise FleetError(f"nothing under {', '.join('/' + p for p in wanted) or '/'} differs between NEW and "
                         "OLD; check --paths (`fleet-tui verify OLD NEW` lists the differences)")
    stored = keeper.stored_size if keeper is not None else None
    first = costed(len(old.layers), old, diff, inside, reference, stored)
    out = [first]
    tries = worth_trying(keeps, first, live_bytes(diff))
    over_budget = max_keep is not None and not append and all(k > max_keep for k in [first.keep, *tries])
    if over_budget:  # most of OLD kept first; below the shared layers too (the result equals NEW in auto mode)
        tries += [k for k in range(min(max_keep, len(old.layers)), 0, -1) if k not in tries][:MAX_CANDIDATES]  # type: ignore[arg-type]
    for keep in tries:
        if over_budget and any(c.keep <= max_keep for c in out):  # type: ignore[operator]
            break  # the budget needs one candidate within it: the one keeping most of OLD
        diff = diff_images(prefix_view(old, keep), new, progress, exact=False, cache=cache, built=built)
        inside, outside = split(diff)
        if inside and same_outside(outside, reference):  # paths mode: nothing outside the paths may move
            out.append(costed(keep, old, diff, inside, outside, stored))
    return out
