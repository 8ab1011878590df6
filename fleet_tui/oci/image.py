"""Resolve a reference to an `Image`: manifest (through an index if any), config, layers.

An `Image` carries everything the planner and the rebaser need without fetching layer
blobs: per layer its compressed digest and size (from the manifest), its diff_id and the
build step that made it (from the config), and the byte sizes of manifest, index and
config — what a device downloads besides layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.manifest import (
    DEFAULT_PLATFORM,
    Descriptor,
    ImageConfig,
    Manifest,
    RawManifest,
    parse_index,
    pick_platform,
)
from fleet_tui.oci.reference import Reference, parse_reference
from fleet_tui.oci.store import Store, open_store, repo_of


@dataclass(frozen=True)
class Layer:
    digest: str  # of the compressed blob: what a device caches and skips
    size: int
    media_type: str
    diff_id: str = ""  # of the uncompressed tar
    created_by: str = ""


@dataclass
class Image:
    ref: Reference
    store: Store
    digest: str  # manifest digest (what a digest-pinned deploy names)
    manifest: Manifest
    raw_manifest: RawManifest
    config: ImageConfig
    config_bytes: int
    layers: list[Layer]
    index_bytes: int = 0  # size of the index/manifest list a pull by tag fetches first
    index_digest: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def repo(self) -> str:
        return repo_of(self.ref)

    @property
    def manifest_bytes(self) -> int:
        return len(self.raw_manifest.data)

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @property
    def family(self) -> str:
        return self.manifest.family

    @property
    def layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def pinned(self) -> str:
        """This platform's manifest, digest-pinned."""
        return self.ref.pinned(self.digest)

    @property
    def deploy_digest(self) -> str:
        """What a deployment names: the index when the image came through one (each device then
        picks its own platform), else the manifest."""
        return self.index_digest or self.digest

    @property
    def deploy_ref(self) -> str:
        return self.ref.pinned(self.deploy_digest)

    @property
    def config_digest(self) -> str:
        return self.manifest.config.digest


def load_image(ref: Reference | str, config: Config, platform: str = DEFAULT_PLATFORM,
               store: Store | None = None) -> Image:
    if isinstance(ref, str):
        ref = parse_reference(ref)
    store = store or open_store(ref, config)
    repo = repo_of(ref)
    raw = store.get_manifest(repo, ref.reference)
    index_bytes, index_digest = 0, ""
    media_type = raw.media_type or raw.json().get("mediaType", "")
    if mt.is_index(media_type) or "manifests" in raw.json():
        chosen: Descriptor = pick_platform(parse_index(raw), platform)
        index_bytes, index_digest = len(raw.data), raw.digest
        raw = store.get_manifest(repo, chosen.digest)
    manifest = Manifest.parse(raw)
    config_data = store.read_blob(repo, manifest.config.digest, manifest.config.size)
    image_config = ImageConfig.parse(config_data)
    diff_ids = image_config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise FleetError(
            f"{ref}: manifest has {len(manifest.layers)} layers but config has {len(diff_ids)} diff_ids; the image is inconsistent"
        )
    steps = image_config.layer_steps(len(manifest.layers))
    layers = [
        Layer(d.digest, d.size, d.media_type, diff, step)
        for d, diff, step in zip(manifest.layers, diff_ids, steps)
    ]
    return Image(ref, store, raw.digest, manifest, raw, image_config, len(config_data), layers, index_bytes, index_digest)
