"""Pull plan: the bytes a device holding some images downloads to run a target image.

Rule (as dockerd and the IoT Edge agent behave): a layer is skipped only if the device
already holds that exact *compressed* blob digest; the manifest — and the index, when the
reference (a tag, or an index digest: what a multi-platform rollout deploys) resolves
through one — is fetched unless the device holds that very manifest (an image pinned by a
digest it has: measured, dockerd then asks the registry nothing); the config blob is fetched
unless the device already has an image with the same config (then it already has the image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from fleet_tui.oci.image import Image


@dataclass(frozen=True)
class PlannedLayer:
    digest: str
    size: int
    needed: bool
    created_by: str
    media_type: str = ""


@dataclass(frozen=True)
class PullPlan:
    target: str
    target_digest: str
    layers: list[PlannedLayer]
    manifest_bytes: int
    config_bytes: int
    index_bytes: int = 0
    config_digest: str = ""  # what `config_bytes` fetch, and the index `index_bytes` fetch (a site's cache
    index_digest: str = ""  # keeps each by digest: fleet_tui.fleet.sites)

    def fetched(self) -> dict[str, int]:
        """Every blob and manifest this plan fetches, by digest → bytes (what a cache must hold)."""
        out = {l.digest: l.size for l in self.layers if l.needed}
        if self.manifest_bytes:
            out[self.target_digest] = self.manifest_bytes
        if self.config_bytes:
            out[self.config_digest] = self.config_bytes
        if self.index_bytes:
            out[self.index_digest] = self.index_bytes
        return out

    @property
    def layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers if layer.needed)

    @property
    def total_bytes(self) -> int:
        return self.layer_bytes + self.manifest_bytes + self.config_bytes + self.index_bytes

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "target_digest": self.target_digest,
            "layers": [
                {"digest": l.digest, "size": l.size, "needed": l.needed, "created_by": l.created_by}
                for l in self.layers
            ],
            "manifest_bytes": self.manifest_bytes,
            "index_bytes": self.index_bytes,
            "config_bytes": self.config_bytes,
            "total_bytes": self.total_bytes,
        }


def plan_for_blobs(target: Image, have_blobs: set[str], have_configs: set[str] = frozenset(),
                   have_manifests: set[str] = frozenset()) -> PullPlan:
    """Plan against a device's content store (a set of blob digests it holds)."""
    if target.digest in have_manifests:  # the very image, pinned by digest: dockerd asks the registry nothing
        layers = [PlannedLayer(l.digest, l.size, False, l.created_by, l.media_type) for l in target.layers]
        return PullPlan(str(target.ref), target.digest, layers, 0, 0, 0)
    if target.config_digest in have_configs:
        layers = [PlannedLayer(l.digest, l.size, False, l.created_by, l.media_type) for l in target.layers]
        return PullPlan(str(target.ref), target.digest, layers, target.manifest_bytes, 0, target.index_bytes,
                        target.config_digest, target.index_digest)
    seen: set[str] = set(have_blobs)
    layers = []
    for layer in target.layers:
        needed = layer.digest not in seen
        seen.add(layer.digest)
        layers.append(PlannedLayer(layer.digest, layer.size, needed, layer.created_by, layer.media_type))
    return PullPlan(
        str(target.ref), target.digest, layers, target.manifest_bytes, target.config_bytes,
        target.index_bytes, target.config_digest, target.index_digest,
    )


def plan_pull(target: Image, haves: Iterable[Image]) -> PullPlan:
    haves = list(haves)
    blobs = {l.digest for img in haves for l in img.layers}
    configs = {img.config_digest for img in haves}
    return plan_for_blobs(target, blobs, configs, {img.digest for img in haves})
