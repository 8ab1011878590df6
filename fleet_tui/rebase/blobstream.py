"""Read a layer's entries with their data: the lean scanner, or `tarfile` for sparse files.

`map_layer` is how rebase and verify read a layer blob without unpacking it anywhere: it
streams it through `tarscan.py` and, when the scanner hands a layer back (`Unsupported`:
sparse files), reads that layer again from the start with `tarfile` in stream mode, which
handles them. Both paths share the blob opening of `tarscan.layer_bytes` (digest checked
and end of stream checked, gzip, zstd or plain tar) and give the same `Member`s, so callers
never see which one ran.

Invariants: memory is bounded by one chunk whatever the layer size; a list is returned
only after the blob was read to its end and its digest verified.
"""

from __future__ import annotations

import io
import tarfile
from typing import Callable, Iterator, TypeVar

from fleet_tui.oci.image import Image, Layer
from fleet_tui.rebase.layerstream import PieceReader, layer_bytes, layer_error
from fleet_tui.rebase.tarscan import XATTR, Member, Unsupported, scan_layer

CHUNK = 1 << 20
T = TypeVar("T")
Data = Iterator["bytes | memoryview"]


def tarfile_entries(image: Image, layer: Layer) -> Iterator[tuple[Member, Data]]:
    """Like `tarscan.scan_layer`, read with `tarfile` (slower; handles sparse files)."""
    pieces = layer_bytes(image, layer)
    try:
        with tarfile.open(fileobj=io.BufferedReader(PieceReader(pieces), CHUNK), mode="r|") as tar:  # type: ignore[arg-type]
            for info in tar:
                fh = tar.extractfile(info) if info.isreg() else None
                data: Data = iter(lambda: fh.read(CHUNK), b"") if fh is not None else iter(())  # type: ignore[union-attr]
                kind = tarfile.REGTYPE if info.issparse() else info.type  # its data is the whole file, holes filled
                member = Member(info.name, kind, info.mode, info.uid, info.gid, info.size, info.linkname,
                                info.devmajor, info.devminor)
                member.xattrs = {k[len(XATTR):]: v for k, v in info.pax_headers.items() if k.startswith(XATTR)}
                yield member, data
        for _ in pieces:  # read to the end: blob digest, end of stream and diff_id get checked
            pass
    except (tarfile.TarError, OSError) as exc:
        raise layer_error(image, layer, f"its tar stream is malformed ({type(exc).__name__}: {exc})") from None


def map_layer(image: Image, layer: Layer, visit: Callable[[Member, Data], T | None], ahead: bool = False) -> list[T]:
    """`visit(member, data)` for each entry of `layer`, in order; its non-None results.

    `data` is the entry's bytes, readable only during the call. A layer the scanner hands back
    is read again from its start with `tarfile` and the first attempt's results dropped, so
    `visit` may be called twice for an entry. `ahead`: see `tarscan.scan_layer`.
    """
    def collect(entries: Iterator[tuple[Member, Data]]) -> list[T]:
        return [r for member, data in entries if (r := visit(member, data)) is not None]

    try:
        return collect(scan_layer(image, layer, ahead))
    except Unsupported:
        return collect(tarfile_entries(image, layer))


def norm_path(name: str) -> str:
    """Tar member name → `a/b/c` (no leading `./` or `/`, no trailing `/`)."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")
