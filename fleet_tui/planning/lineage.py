"""Releases of a repository and how they build on each other; which rebased ones can go.

Each tag's image is read from its manifest and config only (no layer is downloaded):
- `rebased`: fleet-tui made it (`org.opencontainers.image.base.digest` annotation and a last
  history entry "fleet-tui rebase …"); `base`: the image it was rebased onto;
- `depth`: how many fleet-tui rebase layers it stacks (0 for a naive build, 1 for a rebase
  onto the seam, n after n appended rebases);
- `dead_bytes`: compressed bytes of earlier fleet-tui rebase layers it still carries — the
  models and files a newer layer replaced, which a device installed today still downloads;
- `devices`: devices running it (the hub's group summary); `rollouts`: journalled rollouts
  that name it (as target, variant, base or the image devices ran before).

Prune rule (`prunable`): a *rebased* release that no device runs, no rollout names, and that
no release kept builds on — keeps all of its layers and adds more (a rebase onto the seam
reuses only the layers below, so it does not hold on to the release it was made from). Naive builds are never candidates. Deleting is by manifest digest
(all its tags go with it, so a digest any kept tag names is kept); blobs are never deleted —
the registry's garbage collector removes only blobs no manifest uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from fleet_tui.errors import FleetError
from fleet_tui.oci.annotations import BASE_DIGEST, BASE_NAME
from fleet_tui.oci.image import Image, load_image
from fleet_tui.oci.reference import Reference

REBASE_STEP = "fleet-tui rebase"


@dataclass
class Release:
    tag: str
    digest: str  # what a deployment names (the index when multi-platform)
    manifest: str  # this platform's manifest digest
    layers: int
    bytes: int  # a fresh pull: layers + config + manifest
    rebased: bool
    base: str = ""  # digest it was rebased onto
    base_name: str = ""
    dead_bytes: int = 0
    depth: int = 0
    devices: int = 0
    rollouts: list[str] = field(default_factory=list)
    built_on_by: list[str] = field(default_factory=list)  # tags of releases rebased onto this one
    prunable: bool = False
    error: str = ""  # could not be read
    layer_digests: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "layer_digests"}


def _steps(image: Image) -> list[str]:
    return [h.get("created_by", "") for h in image.config.history if not h.get("empty_layer")]


def rebase_stats(image: Image) -> tuple[bool, int, int]:
    """(made by a fleet-tui rebase, its depth, its dead bytes) — see the module docstring."""
    steps = _steps(image)
    aligned = len(steps) == len(image.layers)
    rebase_layers = [i for i, s in enumerate(steps) if s.startswith(REBASE_STEP)] if aligned else []
    rebased = (bool(image.manifest.annotations.get(BASE_DIGEST)) and bool(rebase_layers)
               and rebase_layers[-1] == len(image.layers) - 1)
    if not rebased:
        return False, 0, 0
    return True, len(rebase_layers), sum(image.layers[i].size for i in rebase_layers[:-1])


def read_release(ref: Reference, tag: str, config: Any) -> Release:
    try:
        image = load_image(ref.with_tag(tag), config)
    except FleetError as exc:
        return Release(tag, "", "", 0, 0, False, error=str(exc))
    rebased, depth, dead = rebase_stats(image)
    annotations = image.manifest.annotations
    return Release(tag, image.deploy_digest, image.digest, len(image.layers),
                   image.layer_bytes + image.config_bytes + image.manifest_bytes, rebased,
                   annotations.get(BASE_DIGEST, "") if rebased else "", annotations.get(BASE_NAME, "") if rebased else "",
                   dead, depth, layer_digests=[layer.digest for layer in image.layers])


def link(releases: list[Release], devices: dict[str, int], rollouts: dict[str, set[str]]) -> list[Release]:
    """Fill depth, devices, rollouts, built_on_by and prunable (see the module docstring)."""
    by_digest: dict[str, Release] = {}
    for r in releases:
        for d in (r.digest, r.manifest):
            if d:
                by_digest.setdefault(d, r)
    for r in releases:
        r.devices = devices.get(r.digest, 0) + (devices.get(r.manifest, 0) if r.manifest != r.digest else 0)
        r.rollouts = sorted(rollouts.get(r.digest, set()) | rollouts.get(r.manifest, set()))
        base = by_digest.get(r.base)
        if base is not None and base is not r and r.layer_digests[:len(base.layer_digests)] == base.layer_digests:
            base.built_on_by.append(r.tag)  # r holds all of base's layers
    changed = True
    candidates = {r.tag for r in releases if r.rebased and not r.error and not r.devices and not r.rollouts}
    while changed:  # a release others build on stays while any of them stays
        changed = False
        tags = {r.tag: r for r in releases}
        for tag in sorted(candidates):
            if any(b not in candidates for b in tags[tag].built_on_by):
                candidates.discard(tag)
                changed = True
    digests_kept = {r.digest for r in releases if r.tag not in candidates}
    for r in releases:
        r.prunable = r.tag in candidates and r.digest not in digests_kept
    return releases


def release_lineage(ref: Reference, tags: Iterable[str], config: Any, devices: dict[str, int],
                    rollouts: dict[str, set[str]]) -> list[Release]:
    return link([read_release(ref, t, config) for t in sorted(tags)], devices, rollouts)
