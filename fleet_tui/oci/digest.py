"""Content digests (`sha256:<hex>`): compute, parse, verify incrementally.

Invariant: bytes are accepted only after they hashed to the digest that was asked for;
`DigestVerifier.finish()` raises `DigestMismatch` otherwise.
"""

from __future__ import annotations

import hashlib
import re

from fleet_tui.errors import DigestMismatch, UsageError

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest or ""):
        raise UsageError(f"malformed digest {digest!r}: expected sha256:<64 hex digits>")
    return digest


def short(digest: str, n: int = 12) -> str:
    """`sha256:abcdef…` → `abcdef123456` for display."""
    return digest.split(":", 1)[-1][:n] if digest else ""


class DigestVerifier:
    """Hash a stream as it passes, then check it against the expected digest and size."""

    def __init__(self, expected: str, size: int | None = None, what: str = "blob") -> None:
        check_digest(expected)
        self.expected = expected
        self.size = size
        self.what = what
        self.count = 0
        self._h = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.count += len(chunk)

    def finish(self) -> None:
        got = "sha256:" + self._h.hexdigest()
        if self.size is not None and self.count != self.size:
            raise DigestMismatch(
                f"{self.what} {short(self.expected)}: got {self.count} bytes, expected {self.size}; refusing corrupted content"
            )
        if got != self.expected:
            raise DigestMismatch(
                f"{self.what} {short(self.expected)}: content hashes to {short(got)}; refusing corrupted content"
            )

    def copy(self) -> "DigestVerifier":
        twin = DigestVerifier(self.expected, self.size, self.what)
        twin.count = self.count
        twin._h = self._h.copy()
        return twin
