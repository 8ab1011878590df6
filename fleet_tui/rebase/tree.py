"""Read layers and build merged filesystems from them (`mergedfs.MergedFS`).

Each layer's entries come from the layer index cache when it has that exact layer (see
`layerindex.py`), else from streaming the blob (`blobstream.map_layer`), which then indexes
it, as `readplan.py` schedules them; both give the same entries, so a merged filesystem
never depends on the cache. File contents are hashed while streaming and never held in
memory; only per-path metadata is kept, so memory grows with the number of paths, never
with layer size.

A layer a device would refuse (`mergedfs.LayerRefused`: a hard link to nothing, an entry
type engines do not handle, a whiteout of what the same layer created…) is a `LayerError`
naming the image and the layer.
"""

from __future__ import annotations

from typing import Iterable

from fleet_tui.oci.image import Image
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.layerstream import layer_error
from fleet_tui.rebase.mergedfs import LayerRefused, MergedFS
from fleet_tui.rebase.readplan import Progress, Want, layer_members, read_layer, read_layers
from fleet_tui.rebase.tarscan import Member

__all__ = ["Progress", "ancestors", "is_under", "layer_members", "read_layer", "apply_layer", "read_range",
           "build", "merged"]


def ancestors(path: str) -> Iterable[str]:
    """`a/b/c` → `a/b`, `a`."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def is_under(path: str, top: str) -> bool:
    """`path` is `top` or below it; `top` "" is the root, above everything."""
    return not top or path == top or path.startswith(top + "/")


def apply_layer(fs: MergedFS, image: Image, index: int, members: list[Member]) -> MergedFS:
    """Apply one layer's entries; a layer engines refuse is a LayerError naming it."""
    try:
        return fs.apply_layer(index, members)
    except LayerRefused as exc:
        raise layer_error(image, image.layers[index], str(exc)) from None


def read_range(image: Image, start: int = 0, end: int | None = None, progress: Progress | None = None,
               label: str = "", cache: LayerIndex | None = None) -> list[list[Member]]:
    """The entries of `image.layers[start:end]`, layer by layer (read as `readplan` reads)."""
    end = len(image.layers) if end is None else end
    return read_layers([Want(image, i) for i in range(start, end)], cache, progress, f"{label or image.ref} layers")


def build(image: Image, ranges: list[list[Member]], start: int, fs: MergedFS | None = None) -> MergedFS:
    """Apply `ranges` (layers `start`, `start+1`, …) onto `fs` (default: an empty filesystem)."""
    fs = fs if fs is not None else MergedFS()
    for offset, members in enumerate(ranges):
        apply_layer(fs, image, start + offset, members)
    return fs


def merged(image: Image, progress: Progress | None = None, cache: LayerIndex | None = None) -> MergedFS:
    """The whole merged filesystem of an image (all layers on an empty root)."""
    return build(image, read_range(image, progress=progress, cache=cache), 0)
