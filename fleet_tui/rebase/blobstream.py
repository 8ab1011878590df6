"""Read a layer blob as a stream of tar entries, without unpacking it anywhere.

The blob comes from `store.iter_blob` (which verifies its digest as it streams); it is
decompressed on the fly (gzip detected by its magic bytes, plain tar accepted, zstd
refused with a clear message) and read with `tarfile` in stream mode, so memory stays
bounded by one chunk whatever the layer size. Rebase and verify read layers with the
faster `tarscan.py`; this path remains for layers with sparse files (which it handles).
"""

from __future__ import annotations

import io
import tarfile
import zlib
from typing import Iterator

from fleet_tui.errors import FleetError
from fleet_tui.oci.digest import short
from fleet_tui.oci.image import Image, Layer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.count += n
        return n

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        """Whole chunks when they fit (no copy), else a slice."""
        if not self._buf:
            self._buf = next(self._chunks, b"")
        if n < 0 or n >= len(self._buf):
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        self.count += len(out)
        return out

    def drain(self) -> None:
        self._buf = b""
        for _ in self._chunks:
            pass

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        return self._buf[:n]


class GunzipReader(io.RawIOBase):
    """Decompress a gzip stream (several members allowed) in large steps.

    Faster than `gzip.GzipFile` for tarfile's many small reads: one zlib call per input
    chunk and slices of a buffer, instead of Python-level work per read.
    """

    def __init__(self, raw: IterReader) -> None:
        self.raw = raw
        self._z = zlib.decompressobj(wbits=31)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while True:
            if self._z.eof:
                rest = self._z.unused_data
                self._z = zlib.decompressobj(wbits=31)
                if rest:
                    self._buf = self._z.decompress(rest)
                    self._pos = 0
                    if self._buf:
                        return True
            piece = self._z.unconsumed_tail or self.raw.read(1 << 20)
            if not piece:
                return False
            self._buf, self._pos = self._z.decompress(piece, 1 << 20), 0
            if self._buf:
                return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self._pos >= len(self._buf) and not self._fill():
            return 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def open_layer(image: Image, layer: Layer, raw: IterReader) -> tarfile.TarFile:
    """A stream-mode TarFile over one layer of `image` (decompressed as it is read)."""
    head = raw.peek(4)
    if head.startswith(GZIP_MAGIC):
        stream: io.IOBase = io.BufferedReader(GunzipReader(raw), 1 << 16)
    elif head.startswith(ZSTD_MAGIC):
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is zstd-compressed; rebase reads gzip or plain tar layers only")
    else:
        stream = io.BufferedReader(raw, 1 << 20)
    try:
        return tarfile.open(fileobj=stream, mode="r|")  # type: ignore[arg-type]
    except tarfile.TarError as exc:
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is not a tar archive ({exc})") from None


def iter_members(image: Image, layer: Layer) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Yield (member, tar) for each entry; read content with `tar.extractfile(member)` right away."""
    raw = IterReader(image.store.iter_blob(image.repo, layer.digest, layer.size))
    tar = open_layer(image, layer, raw)
    try:
        for member in tar:
            yield member, tar
        raw.drain()  # read to the end so that the blob's digest gets verified
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is corrupted ({type(exc).__name__}: {exc})") from None
    finally:
        tar.close()


def norm_path(name: str) -> str:
    """Tar member name → `a/b/c` (no leading `./` or `/`, no trailing `/`)."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")
