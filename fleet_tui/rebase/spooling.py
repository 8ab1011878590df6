"""Keep the bytes of NEW's files a rebase may ship while NEW's layers are read for the diff.

The diff has to stream NEW's layers whole anyway (blob digest, end of stream, diff_id); the
files the new layer ships are known only after it, so without this the rebase streamed NEW's
layers a second time to extract them. A `Keeper` handed to the diff spools, during that
one read, every regular file the rebase could ship:

- *paths* mode: every file NEW's streamed layers hold under the paths (what is outside them
  is never shipped);
- *auto* mode: every file, unless OLD holds the identical file (content, mode, owner, xattrs)
  at the same path in one of its layers above the shared prefix up to its largest one
  (`learn_old`, given OLD's entries before NEW is streamed). Layers above OLD's largest are
  the ones a seam candidate may drop (seam.py), whose live files it would re-ship: those are
  kept too. Without `learn_old` (OLD not read first) every file is kept.

Spools are content-addressed by (NEW's layer index, sha256 of the bytes), in memory up to
`SPOOL_IN_MEMORY`, else in a temp file of the rebase's workdir (removed with it; zero pieces
are left as holes, so a sparse file costs no disk). A big spool's data map
(`Spool.data_regions`, `fleet_tui.oci.sparse`) is computed once: the seam's costing
(`Keeper.stored_size`) and the delta writer both use it, so a mostly-hole file is costed and
written at its data, not its apparent size.

Invariants: a spool is recorded only once the layer it came from was read to its end with
every check held (`commit`, called after `map_layer` returned); a file the keeper did not
keep is extracted from its layer by `complete` (the one further read, and only of the layers
holding such files), so what is shipped never depends on what was guessed here; a layer
taken from the layer index keeps nothing (the index holds no bytes).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable

from fleet_tui.oci.sparse import SPARSE_MIN, Region, data_map, holes_worth_it
from fleet_tui.rebase.mergedfs import Inode, clean
from fleet_tui.rebase.tarscan import Member
from fleet_tui.rebase.tree import is_under

if TYPE_CHECKING:
    from fleet_tui.rebase.blobstream import Data

SPOOL_IN_MEMORY = 4 << 20
_ZEROS = bytes(1 << 20)


@dataclass
class Spool:
    data: bytes | None = None
    path: str | None = None
    _regions: list[Region] | None = field(default=None, repr=False, compare=False)

    def data_regions(self, size: int) -> list[Region] | None:
        """The file's data map when it is worth writing sparse (`fleet_tui.oci.sparse`), else None;
        computed once per spool (one read of it)."""
        if size < SPARSE_MIN:
            return None
        if self._regions is None:
            self._regions = data_map(self.open, size)
        return self._regions if holes_worth_it(self._regions, size) else None

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")  # type: ignore[arg-type]

    def discard(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class LazyFile(io.RawIOBase):
    """Opens its spool on first read and closes it at the end: thousands of entries, few fds."""

    def __init__(self, spool: Spool, size: int) -> None:
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


def spool_bytes(pieces: Iterable[bytes | memoryview], size: int, workdir: str) -> tuple[str, Spool]:
    """(hex sha256, spool) of a file's bytes."""
    h = hashlib.sha256()
    if size <= SPOOL_IN_MEMORY:
        data = b"".join(pieces)
        h.update(data)
        return h.hexdigest(), Spool(data=data)
    fd, tmp = tempfile.mkstemp(dir=workdir, prefix="spool-")
    with os.fdopen(fd, "wb") as out:
        for piece in pieces:
            h.update(piece)
            if len(piece) >= 4096 and piece == _ZEROS[:len(piece)]:
                out.seek(len(piece), os.SEEK_CUR)  # a hole in the temp file: sparse files cost no disk
            else:
                out.write(piece)
        out.truncate(out.tell())
    return h.hexdigest(), Spool(path=tmp)


def _identity(m: Member) -> tuple:
    return (m.sha256, m.mode & 0o7777, m.uid, m.gid, tuple(sorted(m.xattrs.items())))


Kept = tuple[Member, "Spool | None"]


class Keeper:
    """What NEW's read keeps (module docstring); `paths` None is auto mode."""

    def __init__(self, workdir: str, paths: list[str] | None) -> None:
        self.workdir, self.paths = workdir, paths
        self.spools: dict[tuple[int, str], Spool] = {}
        self._old: dict[str, tuple] | None = None
        self._lock = threading.Lock()

    @property
    def wants_old_first(self) -> bool:
        """Auto mode: knowing OLD's files first saves spooling every file NEW holds."""
        return self.paths is None and self._old is None

    def learn_old(self, upper: list[list[Member]], sizes: list[int]) -> None:
        """OLD's entries above the shared prefix (and its layers' blob sizes), bottom first."""
        top = max(range(len(sizes)), key=lambda i: (sizes[i], -i)) if sizes else -1
        files: dict[str, tuple] = {}
        for members in upper[:top + 1]:
            for m in members:
                path = clean(m.name)
                if m.isreg():
                    files[path] = _identity(m)
                else:
                    files.pop(path, None)
        self._old = files

    def visitor(self) -> Callable[[Member, "Data"], Kept]:
        def visit(member: Member, data: "Data") -> Kept:
            if not member.isreg():
                return member, None
            path = clean(member.name)
            if self.paths is not None and not any(is_under(path, p) for p in self.paths):
                h = hashlib.sha256()
                for piece in data:
                    h.update(piece)
                member.sha256 = h.hexdigest()
                return member, None
            member.sha256, spool = spool_bytes(data, member.size, self.workdir)
            if self._old is not None and self._old.get(path) == _identity(member):
                spool.discard()
                return member, None
            return member, spool
        return visit

    def stored_size(self, node: Inode) -> int:
        """Bytes NEW's file takes in the new layer: its data when written sparse, else its size
        (a file not kept is costed at its size)."""
        spool = self.spools.get((node.source[0], node.sha256)) if node.size >= SPARSE_MIN else None
        regions = spool.data_regions(node.size) if spool is not None else None
        return node.size if regions is None else sum(n for _, n in regions)

    def commit(self, index: int, kept: list[Kept]) -> list[Member]:
        """Record the spools of NEW's layer `index`, read whole and checked; its entries."""
        with self._lock:
            for member, spool in kept:
                if spool is not None:
                    self.spools.setdefault((index, member.sha256), spool)
        return [member for member, _ in kept]
