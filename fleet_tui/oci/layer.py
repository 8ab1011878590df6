"""Write layer tarballs deterministically, hashing both forms as they stream.

Invariants: entries are written in sorted path order (or in the caller's order, `ordered`)
with normalised mtimes, uid/gid as given, empty user/group names, PAX format (xattrs as
`SCHILY.xattr.*`); gzip header mtime 0 and no file name (or zstd); fixed compression level. So the same entries always give the same `diff_id` (sha256 of the tar)
and the same `digest` (sha256 of the gzip) — devices cache by digest.
Memory stays bounded: file contents stream from file objects. A file entry given a data
map (`Entry.sparse`, from `sparse.data_map`) is written as a PAX 1.0 sparse file: its data
regions only (`sparse.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable

from fleet_tui.oci import sparse as sp

NORMAL_MTIME = 0  # 1970-01-01: what "normalised" means here (as in SOURCE_DATE_EPOCH=0)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class _HashingSink(io.RawIOBase):
    """A write-only file that hashes and counts what passes, and forwards it."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.h = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.count

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.h.update(b)
        self.count += len(b)
        if self.out is not None:
            self.out.write(b)
        return len(b)


@dataclass(frozen=True)
class LayerResult:
    digest: str  # sha256 of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # compressed bytes
    data: bytes | None = None  # the blob, when written to memory
    compression: str = "gzip"  # or "zstd"


@dataclass
class Entry:
    """One tar entry to write. `data`/`source` for files; `linkname` for links."""

    path: str  # without leading "/"; "" is the root directory
    kind: str = "file"  # file, dir, symlink, hardlink, char, block, fifo
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: BinaryIO | None = None
    size: int = 0
    linkname: str = ""
    xattrs: dict[str, str] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)  # char/block device numbers
    sparse: list[tuple[int, int]] | None = None  # files: data regions; written as PAX 1.0 sparse

    def tarinfo(self, mtime: int) -> tarfile.TarInfo:
        path = self.path.strip("/")
        ti = tarfile.TarInfo((path or ".") + ("/" if self.kind == "dir" else ""))
        ti.mode, ti.uid, ti.gid, ti.mtime = self.mode, self.uid, self.gid, mtime
        ti.uname = ti.gname = ""
        ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                   "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
                   "fifo": tarfile.FIFOTYPE}[self.kind]
        ti.linkname = self.linkname
        ti.devmajor, ti.devminor = self.dev
        ti.size = (len(self.data) if self.data is not None else self.size) if self.kind == "file" else 0
        if self.xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in sorted(self.xattrs.items())}
        if self.kind == "file" and self.sparse is not None:
            ti.pax_headers = {**ti.pax_headers, **sp.pax_records(path, ti.size)}
            ti.name, ti.size = sp.stored_name(path), sp.stored_size(self.sparse)
        return ti


def whiteout(path: str) -> Entry:
    parent, _, name = path.strip("/").rpartition("/")
    return Entry(f"{parent}/{WHITEOUT}{name}" if parent else f"{WHITEOUT}{name}", mode=0o644)


def opaque(directory: str) -> Entry:
    return Entry(f"{directory.strip('/')}/{OPAQUE}", mode=0o644)


def _compressor(sink: BinaryIO, compression: str, level: int) -> BinaryIO:
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(sink, closefd=False)  # type: ignore[return-value]
    return gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=level)  # type: ignore[return-value]


def write_layer(entries: Iterable[Entry], out: BinaryIO | None = None, mtime: int = NORMAL_MTIME,
                compresslevel: int = 6, ordered: bool = False, compression: str = "gzip") -> LayerResult:
    """Write a compressed tar of `entries` to `out`, or to memory if None: sorted by path, or
    in the given order when `ordered` (the caller decides, e.g. hard links after targets).
    `compression`: "gzip" (what every engine pulls) or "zstd" (moby >= 23)."""
    buffer = io.BytesIO() if out is None else None
    gz_sink = _HashingSink(out if out is not None else buffer)
    gz = _compressor(gz_sink, compression, compresslevel)  # type: ignore[arg-type]
    tar_sink = _HashingSink(gz)  # type: ignore[arg-type]
    with tarfile.open(fileobj=tar_sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
        for entry in (entries if ordered else sorted(entries, key=lambda e: e.path.strip("/"))):
            ti = entry.tarinfo(mtime)
            if entry.kind == "file":
                src = io.BytesIO(entry.data) if entry.data is not None else entry.source
                tar.addfile(ti, sp.SparseReader(src, entry.sparse) if entry.sparse is not None else src)
            else:
                tar.addfile(ti)
    gz.close()
    return LayerResult(
        "sha256:" + gz_sink.h.hexdigest(), "sha256:" + tar_sink.h.hexdigest(), gz_sink.count,
        buffer.getvalue() if buffer is not None else None, compression,
    )


def files_layer(files: dict[str, bytes | str], mode: int = 0o644) -> LayerResult:
    """Convenience: a layer of regular files (parents created as 0755 dirs)."""
    entries: dict[str, Entry] = {}
    for path, content in files.items():
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            entries.setdefault(d, Entry(d, kind="dir", mode=0o755))
        data = content.encode() if isinstance(content, str) else content
        entries[path] = Entry(path, data=data, mode=mode)
    return write_layer(entries.values())
