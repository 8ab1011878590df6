"""Assemble and push a rebased image: OLD's blobs as they are + one new layer.

Config = NEW's config — its runtime settings (`config`: User, Healthcheck, StopSignal,
Volumes, Cmd, Env, …), platform (architecture, os, variant) and `created` — with `rootfs`
and `history` from OLD plus the new layer (so diff_ids match the manifest's layers).
Manifest = OLD's media-type family (never
mixed), OLD's layer descriptors unchanged + the new one, annotated with
`org.opencontainers.image.base.name`/`.base.digest` = OLD. Docker v2 schema 2 manifests
carry these annotations too: the Docker spec ignores unknown fields, Distribution 2.8
stores the bytes as pushed and dockerd pulls them (the dockerd test checks this).

Invariants: OLD's layers are never recompressed — within one registry they are mounted
across repositories (no upload), elsewhere copied byte for byte as a stream; blobs are all
pushed before the manifest, so an error leaves nothing tagged. The history `created` time
is NEW's (no wall clock), so the same rebase gives the same digests.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Callable

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.annotations import BASE_DIGEST, BASE_NAME
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.image import Image
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.manifest import Descriptor, Manifest
from fleet_tui.oci.reference import Reference
from fleet_tui.oci.store import Store, repo_of

EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Assembled:
    manifest: Manifest
    manifest_bytes: bytes
    config_bytes: bytes
    layer_descriptor: Descriptor

    @property
    def digest(self) -> str:
        return sha256(self.manifest_bytes)


def assemble(old: Image, new: Image, layer: LayerResult, created_by: str) -> Assembled:
    doc = copy.deepcopy(new.config.doc)
    created = new.config.doc.get("created") or EPOCH
    doc["rootfs"] = {"type": "layers", "diff_ids": list(old.config.diff_ids) + [layer.diff_id]}
    doc["history"] = list(copy.deepcopy(old.config.doc.get("history") or [])) + [
        {"created": created, "created_by": created_by, "comment": f"fleet-tui rebase of {new.pinned}"}
    ]
    doc["created"] = created
    config_bytes = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    family = old.family
    descriptor = Descriptor(mt.layer_type(family, layer.compression), layer.digest, layer.size)
    manifest = Manifest(
        mt.manifest_type(family),
        Descriptor(mt.config_type(family), sha256(config_bytes), len(config_bytes)),
        list(old.manifest.layers) + [descriptor],
        {**old.manifest.annotations, BASE_NAME: str(old.ref),
         BASE_DIGEST: old.digest},
    )
    return Assembled(manifest, manifest.to_bytes(), config_bytes, descriptor)


def same_store(a: Store, b: Store) -> bool:
    return a is b or (a.kind == b.kind and a.name == b.name)


def copy_blob(src_image: Image, dst: Store, dst_repo: str, desc: Descriptor) -> str:
    """Make `desc` available in dst_repo: 'present', 'mounted' or 'copied' (streamed)."""
    src = src_image.store
    if dst.blob_size(dst_repo, desc.digest) is not None:
        return "present"
    if same_store(src, dst) and dst.kind == "registry":
        if dst.mount_blob(dst_repo, desc.digest, src_image.repo):
            return "mounted"
    chunks = src.iter_blob(src_image.repo, desc.digest, desc.size)
    dst.push_blob(dst_repo, desc.digest, chunks, desc.size)
    return "copied"


def push_rebased(old: Image, target: Reference, target_store: Store, assembled: Assembled,
                 layer_path: str, progress: Callable[[str, int, int], None] | None = None,
                 tag: bool = True) -> dict[str, int]:
    """Push blobs (OLD's, the new layer, config) then the manifest; returns blob outcome counts."""
    repo = repo_of(target)
    outcomes: dict[str, int] = {}
    for n, desc in enumerate(old.manifest.layers):
        if progress:
            progress("publishing OLD's layer", n + 1, len(old.manifest.layers))
        how = copy_blob(old, target_store, repo, desc)
        outcomes[how] = outcomes.get(how, 0) + 1
    layer = assembled.layer_descriptor
    if target_store.blob_size(repo, layer.digest) is None:
        target_store.push_blob(repo, layer.digest, _file_chunks(layer_path), layer.size)
    config = assembled.manifest.config
    target_store.push_blob(repo, config.digest, assembled.config_bytes, config.size)
    reference = (target.tag if tag else None) or assembled.digest
    target_store.put_manifest(repo, reference, assembled.manifest_bytes, assembled.manifest.media_type)
    return outcomes


def _file_chunks(path: str, chunk: int = 1 << 20):
    with open(path, "rb") as fh:
        while piece := fh.read(chunk):
            yield piece
