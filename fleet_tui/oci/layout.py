"""OCI image-layout directory store (the embedded store), with the `Store` interface.

Layout: `DIR/oci-layout`, `DIR/index.json`, `DIR/blobs/sha256/<hex>`. Tags are index
entries annotated `org.opencontainers.image.ref.name`. The `repo` argument of the Store
methods is accepted for symmetry and ignored: one directory is one repository, so a
"mount" is always free.

Invariants: blobs are written to a temp file, verified, then renamed (never a half-written
blob under its digest); index.json is rewritten atomically under an flock so several
processes may push at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from fleet_tui.errors import NotFound, UsageError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.digest import DigestVerifier, check_digest, sha256, short
from fleet_tui.oci.manifest import Descriptor, RawManifest

REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


class LayoutStore:
    kind = "layout"

    def __init__(self, root: str | Path, create: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.name = f"oci:{root}"
        self.resumes = 0
        if not (self.root / "oci-layout").exists():
            if not create:
                raise NotFound(f"{self.root} is not an OCI image layout (no oci-layout file); check the oci:DIR path")
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            self._write_atomic(self.root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            if not (self.root / "index.json").exists():
                self._write_index([])

    # --- index -------------------------------------------------------------------------
    def _read_index(self) -> list[dict]:
        try:
            return json.loads((self.root / "index.json").read_text()).get("manifests", [])
        except FileNotFoundError:
            return []

    def _write_index(self, manifests: list[dict]) -> None:
        doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
        self._write_atomic(self.root / "index.json", json.dumps(doc, indent=2).encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def list_tags(self, repo: str = "") -> list[str]:
        return sorted({m.get("annotations", {}).get(REF_NAME) for m in self._read_index()} - {None})

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Untag `digest` (every index entry naming it), as a registry's manifest DELETE does; its
        blobs stay in the directory (a layout has no garbage collector: blobs are shared)."""
        with self._locked():
            manifests = self._read_index()
            kept = [m for m in manifests if m.get("digest") != digest]
            if len(kept) == len(manifests):
                raise NotFound(f"manifest {short(digest)} is not in oci:{self.root}")
            self._write_index(kept)

    def list_repositories(self) -> list[str]:
        return [str(self.root)]

    # --- manifests ---------------------------------------------------------------------
    def _resolve(self, reference: str) -> dict | None:
        for m in self._read_index():
            if m.get("digest") == reference or m.get("annotations", {}).get(REF_NAME) == reference:
                return m
        return None

    def get_manifest(self, repo: str, reference: str) -> RawManifest:
        entry = self._resolve(reference)
        digest = entry["digest"] if entry else reference
        if not digest.startswith("sha256:") or not self._blob_path(digest).exists():
            what = f"digest {short(reference)}" if reference.startswith("sha256:") else f"tag {reference!r}"
            raise NotFound(f"{what} not found in {self.name}; `fleet-tui tags {self.name}` lists the tags")
        data = self._blob_path(digest).read_bytes()
        if sha256(data) != digest:
            raise NotFound(f"manifest {short(digest)} in {self.name} is corrupted on disk")
        media_type = (entry or {}).get("mediaType") or json.loads(data).get("mediaType", mt.OCI_MANIFEST)
        return RawManifest(data, media_type, digest)

    def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        entry = self._resolve(reference)
        return Descriptor(entry["mediaType"], entry["digest"], entry["size"]) if entry else None

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        digest = sha256(data)
        self.push_blob(repo, digest, data)
        with self._locked():
            manifests = self._read_index()
            entry = {"mediaType": media_type, "digest": digest, "size": len(data)}
            if not reference.startswith("sha256:"):
                entry["annotations"] = {REF_NAME: reference}
                manifests = [m for m in manifests if m.get("annotations", {}).get(REF_NAME) != reference]
            elif any(m["digest"] == digest for m in manifests):
                return digest
            manifests.append(entry)
            self._write_index(manifests)
        return digest

    # --- blobs -------------------------------------------------------------------------
    def _blob_path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    def blob_size(self, repo: str, digest: str) -> int | None:
        path = self._blob_path(digest)
        return path.stat().st_size if path.exists() else None

    def read_blob(self, repo: str, digest: str, size: int | None = None) -> bytes:
        return b"".join(self.iter_blob(repo, digest, size))

    def iter_blob(self, repo: str, digest: str, size: int | None = None, offset: int = 0,
                  verifier: DigestVerifier | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
        path = self._blob_path(digest)
        if not path.exists():
            raise NotFound(f"blob {short(digest)} not found in {self.name}")
        if verifier is None and offset == 0:
            verifier = DigestVerifier(digest, size)
        with open(path, "rb") as fh:
            fh.seek(offset)
            while piece := fh.read(chunk):
                if verifier is not None:
                    verifier.update(piece)
                yield piece
        if verifier is not None:
            verifier.finish()

    def push_blob(self, repo: str, digest: str, data: bytes | Iterable[bytes], size: int | None = None,
                  mount_from: str | None = None) -> bool:
        path = self._blob_path(digest)
        if path.exists():
            return False
        verifier = DigestVerifier(digest, size)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for piece in ([data] if isinstance(data, (bytes, bytearray)) else data):
                    verifier.update(piece)
                    fh.write(piece)
            verifier.finish()
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        return self.blob_size(repo, digest) is not None

    def close(self) -> None:
        pass


def open_layout(path: str, create: bool = False) -> LayoutStore:
    if not path:
        raise UsageError("oci: reference names no directory")
    return LayoutStore(path, create=create)
