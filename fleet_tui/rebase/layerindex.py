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
  paths/auto modes stream the blob for the files they ship.
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


class LayerIndex:
    """The index directory, with hit/miss/write counters for tests and benchmarks."""

    def __init__(self, root: Path, keep: int = KEEP) -> None:
        self.root = Path(root)
        self.keep = keep
        self.hits = self.misses = self.writes = 0
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, config: Config) -> "LayerIndex":
        return cls(config.state_path() / "layer-index")

    def path_for(self, layer: Layer) -> Path:
        return self.root / f"{_hex(layer.diff_id)}-{_hex(layer.digest)}.json.gz"

    def has_all(self, layers: list[Layer]) -> bool:
        """True when every layer has an index file (not checked: whether it is intact)."""
        return all(layer.diff_id and self.path_for(layer).exists() for layer in layers)

    def load(self, layer: Layer) -> list[Member] | None:
        """The layer's entries, or None when there is no usable index."""
        if not layer.diff_id:
            return None
        path = self.path_for(layer)
        try:
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
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, KeyError, TypeError, IndexError, AttributeError):
            self._count("misses")
            return None
        self._count("hits")
        return members

    def save(self, layer: Layer, members: list[Member]) -> None:
        """Write the index of a layer whose blob was fully read and verified."""
        if not layer.diff_id:
            return
        rows = [[m.name, m.type.decode("latin-1"), m.mode, m.uid, m.gid, m.size, m.linkname,
                 m.devmajor, m.devminor, m.sha256, m.xattrs] for m in members]
        head = {"format": FORMAT, "digest": layer.digest, "diff_id": layer.diff_id, "count": len(rows)}
        data = gzip.compress(json.dumps({"head": head, "entries": rows}, separators=(",", ":")).encode(), 6, mtime=0)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path_for(layer))
            tmp = None
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
