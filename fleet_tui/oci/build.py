"""Assemble images from layers in Python and push them to any `Store`.

Used by the demo (to fill the embedded store), the rebaser's tests and the benchmarks.
Invariants: one media-type family per image (Docker v2 or OCI, never mixed); the config's
`rootfs.diff_ids` and `history` stay in step with the manifest's layers; blobs are pushed
before the manifest that names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.manifest import Descriptor, Manifest, canonical
from fleet_tui.oci.store import Store

CREATED = "2026-01-01T00:00:00Z"


@dataclass
class ImageBuilder:
    family: str = mt.DOCKER
    container: dict[str, Any] = field(default_factory=lambda: {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
    layers: list[tuple[LayerResult, str]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    architecture: str = "amd64"
    os: str = "linux"
    created: str = CREATED

    def add_layer(self, layer: LayerResult, created_by: str) -> "ImageBuilder":
        if layer.data is None:
            raise ValueError("ImageBuilder needs in-memory layers (write_layer(out=None))")
        self.layers.append((layer, created_by))
        self.history.append({"created": self.created, "created_by": created_by})
        return self

    def add_empty_step(self, created_by: str) -> "ImageBuilder":
        self.history.append({"created": self.created, "created_by": created_by, "empty_layer": True})
        return self

    def config_bytes(self) -> bytes:
        doc = {
            "architecture": self.architecture, "os": self.os, "created": self.created,
            "config": self.container,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer, _ in self.layers]},
            "history": self.history,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    def manifest(self) -> tuple[Manifest, bytes]:
        config = self.config_bytes()
        m = Manifest(
            mt.manifest_type(self.family),
            Descriptor(mt.config_type(self.family), sha256(config), len(config)),
            [Descriptor(mt.layer_type(self.family, layer.compression), layer.digest, layer.size) for layer, _ in self.layers],
            dict(self.annotations),
        )
        return m, config

    def push(self, store: Store, repo: str, tag: str) -> str:
        """Push blobs, config and manifest; returns the manifest digest."""
        manifest, config = self.manifest()
        for layer, _ in self.layers:
            store.push_blob(repo, layer.digest, layer.data, layer.size)  # type: ignore[arg-type]
        store.push_blob(repo, manifest.config.digest, config, len(config))
        return store.put_manifest(repo, tag, manifest.to_bytes(), manifest.media_type)


def push_index(store: Store, repo: str, tag: str, entries: list[tuple[str, int, str, str]],
               family: str = mt.DOCKER) -> str:
    """Push a manifest list / OCI index of (digest, size, media_type, "os/arch") entries."""
    manifests = []
    for digest, size, media_type, platform in entries:
        os_, arch = platform.split("/")[:2]
        manifests.append({"mediaType": media_type, "digest": digest, "size": size,
                          "platform": {"architecture": arch, "os": os_}})
    media_type = mt.DOCKER_LIST if family == mt.DOCKER else mt.OCI_INDEX
    data = canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})
    return store.put_manifest(repo, tag, data, media_type)
