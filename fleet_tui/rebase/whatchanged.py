"""What changed between two images, as an operator reads it (`fleet-tui diff`, the Diff screen).

The merged-filesystem diff the rebase computes (fleet_tui.rebase.diff, timestamps ignored),
summarised:
- by *directory*: Python packages by their `site-packages/<top>` directory, everything else by
  its first three path components; per group the files added, removed and changed, and the
  compressed bytes shipping them costs a device (each file's size × the compression ratio of
  the layer B holds it in: an estimate, within a few % of the real delta layer);
- by *Python distribution*: `<name>-<version>.dist-info` directories found among the changes,
  paired by normalised name: upgraded (before → after), added or removed.
Nothing is extracted: sizes and layer ratios come from the layer index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import Config
from fleet_tui.oci.image import DEFAULT_PLATFORM, Image, load_image
from fleet_tui.rebase.diff import Change, diff_images
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.tree import Progress, layer_members

_DIST = re.compile(r"(?:^|/)([A-Za-z0-9][A-Za-z0-9._]*?)-([0-9][^/-]*)\.dist-info(?:/|$)")
_SITE = re.compile(r"^(.*?/(?:site|dist)-packages/[^/]+)")
TAR_HEADER = 512


@dataclass
class DirChange:
    directory: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    bytes: int = 0  # estimated compressed bytes a device downloads for this directory
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, with_files: bool = True) -> dict[str, Any]:
        out = {"directory": "/" + self.directory, "added": self.added, "removed": self.removed,
               "changed": self.changed, "bytes": self.bytes}
        if with_files:
            out["files"] = self.files
        return out


@dataclass(frozen=True)
class DistChange:
    name: str
    before: str | None  # version in A (None: added)
    after: str | None  # version in B (None: removed)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after}


@dataclass
class WhatChanged:
    a: str
    b: str
    directories: list[DirChange]
    distributions: list[DistChange]

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.directories)

    @property
    def files(self) -> int:
        return sum(d.added + d.removed + d.changed for d in self.directories)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "bytes": self.bytes, "files": self.files,
                "distributions": [d.to_json() for d in self.distributions],
                "directories": [d.to_json() for d in self.directories]}


def directory_of(path: str) -> str:
    site = _SITE.match(path)
    if site:
        return site.group(1)
    parts = path.split("/")
    return "/".join(parts[: min(3, max(1, len(parts) - 1))])


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(changes: list[Change]) -> list[DistChange]:
    before: dict[str, tuple[str, str]] = {}
    after: dict[str, tuple[str, str]] = {}
    for c in changes:
        m = _DIST.search(c.path)
        if not m:
            continue
        key = normalise(m.group(1))
        if c.old is not None and c.new is None:
            before.setdefault(key, (m.group(1), m.group(2)))
        elif c.new is not None and c.old is None:
            after.setdefault(key, (m.group(1), m.group(2)))
    out = []
    for key in sorted(set(before) | set(after)):
        name = (after.get(key) or before[key])[0]
        b, a = before.get(key, (name, None))[1], after.get(key, (name, None))[1]
        if b != a:
            out.append(DistChange(name.replace("_", "-"), b, a))
    return out


class _Ratios:
    """Compressed / uncompressed size of B's layers, read (from the layer index) only for the
    layers that hold changed files."""

    def __init__(self, image: Image, cache: LayerIndex | None) -> None:
        self.image, self.cache = image, cache
        self.known: dict[int, float] = {}

    def __call__(self, index: int) -> float:
        if index not in self.known:
            if not 0 <= index < len(self.image.layers):
                return 1.0
            raw = sum(m.size + TAR_HEADER for m in layer_members(self.image, index, self.cache))
            self.known[index] = min(1.0, self.image.layers[index].size / raw) if raw else 1.0
        return self.known[index]


def what_changed(a: str | Image, b: str | Image, config: Config, platform: str = DEFAULT_PLATFORM,
                 progress: Progress | None = None) -> WhatChanged:
    img_a = a if isinstance(a, Image) else load_image(a, config, platform)
    img_b = b if isinstance(b, Image) else load_image(b, config, platform)
    cache = LayerIndex.for_config(config)
    diff = diff_images(img_a, img_b, progress, ("A", "B"), exact=True, cache=cache)
    ratio = _Ratios(img_b, cache)
    groups: dict[str, DirChange] = {}
    for c in diff.changes:
        node = c.new or c.old
        if node is None or (node.kind == "dir" and c.what != "deleted"):
            continue  # directories: their files say what changed
        group = groups.setdefault(directory_of(c.path), DirChange(directory_of(c.path)))
        kind = "added" if c.old is None else "removed" if c.new is None else "changed"
        setattr(group, kind, getattr(group, kind) + 1)
        cost = 0
        if c.new is not None:
            size = c.new.size if c.new.kind == "file" else 0
            cost = int((size + TAR_HEADER) * ratio(c.new.source[0]))
        group.bytes += cost
        group.files.append({"path": "/" + c.path, "change": kind if kind != "changed" else c.what,
                            "size": node.size if node.kind == "file" else 0, "bytes": cost})
    directories = sorted(groups.values(), key=lambda g: (-g.bytes, g.directory))
    return WhatChanged(str(img_a.ref), str(img_b.ref), directories, distributions(diff.changes))
