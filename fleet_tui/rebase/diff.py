"""Differences between the merged filesystems of two images, reading as little as possible.

Two images that start with the same layers (same `diff_id`s) share that part of their
filesystem. Only the layers above the shared prefix are streamed at first; the prefix is
read only if a path touched on one side alone needs its state there (or a directory
hidden on one side alone needs its listing). So comparing a model update whose base layer
is 1 GB costs the same as with a 1 MB base.

A difference is content, mode, owner, link target or type; timestamps never count.
Invariant: `changes` is sorted by path and, applied to A as a layer, yields B exactly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from fleet_tui.oci.image import Image
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.tree import LayerStack, Node, Progress, ancestors, walk_layers


@dataclass(frozen=True)
class Change:
    path: str  # without leading "/"
    old: Optional[Node]
    new: Optional[Node]

    @property
    def what(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "deleted"
        return "+".join(self.old.differences(self.new)) or "modified"

    def to_json(self) -> dict:
        return {"path": "/" + self.path, "change": self.what,
                "kind": (self.new or self.old).kind}  # type: ignore[union-attr]


@dataclass
class Diff:
    changes: list[Change]
    shared_layers: int  # bottom layers the two images have in common (never read unless needed)
    layers_read: int
    a_stack: LayerStack = field(repr=False, default_factory=LayerStack)
    b_stack: LayerStack = field(repr=False, default_factory=LayerStack)

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


def diff_images(a: Image, b: Image, progress: Progress | None = None, labels: tuple[str, str] = ("OLD", "NEW"),
                exact: bool = True, cache: LayerIndex | None = None) -> Diff:
    """Every path whose state differs between A's and B's merged filesystems.

    With `exact=False` (rebase), a path B's upper layers provide and A's do not is taken
    as a change without reading the shared layers to check (shipping B's entry is right
    either way), so only deletions and hidden directories make the shared prefix be read.
    `cache` (a layer index) stands in for the blobs of layers it has; the result is the same.
    """
    k = shared_prefix(a, b)
    # one side wholly indexed: the other is the only stream, give it a read-ahead thread
    ahead_a = cache is not None and cache.has_all(b.layers[k:])
    ahead_b = cache is not None and cache.has_all(a.layers[k:])
    with ThreadPoolExecutor(2) as pool:  # zlib and sha256 release the GIL: both images at once
        fa = pool.submit(walk_layers, a, k, progress=progress, label=labels[0], cache=cache, ahead=ahead_a)
        fb = pool.submit(walk_layers, b, k, progress=progress, label=labels[1], cache=cache, ahead=ahead_b)
        sa, sb = fa.result(), fb.result()
    candidates = set(sa.nodes) | set(sb.nodes) | sa.deleted | sb.deleted
    need_points = {p for p in candidates if not (sa.covers(p) and sb.covers(p))}
    if not exact:
        need_points = {p for p in need_points if p not in sb.nodes}
    need_subtrees = _subtrees_needing_lower(sa, sb) | _subtrees_needing_lower(sb, sa)
    lower = LayerStack()
    layers_read = (len(a.layers) - k) + (len(b.layers) - k)
    if k and (need_points or need_subtrees):
        lower = walk_layers(a, 0, k, progress=progress, label="shared", cache=cache)
        layers_read += k
    for top in need_subtrees | {p for p in need_points if _is_dir(lower.get(p))}:
        candidates.update(lower.under(top))
    changes = []
    for path in sorted(candidates):
        old, new = sa.lookup(path, lower.get), sb.lookup(path, lower.get)
        if old is None and new is None:
            continue
        if old is None or new is None or old.identity() != new.identity():
            changes.append(Change(path, old, new))
    return Diff(changes, k, layers_read, sa, sb)


def _is_dir(node: Optional[Node]) -> bool:
    return node is not None and node.kind == "dir"


def _subtrees_needing_lower(x: LayerStack, y: LayerStack) -> set[str]:
    """Dirs below which X hides lower entries that Y may still show."""
    tops = set(x.hidden) | x.deleted
    tops |= {p for p, n in x.nodes.items() if n.kind != "dir" and _is_dir(y.nodes.get(p))}
    return {t for t in tops if not y.hides_subtree(t)}


def layer_changes(changes: list[Change]) -> tuple[list[Change], list[Change]]:
    """Split into (entries to write from B, paths to white out), collapsing deleted subtrees.

    A deletion below a path that B replaces with a non-directory (or deletes) is implied
    by that entry, so one whiteout stands for a whole deleted directory.
    """
    by_path = {c.path: c for c in changes}
    writes, whiteouts = [], []
    for c in changes:
        if any(a in by_path and (by_path[a].new is None or by_path[a].new.kind != "dir")  # type: ignore[union-attr]
               for a in ancestors(c.path)):
            continue
        (whiteouts if c.new is None else writes).append(c)
    return writes, whiteouts
