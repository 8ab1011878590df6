"""Media types of the Docker v2 schema 2 and OCI image formats, and their families.

Invariant: a manifest never mixes families — `family_of()` tells which one a manifest
uses, and `layer_type(family, compression)`/`config_type(family)` give the matching types when
something new is appended.
"""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join(MANIFESTS + INDEXES)

DOCKER = "docker"
OCI = "oci"


def family_of(media_type: str) -> str:
    return DOCKER if "vnd.docker" in media_type else OCI


def layer_type(family: str, compression: str = "gzip") -> str:
    """The layer media type of a family; zstd exists only in OCI (Docker v2 has gzip alone)."""
    if compression == "zstd":
        if family == DOCKER:
            raise ValueError("zstd layers exist only in OCI images; this image is Docker v2 (use gzip)")
        return OCI_LAYER_ZSTD
    if compression == "none" and family != DOCKER:
        return OCI_LAYER
    return DOCKER_LAYER if family == DOCKER else OCI_LAYER_GZIP


def config_type(family: str) -> str:
    return DOCKER_CONFIG if family == DOCKER else OCI_CONFIG


def manifest_type(family: str) -> str:
    return DOCKER_MANIFEST if family == DOCKER else OCI_MANIFEST


def is_gzip_layer(media_type: str) -> bool:
    return media_type.endswith("gzip")


def is_index(media_type: str) -> bool:
    return media_type in INDEXES
