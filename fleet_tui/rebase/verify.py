"""Compare two images' merged filesystems: content hash, mode, owner, link targets.

Whiteouts and opaque directories are applied before comparing; timestamps are ignored.
Bottom layers the two images share are not read unless a path needs them (see diff.py),
so verifying a rebased image against NEW is cheap; layers in the layer index cache
(`layerindex.py`) are not read either, and the layers that are read get indexed.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_tui.config import Config
from fleet_tui.oci.image import Image, load_image
from fleet_tui.rebase.diff import Change, diff_images
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.tree import Progress


@dataclass
class VerifyResult:
    a: str
    b: str
    differences: list[Change]
    layers_read: int

    @property
    def equal(self) -> bool:
        return not self.differences

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "equal": self.equal,
                "differences": [c.to_json() for c in self.differences], "layers_read": self.layers_read}


def verify_images(a: Image | str, b: Image | str, config: Config, progress: Progress | None = None) -> VerifyResult:
    img_a = a if isinstance(a, Image) else load_image(a, config)
    img_b = b if isinstance(b, Image) else load_image(b, config)
    diff = diff_images(img_a, img_b, progress, labels=("A", "B"), cache=LayerIndex.for_config(config))
    return VerifyResult(img_a.pinned, img_b.pinned, diff.changes, diff.layers_read)
