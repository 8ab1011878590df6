"""Differences between the merged filesystems of two images, reading as little as possible.

Two images that start with the same layers (same `diff_id`s) share that part of their
filesystem. The layers above the shared prefix are read first and applied over an *open*
lower part (`MergedFS(open_lower=True)`); when neither side's result depends on what the
lower part holds (no whiteout, implied parent, symlinked parent or outside hard-link target
touches it) and both sides name the same paths, the shared layers are never read. Otherwise
the shared prefix is read once (from the layer index when it has it) and both images are
compared whole. So comparing a model update over a 1 GB base costs the same as over 1 MB.
Both images' upper layers are read in one `readplan.read_layers` call (every blob once,
streams in parallel over the cores); a rebase's `spooling.Keeper` keeps NEW's file bytes
during that read, and in auto mode gets OLD's entries before NEW is streamed.

A difference is type, content, mode, owner, link target, device numbers, xattrs, or the set
of paths sharing the inode (hard links); timestamps never count. Paths are as the engine
resolves them (cleaned, parent symlinks followed).
Invariant: `changes` is sorted by path and names every path whose state differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from fleet_tui.oci.image import Image
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.mergedfs import Inode, MergedFS, NeedLower
from fleet_tui.rebase.readplan import Want, read_layers
from fleet_tui.rebase.tarscan import Member
from fleet_tui.rebase.tree import Progress, ancestors, build, read_range

if TYPE_CHECKING:
    from fleet_tui.rebase.spooling import Keeper

NO_LINKS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Change:
    path: str  # without leading "/"
    old: Optional[Inode]
    new: Optional[Inode]
    old_links: frozenset[str] = NO_LINKS  # every path naming the same inode (hard links), if several
    new_links: frozenset[str] = NO_LINKS

    @property
    def fields(self) -> list[str]:
        if self.old is None or self.new is None:
            return []
        out = self.old.differences(self.new)
        if self.old_links != self.new_links:
            out.append("hardlinks")
        return out

    @property
    def what(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "deleted"
        return "+".join(self.fields) or "modified"

    def to_json(self) -> dict[str, Any]:
        node = self.new or self.old
        out: dict[str, Any] = {"path": "/" + self.path, "change": self.what, "kind": node.kind}  # type: ignore[union-attr]
        if self.old is not None and self.new is not None:
            out["details"] = {name: [_shown(self.old, self.old_links, name), _shown(self.new, self.new_links, name)]
                              for name in self.fields}
        return out


def _shown(node: Inode, links: frozenset[str], name: str) -> Any:
    return {"type": node.kind, "content": node.sha256, "mode": oct(node.mode), "owner": f"{node.uid}:{node.gid}",
            "link": node.target, "device": list(node.dev), "xattrs": sorted(k for k, _ in node.xattrs),
            "hardlinks": sorted("/" + p for p in links)}[name]


@dataclass
class Diff:
    changes: list[Change]
    shared_layers: int  # bottom layers the two images have in common
    layers_read: int
    a_fs: MergedFS = field(repr=False, default_factory=MergedFS)
    b_fs: MergedFS = field(repr=False, default_factory=MergedFS)
    whole: bool = True  # both filesystems built whole (else: the layers above the shared prefix)

    @property
    def equal(self) -> bool:
        return not self.changes


def shared_prefix(a: Image, b: Image) -> int:
    n = 0
    for la, lb in zip(a.layers, b.layers):
        if not la.diff_id or la.diff_id != lb.diff_id:
            break
        n += 1
    return n


Ranges = list[list[Member]]


def read_uppers(a: Image, b: Image, k: int, cache: LayerIndex | None, progress: Progress | None,
                keeper: "Keeper | None" = None, labels: tuple[str, str] = ("OLD", "NEW")) -> tuple[Ranges, Ranges]:
    """The entries of both images' layers above the first `k`, read at once (readplan.py).
    A `keeper` that wants OLD's (A's) files first gets them before B is streamed."""
    wants_a = [Want(a, i) for i in range(k, len(a.layers))]
    wants_b = [Want(b, i, keeper) for i in range(k, len(b.layers))]
    if keeper is not None and keeper.wants_old_first:
        upper_a = read_layers(wants_a, cache, progress, f"{labels[0]} layers")
        keeper.learn_old(upper_a, [w.layer.size for w in wants_a])
        return upper_a, read_layers(wants_b, cache, progress, f"{labels[1]} layers")
    both = read_layers(wants_a + wants_b, cache, progress, f"{labels[0]} and {labels[1]} layers")
    return both[:len(wants_a)], both[len(wants_a):]


Built = dict[tuple, Optional[MergedFS]]  # open-lower builds by (start, layers); None: NeedLower


def _open_lower(image: Image, upper: list[list[Member]], k: int, built: Built | None) -> MergedFS:
    """Layers k.. of `image` over an open lower part; the same layers are built once per `built`
    (a rebase's seam candidates diff NEW's same layers against several of OLD's prefixes). With
    `built`, the filesystem after each layer but the last is kept too (a copy: inodes are
    frozen), so a candidate that keeps fewer of OLD's layers starts from the longest prefix built."""
    def key(n: int) -> tuple:
        return (k, tuple((layer.digest, layer.diff_id) for layer in image.layers[k:n]))
    end = len(image.layers)
    if built is None:
        return build(image, upper, k, MergedFS(open_lower=True))
    if key(end) in built:
        fs = built[key(end)]
        if fs is None:
            raise NeedLower("(as before)")
        return fs
    start, fs = k, MergedFS(open_lower=True)
    for n in range(end - 1, k, -1):  # the longest prefix already built
        if (prefix := built.get(key(n))) is not None:
            start, fs = n, prefix.copy()
            break
    for index in range(start, end):
        try:
            build(image, [upper[index - k]], index, fs)
        except NeedLower:
            for n in range(index + 1, end + 1):
                built[key(n)] = None  # the same layer on the same filesystem needs the lower part again
            raise
        if index + 1 < end and key(index + 1) not in built:
            built[key(index + 1)] = fs.copy()
    built[key(end)] = fs  # never changed afterwards: a Diff only reads its filesystems
    return fs


def diff_images(a: Image, b: Image, progress: Progress | None = None, labels: tuple[str, str] = ("OLD", "NEW"),
                exact: bool = True, cache: LayerIndex | None = None, keeper: "Keeper | None" = None,
                built: Built | None = None) -> Diff:
    """Every path whose state differs between A's and B's merged filesystems.

    With `exact=False` (rebase), a path only B's upper layers name counts as a change without
    reading the shared layers to check (shipping B's entry is right either way). `keeper`
    (rebase): keeps the bytes of B's files the rebase may ship while B's layers are read;
    `built`: open-lower builds to reuse across calls (see `_open_lower`).
    """
    k = shared_prefix(a, b)
    upper_a, upper_b = read_uppers(a, b, k, cache, progress, keeper, labels)
    layers_read = len(upper_a) + len(upper_b)
    if k:
        try:
            ua = _open_lower(a, upper_a, k, built)
            ub = _open_lower(b, upper_b, k, built)
            pa, pb = set(ua.paths), set(ub.paths)
            if (pa == pb or (not exact and pa <= pb)) and ua.node("") == ub.node(""):
                return Diff(compare(ua, ub, pb), k, layers_read, ua, ub, whole=False)
        except NeedLower:
            pass
    lower = build(a, read_range(a, 0, k, progress=progress, label="shared", cache=cache), 0)
    whole_a = build(a, upper_a, k, lower.copy())
    whole_b = build(b, upper_b, k, lower)
    return Diff(compare(whole_a, whole_b, set(whole_a.paths) | set(whole_b.paths)), k, layers_read + k,
                whole_a, whole_b)


def compare(fa: MergedFS, fb: MergedFS, paths: Iterable[str]) -> list[Change]:
    links_a, links_b = fa.links(), fb.links()
    changes = []
    for path in sorted(paths):
        old, new = fa.node(path), fb.node(path)
        if old is None and new is None:
            continue
        ga = links_a.get(fa.paths.get(path, -1), NO_LINKS)
        gb = links_b.get(fb.paths.get(path, -1), NO_LINKS)
        if old is None or new is None or old.identity() != new.identity() or ga != gb:
            changes.append(Change(path, old, new, ga, gb))
    return changes


def layer_changes(changes: list[Change]) -> tuple[list[Change], list[Change]]:
    """Split into (entries to write from B, paths to white out), collapsing deleted subtrees.

    A deletion below a path that B replaces with a non-directory (or deletes) is implied by
    that entry, so one whiteout stands for a whole deleted directory.
    """
    by_path = {c.path: c for c in changes}
    writes, whiteouts = [], []
    for c in changes:
        if any(a in by_path and (by_path[a].new is None or by_path[a].new.kind != "dir")  # type: ignore[union-attr]
               for a in ancestors(c.path)):
            continue
        (whiteouts if c.new is None else writes).append(c)
    return writes, whiteouts
