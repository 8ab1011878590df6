"""Write a mostly-zero file into a layer as a PAX 1.0 sparse entry: its data, not its holes.

A file whose zero runs are worth it (`holes_worth_it`) is written the way GNU tar writes
`--sparse --format=posix` (sparse format 1.0, GNU tar manual, "Storing Sparse Files" and
appendix "Sparse Formats", https://www.gnu.org/software/tar/manual/html_node/Sparse-Formats.html):

- a PAX `x` header with `GNU.sparse.major=1`, `GNU.sparse.minor=0`, `GNU.sparse.name` (the
  real path) and `GNU.sparse.realsize` (the file's apparent size); the ustar name is
  `<dir>/GNUSparseFile.0/<base>` (GNU tar's `%d/GNUSparseFile.%p/%f` with a fixed `%p`, so
  the same content gives the same bytes);
- the entry's data starts with the map in decimal ASCII, each number ending in a newline —
  the number of regions, then offset and length of each — padded with NULs to 512 bytes,
  followed by the data regions back to back; the entry's size is map block + data bytes.

Readers: Go's archive/tar (`reader.go` readGNUSparsePAXHeaders / readGNUSparseMap1x0:
name and size from the two records, the map from the data block; `sparseFileReader` fills
holes with zeros and, writing to a file, seeks over them — moby's `createTarFile` copies
into an `*os.File`, so devices keep the holes) and Python's `tarfile` (`_proc_gnusparse_10`).

Invariants: the map depends only on the bytes (4 KiB blocks, holes of at least `HOLE_MIN`
bytes), so the same file always gives the same entry; regions are sorted, disjoint, inside
the file, and the last one ends at the file's size (a zero-length region marks a trailing
hole, as GNU tar writes it) — Go's validateSparseEntries accepts exactly such maps; the
bytes a reader rebuilds are the file's bytes (a hole that is not zeros when written fails).
"""

from __future__ import annotations

import io
from typing import BinaryIO, Callable

BLOCK = 4096  # hole granularity: a filesystem block
HOLE_MIN = 64 << 10  # shorter zero runs stay data (a short map)
SPARSE_MIN = 1 << 20  # write sparse only when the holes save at least this much
TAR_BLOCK = 512
CHUNK = 1 << 20
_ZEROS = bytes(CHUNK)

Region = tuple[int, int]  # (offset, length)


def data_map(open_source: Callable[[], BinaryIO], size: int) -> list[Region]:
    """The file's data regions (module docstring), read once from `open_source()`."""
    holes: list[Region] = []  # (start, end) of the zero runs long enough to be holes
    run, pos = None, 0  # start of the current zero run
    with open_source() as fh:
        while pos < size:
            chunk = fh.read(min(CHUNK, size - pos))
            if not chunk:
                raise ValueError("the file is shorter than its size")
            if chunk == _ZEROS[:len(chunk)]:
                run = pos if run is None else run
            else:
                view = memoryview(chunk)
                for off in range(0, len(chunk), BLOCK):
                    block = view[off:off + BLOCK]
                    if block != _ZEROS[:len(block)]:
                        if run is not None and pos + off - run >= HOLE_MIN:
                            holes.append((run, pos + off))
                        run = None
                    elif run is None:
                        run = pos + off
            pos += len(chunk)
    if run is not None and size - run >= HOLE_MIN:
        holes.append((run, size))
    regions, prev = [], 0
    for start, end in holes:
        if start > prev:
            regions.append((prev, start - prev))
        prev = end
    regions.append((prev, size - prev) if prev < size else (size, 0))  # (size, 0): a trailing hole
    return regions


def holes_worth_it(regions: list[Region], size: int) -> bool:
    return size - sum(n for _, n in regions) >= SPARSE_MIN


def map_block(regions: list[Region]) -> bytes:
    text = f"{len(regions)}\n" + "".join(f"{o}\n{n}\n" for o, n in regions)
    raw = text.encode("ascii")
    return raw + bytes(-len(raw) % TAR_BLOCK)


def stored_size(regions: list[Region]) -> int:
    """The entry's size in the tar: map block + data regions."""
    return len(map_block(regions)) + sum(n for _, n in regions)


def pax_records(path: str, size: int) -> dict[str, str]:
    return {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": path,
            "GNU.sparse.realsize": str(size)}


def stored_name(path: str) -> str:
    parent, _, base = path.rpartition("/")
    return f"{parent}/GNUSparseFile.0/{base}" if parent else f"GNUSparseFile.0/{base}"


class SparseReader(io.RawIOBase):
    """What the entry's data is: the map block, then the data regions of `source` (read in order)."""

    def __init__(self, source: BinaryIO, regions: list[Region]) -> None:
        self.source, self.pos = source, 0  # position in the file
        self.pending = map_block(regions)
        self.regions = list(regions)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        """Up to `n` bytes, short only at the end (tarfile's copy takes a short read for EOF)."""
        n = CHUNK if n is None or n < 0 else n
        out = bytearray()
        while len(out) < n:
            if not self.pending and not self._next():
                break
            take = n - len(out)
            out += self.pending[:take]
            self.pending = self.pending[take:]
        return bytes(out)

    def _next(self) -> bool:
        """Load the next data piece into `pending`; False at the end of the regions."""
        while self.regions:
            offset, length = self.regions[0]
            if self.pos < offset:  # skip a hole: it must be zeros
                skip = self.source.read(min(CHUNK, offset - self.pos))
                if not skip or skip != _ZEROS[:len(skip)]:
                    raise ValueError("a sparse file's hole changed while it was written")
                self.pos += len(skip)
                continue
            if self.pos >= offset + length:
                self.regions.pop(0)
                continue
            piece = self.source.read(min(CHUNK, offset + length - self.pos))
            if not piece:
                raise ValueError("the file is shorter than its sparse map")
            self.pos += len(piece)
            self.pending = piece
            return True
        return False
