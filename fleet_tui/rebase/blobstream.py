"""Read a layer blob as a stream of tar entries, without unpacking it anywhere.

The blob comes from `store.iter_blob` (which verifies its digest as it streams); it is
decompressed on the fly (gzip detected by its magic bytes, plain tar accepted, zstd
refused with a clear message) and read with `tarfile` in stream mode, so memory stays
bounded by one chunk whatever the layer size.
"""

from __future__ import annotations

import gzip
import io
import tarfile
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

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                self._buf += next(self._chunks)
            except StopIteration:
                break
        return self._buf[:n]


def open_layer(image: Image, layer: Layer) -> tarfile.TarFile:
    """A stream-mode TarFile over one layer of `image` (decompressed as it is read)."""
    raw = IterReader(image.store.iter_blob(image.repo, layer.digest, layer.size))
    head = raw.peek(4)
    if head.startswith(GZIP_MAGIC):
        stream: io.IOBase = gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 20), mode="rb")
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
    tar = open_layer(image, layer)
    try:
        for member in tar:
            yield member, tar
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is corrupted ({type(exc).__name__}: {exc})") from None
    finally:
        tar.close()


def norm_path(name: str) -> str:
    """Tar member name → `a/b/c` (no leading `./` or `/`, no trailing `/`)."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")
