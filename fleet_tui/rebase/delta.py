"""Write the one new layer of a rebase: B's entries for the changed paths + whiteouts.

File contents are extracted from B's layers by streaming only the layers that provide
them (always from the blob, never from the layer index, which holds no bytes), and spooled (in memory up to `SPOOL_IN_MEMORY`, else to a temp file) so that the
layer can be written in sorted path order. The layer itself goes to a temp file, never to
memory as a whole. Entries get mtime 0 and the uid/gid/mode B has, xattrs are not carried.
Invariant: the same changes always give the same bytes (hence digests): sorted entries,
fixed mtimes, gzip header mtime 0 (see `fleet_tui.oci.layer.write_layer`).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from fleet_tui.errors import FleetError
from fleet_tui.oci.image import Image
from fleet_tui.oci.layer import Entry, LayerResult, whiteout, write_layer
from fleet_tui.rebase.blobstream import map_layer, norm_path
from fleet_tui.rebase.diff import Change
from fleet_tui.rebase.tarscan import Member
from fleet_tui.rebase.tree import Progress

SPOOL_IN_MEMORY = 4 << 20


class _LazyFile(io.RawIOBase):
    """Opens its spool on first read and closes it at the end: thousands of entries, few fds."""

    def __init__(self, spool: "Spool", size: int) -> None:
        self.spool = spool
        self.left = size
        self.fh: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if self.fh is None:
            self.fh = self.spool.open()
        data = self.fh.read(n)
        self.left -= len(data)
        if not data or n < 0 or self.left <= 0:
            self.fh.close()
        return data


@dataclass
class Spool:
    data: bytes | None = None
    path: str | None = None

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")  # type: ignore[arg-type]


def extract(image: Image, wanted: dict[int, set[str]], workdir: str,
            progress: Progress | None = None) -> dict[tuple[int, str], Spool]:
    """Spool the content of `wanted[layer_index]` paths from those layers of `image`."""
    spools: dict[tuple[int, str], Spool] = {}
    for index in sorted(wanted):
        if progress:
            progress("extracting files from NEW layer", index + 1, len(image.layers))
        paths = wanted[index]

        def keep(member: Member, data: Iterable[bytes | memoryview]) -> tuple[str, Spool] | None:
            path = norm_path(member.name)
            return (path, _spool(data, member.size, workdir)) if member.isreg() and path in paths else None
        for path, spool in map_layer(image, image.layers[index], keep):
            spools[(index, path)] = spool
    return spools


def _spool(pieces: Iterable[bytes | memoryview], size: int, workdir: str) -> Spool:
    if size <= SPOOL_IN_MEMORY:
        return Spool(data=b"".join(pieces))
    fd, tmp = tempfile.mkstemp(dir=workdir, prefix="spool-")
    with os.fdopen(fd, "wb") as out:
        for piece in pieces:
            out.write(piece)
    return Spool(path=tmp)


def entries_for(writes: list[Change], whiteouts: list[Change], spools: dict[tuple[int, str], Spool]) -> list[Entry]:
    entries = [whiteout(c.path) for c in whiteouts]
    for c in writes:
        node = c.new
        assert node is not None
        entry = Entry(c.path, kind=node.kind, mode=node.mode, uid=node.uid, gid=node.gid, linkname=node.linkname)
        if node.kind == "file":
            spool = spools.get((node.layer, node.link_of or c.path))
            if spool is None:
                raise FleetError(f"could not read /{c.path} from NEW's layer {node.layer + 1}; the image may be corrupted")
            entry.source, entry.size = _LazyFile(spool, node.size), node.size  # type: ignore[assignment]
        elif node.kind in ("char", "block", "fifo"):
            raise FleetError(f"/{c.path} is a device or fifo; rebase does not ship those — rebuild the image instead")
        entries.append(entry)
    return entries


def wanted_from(writes: list[Change]) -> dict[int, set[str]]:
    wanted: dict[int, set[str]] = {}
    for c in writes:
        if c.new is not None and c.new.kind == "file":
            wanted.setdefault(c.new.layer, set()).add(c.new.link_of or c.path)
    return wanted


def build_delta(image: Image, writes: list[Change], whiteouts: list[Change], workdir: str,
                progress: Progress | None = None) -> tuple[LayerResult, str]:
    """Write the layer to a file in `workdir`; returns its result and the file path."""
    spools = extract(image, wanted_from(writes), workdir, progress)
    entries = entries_for(writes, whiteouts, spools)
    path = os.path.join(workdir, "layer.tar.gz")
    with open(path, "wb") as out:
        result = write_layer(entries, out=out)
    return result, path
