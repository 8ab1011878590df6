"""The `Store` interface shared by the registry client and the OCI layout store, and
`open_store()` which picks one for a reference.

A Store is scoped to one registry host or one layout directory; methods take the
repository path. Stores are cached per host/directory within a process so that one
connection pool serves every call.
"""

from __future__ import annotations

import threading
from typing import Iterable, Iterator, Protocol

from fleet_tui.config import Config
from fleet_tui.oci.digest import DigestVerifier
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.oci.manifest import Descriptor, RawManifest
from fleet_tui.oci.reference import Reference
from fleet_tui.oci.registry import RegistryClient


class Store(Protocol):
    kind: str
    name: str

    def list_tags(self, repo: str) -> list[str]: ...
    def list_repositories(self) -> list[str]: ...
    def get_manifest(self, repo: str, reference: str) -> RawManifest: ...
    def head_manifest(self, repo: str, reference: str) -> Descriptor | None: ...
    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str: ...
    def blob_size(self, repo: str, digest: str) -> int | None: ...
    def read_blob(self, repo: str, digest: str, size: int | None = None) -> bytes: ...
    def iter_blob(self, repo: str, digest: str, size: int | None = None, offset: int = 0,
                  verifier: DigestVerifier | None = None, chunk: int = ...) -> Iterator[bytes]: ...
    def push_blob(self, repo: str, digest: str, data: bytes | Iterable[bytes], size: int | None = None,
                  mount_from: str | None = None) -> bool: ...
    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool: ...
    def delete_manifest(self, repo: str, digest: str) -> None: ...
    def close(self) -> None: ...


# Registry clients are per (host, config): the config carries insecure hosts, auth, timeouts.
# id(config) is a safe key because the cached client holds its config (Transport.config), so
# that id cannot be reused while the entry lives. A layout store does not use the config:
# one per directory.
_cache: dict[tuple[str, int], Store] = {}
_lock = threading.Lock()


def open_store(ref: Reference, config: Config, create: bool = False) -> Store:
    """The store holding `ref` (a registry client or a layout directory)."""
    key = ("oci:" + ref.repository, 0) if ref.layout else (ref.registry, id(config))
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = LayoutStore(ref.repository, create=create) if ref.layout else RegistryClient(ref.registry, config)
            _cache[key] = store
        return store


def repo_of(ref: Reference) -> str:
    """The repository argument the store methods take for this reference."""
    return "" if ref.layout else ref.repository
