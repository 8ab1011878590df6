"""A simulated device's content store: the blob digests it holds, and blobs half-fetched.

Invariants: a digest enters `blobs` only after its bytes hashed to it; a partial blob keeps
the byte offset reached and the running hash of the bytes before it (a `DigestVerifier`),
so a resumed download fetches only the rest (HTTP Range) and still verifies the whole blob.
Digest strings are shared with the fleet's image cache, so 100,000 stores of a few digests
each cost little memory.
"""

from __future__ import annotations

from typing import Iterable

from fleet_tui.oci.digest import DigestVerifier


class ContentStore:
    __slots__ = ("blobs", "partial")

    def __init__(self, blobs: Iterable[str] = ()) -> None:
        self.blobs: set[str] = set(blobs)
        self.partial: dict[str, tuple[int, DigestVerifier]] = {}

    def has(self, digest: str) -> bool:
        return digest in self.blobs

    def resume_point(self, digest: str, size: int) -> tuple[int, DigestVerifier]:
        """(offset, verifier) to continue a blob from; (0, fresh verifier) if none."""
        saved = self.partial.get(digest)
        if saved is None:
            return 0, DigestVerifier(digest, size)
        offset, verifier = saved
        return offset, verifier.copy()

    def keep_partial(self, digest: str, offset: int, verifier: DigestVerifier) -> None:
        if offset > 0:
            self.partial[digest] = (offset, verifier.copy())

    def complete(self, digest: str) -> None:
        self.partial.pop(digest, None)
        self.blobs.add(digest)
