"""Merged filesystems of image layers, with overlay semantics, hashed as they stream.

`LayerStack` is the state of a *range* of layers applied on top of an unknown lower part:
the entries the range provides (`nodes`), the lower paths it deletes (`deleted`, from
`.wh.NAME` whiteouts) and the directories whose lower contents it hides (`hidden`, from
whiteouts of directories, `.wh..wh..opq` opaque markers, or a non-directory replacing a
directory). A stack of all layers of an image on an empty lower part is its merged
filesystem. Keeping the lower part open lets two images that share their bottom layers
be compared without reading those layers at all (see `diff.py`).

Invariants: file contents are hashed while streaming and never held in memory (one chunk
at a time); only per-path metadata is kept, so memory grows with the number of paths,
never with layer size. A whiteout or opaque marker only affects layers *below* its own
layer. Hard links become a copy of their target's metadata (same content hash).
Each layer's entries come from the layer index cache when it has that exact layer (see
`layerindex.py`), else from streaming the blob (`blobstream.map_layer`), which then indexes it: both
give the same entries, so the merged filesystem does not depend on the cache.
"""

from __future__ import annotations

import bisect
import hashlib
import tarfile
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from fleet_tui.oci.image import Image
from fleet_tui.oci.layer import OPAQUE, WHITEOUT
from fleet_tui.rebase.blobstream import map_layer, norm_path
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.tarscan import Member

Progress = Callable[[str, int, int], None]  # (what, n, of)

_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
          tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
          tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


@dataclass(frozen=True)
class Node:
    """One path of a merged filesystem. `layer` and `mtime` are provenance, not identity."""

    kind: str  # file, dir, symlink, hardlink (target below the range), char, block, fifo
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""  # hex digest of the content, files only
    linkname: str = ""  # symlink/hardlink target, or "major,minor" for devices
    layer: int = -1  # index of the image layer that provided this entry
    link_of: str = ""  # for a hard link resolved in its own layer: the path it links to

    def identity(self) -> tuple:
        return (self.kind, self.mode, self.uid, self.gid, self.sha256, self.linkname)

    def differences(self, other: "Node") -> list[str]:
        """What differs, in words: content, mode, owner, link, type."""
        if self.kind != other.kind:
            return ["type"]
        out = []
        if self.sha256 != other.sha256:
            out.append("content")
        if self.mode != other.mode:
            out.append("mode")
        if (self.uid, self.gid) != (other.uid, other.gid):
            out.append("owner")
        if self.linkname != other.linkname:
            out.append("link")
        return out


def ancestors(path: str) -> Iterable[str]:
    """`a/b/c` → `a/b`, `a`."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def is_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


class LayerStack:
    """A range of layers applied on top of an unknown lower part (see module docstring)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.deleted: set[str] = set()  # lower paths removed by a whiteout
        self.hidden: set[str] = set()  # dirs whose lower descendants are invisible
        self._this_layer: set[str] = set()
        self._parents: set[str] = set()  # paths that may have descendants in `nodes`
        self._sorted: list[str] | None = None

    # --- queries -----------------------------------------------------------------------
    def _blocks_below(self, path: str) -> bool:
        node = self.nodes.get(path)
        return path in self.hidden or path in self.deleted or (node is not None and node.kind != "dir")

    def hides(self, path: str) -> bool:
        """True when the lower part's entry at `path` is invisible through this range."""
        return path in self.deleted or any(self._blocks_below(a) for a in ancestors(path))

    def hides_subtree(self, top: str) -> bool:
        """True when every lower entry strictly below `top` is invisible."""
        return self._blocks_below(top) or any(self._blocks_below(a) for a in ancestors(top))

    def covers(self, path: str) -> bool:
        """True when this range alone decides what is at `path`."""
        return path in self.nodes or self.hides(path)

    def lookup(self, path: str, lower: Callable[[str], Optional[Node]]) -> Optional[Node]:
        node = self.nodes.get(path)
        if node is not None:
            return node
        return None if self.hides(path) else lower(path)

    def get(self, path: str) -> Optional[Node]:
        """Lookup for a stack that sits on an empty lower part (a whole image)."""
        return self.nodes.get(path)

    def under(self, top: str) -> list[str]:
        """Paths in `nodes` strictly below `top` (sorted index, built once when queried)."""
        if self._sorted is None:
            self._sorted = sorted(self.nodes)
        prefix = top + "/"
        i = bisect.bisect_left(self._sorted, prefix)
        out = []
        while i < len(self._sorted) and self._sorted[i].startswith(prefix):
            out.append(self._sorted[i])
            i += 1
        return out

    # --- building ----------------------------------------------------------------------
    def begin_layer(self) -> None:
        self._this_layer = set()

    def _drop_subtree(self, top: str) -> None:
        if top not in self._parents:
            return
        prefix = top + "/"
        for p in [p for p in self.nodes if p.startswith(prefix) and p not in self._this_layer]:
            del self.nodes[p]

    def whiteout(self, path: str) -> None:
        self._drop_subtree(path)
        if path not in self._this_layer:
            self.nodes.pop(path, None)
        self.deleted.add(path)
        self.hidden.add(path)
        self._sorted = None

    def opaque(self, directory: str) -> None:
        self._drop_subtree(directory)
        self.hidden.add(directory)
        self._sorted = None

    def put(self, path: str, node: Node) -> None:
        previous = self.nodes.get(path)
        if node.kind != "dir" and previous is not None and previous.kind == "dir":
            self._drop_subtree(path)  # a non-directory replaces the directory, subtree included
        self.nodes[path] = node
        self.deleted.discard(path)
        self._this_layer.add(path)
        self._parents.update(ancestors(path))
        self._sorted = None


def node_of(member: Member, layer: int, stack: LayerStack | None = None) -> Node:
    kind = _KINDS.get(member.type, "file")
    linkname, link_of = member.linkname, ""
    size = member.size if kind == "file" else 0
    if kind == "hardlink":
        target = (stack.nodes.get(norm_path(member.linkname)) if stack else None)
        if target is not None and target.kind == "file":
            return Node("file", member.mode & 0o7777, member.uid, member.gid, target.size, target.sha256, "",
                        target.layer, target.link_of or norm_path(member.linkname))
        linkname = norm_path(member.linkname)
    elif kind in ("char", "block"):
        linkname = f"{member.devmajor},{member.devminor}"
    elif kind not in ("symlink",):
        linkname = ""
    return Node(kind, member.mode & 0o7777, member.uid, member.gid, size, member.sha256, linkname, layer, link_of)


def _hash(views: Iterable[memoryview | bytes]) -> str:
    h = hashlib.sha256()
    for view in views:
        h.update(view)
    return h.hexdigest()


def _hashed(member: Member, data: Iterable[memoryview | bytes]) -> Member:
    if member.isreg():
        member.sha256 = _hash(data)
    return member


def read_layer(image: Image, index: int, ahead: bool = False) -> list[Member]:
    """Every entry of one layer, regular files hashed; the blob's digest verified at the end."""
    return map_layer(image, image.layers[index], _hashed, ahead)


def layer_members(image: Image, index: int, cache: LayerIndex | None = None, ahead: bool = False) -> list[Member]:
    """The layer's entries from the index cache if it has them, else from the blob (then indexed)."""
    layer = image.layers[index]
    members = cache.load(layer) if cache is not None else None
    if members is None:
        members = read_layer(image, index, ahead)  # returns only once the blob was read whole and verified
        if cache is not None:
            cache.save(layer, members)
    return members


def whiteout_target(path: str) -> tuple[str, str] | None:
    """(`opaque`|`whiteout`, affected path) for a whiteout entry, else None."""
    parent, _, name = path.rpartition("/")
    if name == OPAQUE:
        return "opaque", parent
    if name.startswith(WHITEOUT + WHITEOUT):
        return "meta", ""  # aufs bookkeeping (.wh..wh.plnk etc.): not part of the filesystem
    if name.startswith(WHITEOUT):
        real = name[len(WHITEOUT):]
        return "whiteout", f"{parent}/{real}" if parent else real
    return None


def walk_layers(image: Image, start: int = 0, end: int | None = None,
                progress: Progress | None = None, label: str = "", cache: LayerIndex | None = None,
                ahead: bool = False) -> LayerStack:
    """The stack of `image.layers[start:end]`: each layer from its index, else streamed and hashed once
    (`ahead`: with a read-ahead thread, for when nothing else is being read)."""
    stack = LayerStack()
    end = len(image.layers) if end is None else end
    for index in range(start, end):
        if progress:
            progress(f"reading {label or image.ref} layer", index + 1, len(image.layers))
        stack.begin_layer()
        for member in layer_members(image, index, cache, ahead):
            path = norm_path(member.name)
            if not path:
                continue  # the root directory itself
            special = whiteout_target(path)
            if special is not None:
                what, target = special
                if what == "opaque":
                    stack.opaque(target)
                elif what == "whiteout":
                    stack.whiteout(target)
                continue
            stack.put(path, node_of(member, index, stack))
    return stack


def merged(image: Image, progress: Progress | None = None, cache: LayerIndex | None = None) -> dict[str, Node]:
    """The whole merged filesystem of an image (all layers on an empty lower part)."""
    return dict(walk_layers(image, progress=progress, cache=cache).nodes)
