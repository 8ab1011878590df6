"""Open a layer blob as the stream of its uncompressed tar bytes, checked end to end.

A device's engine accepts a layer only when (1) the blob hashes to its descriptor digest,
(2) the compressed stream decodes to its end — moby's pull reads gzip with Go's
`compress/gzip` (multistream; a truncated member or bytes after the last member are an
error) — and (3) the uncompressed stream hashes to the config's `rootfs.diff_ids` entry
(moby's layer store computes the diff_id over the whole stream and refuses a mismatch). A
layer read here is complete only when all three held, so `verify` and `rebase` never build
on a blob a device would refuse.

Compression is detected from the bytes (gzip, zstd, or a plain tar; a 0-byte blob is an
empty plain layer, which dockerd accepts). zstd layers (moby >= 23 pulls them) are read
with `zstandard`, frames in sequence.

Invariants: memory is bounded by one decompressed piece (`INFLATE_OUT`, times the read-ahead
depth); every failure is a `LayerError` naming the image, the layer and what failed.
"""

from __future__ import annotations

import hashlib
import io
from typing import Iterator

from fleet_tui.errors import FleetError
from fleet_tui.oci.digest import short
from fleet_tui.oci.image import Image, Layer

try:  # ISA-L inflates about twice as fast as zlib, same format and API
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib as _zlib  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
INFLATE_OUT = 1 << 20  # most bytes one decompress call may return


class LayerError(FleetError):
    """A layer blob that a device would refuse: corrupt, truncated, or not its diff_id."""


class StreamError(Exception):
    """The compressed stream is malformed (message says how); wrapped into a LayerError."""


def inflate(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Decompressed pieces of a gzip stream: several members in sequence, as Go's multistream
    reader; a member cut short, or anything after the last member that is not one, fails."""
    z = None
    for piece in pieces:
        while piece:
            if z is None:
                z = _zlib.decompressobj(31)
            try:
                out = z.decompress(piece, INFLATE_OUT)
            except _zlib.error as exc:
                raise StreamError(f"gzip data is corrupt ({exc})") from None
            if out:
                yield out
            if z.eof:
                piece, z = z.unused_data, None
            else:
                piece = z.unconsumed_tail
    if z is not None:
        rest = z.flush()
        if rest:
            yield rest
        if not z.eof:
            raise StreamError("the gzip stream ends before its end marker (truncated blob)")


class PieceReader(io.RawIOBase):
    """A read-only file over an iterator of byte pieces (zstandard's and tarfile's readers)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces, self._buf = pieces, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._pieces, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def unzstd(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Decompressed pieces of a zstd stream (frames in sequence). A frame cut short ends the
    output early; the diff_id check then refuses the layer."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(PieceReader(pieces), read_across_frames=True)
    try:
        while chunk := reader.read(INFLATE_OUT):
            yield chunk
    except zstandard.ZstdError as exc:
        raise StreamError(f"zstd data is corrupt ({exc})") from None


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _checked(pieces: Iterator[bytes], image: Image, layer: Layer) -> Iterator[bytes]:
    """Pass pieces through, hashing them; at the end, compare with the layer's diff_id."""
    h = hashlib.sha256()
    try:
        for piece in pieces:
            h.update(piece)
            yield piece
    except StreamError as exc:
        raise layer_error(image, layer, str(exc)) from None
    if layer.diff_id and "sha256:" + h.hexdigest() != layer.diff_id:
        raise layer_error(image, layer, f"its uncompressed content is sha256:{h.hexdigest()[:12]}…, not the config's "
                          f"diff_id {short(layer.diff_id)} (truncated or corrupt blob)")


def layer_error(image: Image, layer: Layer, what: str) -> LayerError:
    return LayerError(f"layer {short(layer.digest)} of {image.ref} cannot be used: {what}; "
                      f"a device would refuse it — rebuild or re-push the image")


def compression_of(first: bytes) -> str:
    if first.startswith(GZIP_MAGIC):
        return "gzip"
    return "zstd" if first.startswith(ZSTD_MAGIC) else "none"


def layer_bytes(image: Image, layer: Layer) -> Iterator[bytes]:
    """The uncompressed tar bytes of `layer`. When the iterator is run to its end, the blob
    digest, the end of the compressed stream and the diff_id have all been checked."""
    raw = image.store.iter_blob(image.repo, layer.digest, layer.size)
    first = next(raw, b"")
    while len(first) < 4 and (more := next(raw, None)) is not None:
        first += more
    pieces = _chain(first, raw)
    kind = compression_of(first)
    if kind == "gzip":
        pieces = inflate(pieces)
    elif kind == "zstd":
        pieces = unzstd(pieces)
    return _checked(pieces, image, layer)
