"""Per-layer file index cache: what a layer holds, so that its blob need not be read again.

A model release rebases NEW onto OLD, and OLD was NEW at the previous release: its layers
were read (rebase, verify and the UI preview all index what they read) and need not be
streamed, gunzipped and hashed again. One file per layer in `<state dir>/layer-index/`,
named by the layer's diff_id and blob digest: gzip'd JSON holding a header (format, blob
digest, diff_id, entry count) and the layer's tar entries in order — path, type, mode,
uid, gid, size, link target, device numbers, content sha256, xattrs (whiteouts, opaque markers
and PAX global headers
are entries like any other, so replaying them gives exactly what streaming gives).

Invariants:
- an index is only written after the blob it came from was read to its end and its
  digest verified (the caller saves only after `scan_layer` finished without error);
- an index is used only for a layer with the same blob digest *and* diff_id;
- a missing, truncated or corrupted file (gzip CRC, JSON, header, count) is ignored and
  rebuilt on the next read of the blob; a failure to write one never fails the caller;
- files are written atomically (temp file + rename), so readers never see half a file;
- an index never stands in for content that must be *extracted*: it has no file bytes,
  paths/auto modes stream the blob for the files they ship — and that read checks the blob
  digest, the end of stream and the diff_id again, whatever the index says;
- it is a memory of what was verified, keyed by content (blob digest + diff_id), so it
  never goes stale: the entries of a layer loaded or saved once are kept in memory by this
  `LayerIndex` object (one per rebase, verify or diff), so a second look in the same run
  (seam candidates, verify's pass over every layer) parses nothing — as long as the file
  it came from (or was written to) is unchanged on disk (inode, size, mtime), so a file
  replaced or damaged meanwhile is read and judged again; layers a rebase *writes*
  are indexed too (`index_written`: the written file read back through the same checks),
  so next month's rebase onto this month's result reads none of OLD's blobs.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
import zlib
from pathlib import Path

from fleet_tui.config import Config
from fleet_tui.oci.image import Layer
from fleet_tui.rebase.tarscan import Member

FORMAT = 2  # 2: xattrs per entry, PAX global headers as entries
KEEP = 512  # index files kept; the least recently used go first


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class LayerIndex:
    """The index directory, with hit/miss/write counters for tests and benchmarks."""

    def __init__(self, root: Path, keep: int = KEEP) -> None:
        self.root = Path(root)
        self.keep = keep
        self.hits = self.misses = self.writes = 0
        self._lock = threading.Lock()
        # file name → (the file's stat signature, entries), for this object's lifetime
        self._memo: dict[str, tuple[tuple[int, int, int] | None, list[Member]]] = {}

    @classmethod
    def for_config(cls, config: Config) -> "LayerIndex":
        return cls(config.state_path() / "layer-index")

    def path_for(self, layer: Layer) -> Path:
        return self.root / f"{_hex(layer.diff_id)}-{_hex(layer.digest)}.json.gz"

    def known(self, layer: Layer) -> bool:
        """True when the layer is in memory or has an index file (not checked: whether it is intact)."""
        return bool(layer.diff_id) and (self._remembered(self.path_for(layer)) is not None or self.path_for(layer).exists())

    def _remembered(self, path: Path) -> list[Member] | None:
        memo = self._memo.get(path.name)
        return memo[1] if memo is not None and memo[0] == _signature(path) else None

    def has_all(self, layers: list[Layer]) -> bool:
        return all(self.known(layer) for layer in layers)

    def load(self, layer: Layer) -> list[Member] | None:
        """The layer's entries, or None when there is no usable index."""
        if not layer.diff_id:
            return None
        path = self.path_for(layer)
        if (members := self._remembered(path)) is not None:
            self._count("hits")
            return members
        try:
            signature = _signature(path)
            doc = json.loads(gzip.decompress(path.read_bytes()))
            head, rows = doc["head"], doc["entries"]
            if (head["format"], head["digest"], head["diff_id"], head["count"]) != (FORMAT, layer.digest, layer.diff_id, len(rows)):
                raise ValueError("index of another layer")
            members = []
            for r in rows:
                member = Member(r[0], r[1].encode("latin-1"), *r[2:10])
                member.xattrs = dict(r[10])
                members.append(member)
            os.utime(path)  # recently used: pruned last
            after = _signature(path)  # the touch changed the mtime; the same file if inode and size held
            signature = after if signature and after and after[:2] == signature[:2] else None
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, KeyError, TypeError, IndexError, AttributeError):
            self._count("misses")
            return None
        self._memo[path.name] = (signature, members)
        self._count("hits")
        return members

    def save(self, layer: Layer, members: list[Member]) -> None:
        """Write the index of a layer whose blob was fully read and verified."""
        if not layer.diff_id:
            return
        self._memo[self.path_for(layer).name] = (None, members)  # in memory even if the file cannot be written
        rows = [[m.name, m.type.decode("latin-1"), m.mode, m.uid, m.gid, m.size, m.linkname,
                 m.devmajor, m.devminor, m.sha256, m.xattrs] for m in members]
        head = {"format": FORMAT, "digest": layer.digest, "diff_id": layer.diff_id, "count": len(rows)}
        data = gzip.compress(json.dumps({"head": head, "entries": rows}, separators=(",", ":")).encode(), 1, mtime=0)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path_for(layer))
            tmp = None
            self._memo[self.path_for(layer).name] = (_signature(self.path_for(layer)), members)
            self._count("writes")
            self._prune()
        except OSError:
            pass  # a cache that cannot be written is only a slower next run
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _prune(self) -> None:
        files = sorted(self.root.glob("*.json.gz"), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
