"""Compare two images as a device's engine sees them: merged filesystems and runtime config.

Filesystems: type, content hash, mode, owner, link target, device numbers, xattrs and hard-link
groups, after whiteouts and opaque directories, as moby applies layers (mergedfs.py);
timestamps are ignored. Config: the runtime settings (`config`: User, Env, Cmd, Entrypoint,
WorkingDir, Healthcheck, StopSignal, Volumes, ExposedPorts, Labels, …) and the platform
(architecture, os, variant, os.version, os.features); empty and missing values are the same
(the engine treats them alike). Build history and timestamps never count.

Invariant: `equal` is only ever True after both images were read whole and every layer passed
its checks (blob digest, end of stream, diff_id) — a layer that cannot be read is an error,
never "equal". Bottom layers the two images share are not read unless a path needs them
(see diff.py); layers in the layer index cache are not read either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import Config
from fleet_tui.oci.image import DEFAULT_PLATFORM, Image, load_image
from fleet_tui.rebase.diff import Change, diff_images
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.multiplatform import platform_entries
from fleet_tui.rebase.readplan import Want, read_layers
from fleet_tui.rebase.tree import Progress

PLATFORM_KEYS = ("architecture", "os", "variant", "os.version", "os.features")


@dataclass
class VerifyResult:
    a: str
    b: str
    differences: list[Change]
    layers_read: int
    config_differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences and not self.config_differences

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "equal": self.equal,
                "differences": [c.to_json() for c in self.differences],
                "config_differences": self.config_differences, "layers_read": self.layers_read}


def _meaningful(value: dict[str, Any]) -> dict[str, Any]:
    """Drop empty settings: `"Env": null`, `[]`, `{}`, `""` and `false` mean the same to an engine
    (only at the top: inside a setting, `{"/data": {}}` is a volume)."""
    return {k: v for k, v in value.items() if v not in (None, "", [], {}, False)}


def config_differences(a: Image, b: Image) -> list[dict[str, Any]]:
    """Runtime config and platform fields that differ, as {"field", "a", "b"}."""
    out = []
    runtime_a = _meaningful(a.config.doc.get("config") or {})
    runtime_b = _meaningful(b.config.doc.get("config") or {})
    for key in sorted(set(runtime_a) | set(runtime_b)):
        if runtime_a.get(key) != runtime_b.get(key):
            out.append({"field": f"config.{key}", "a": runtime_a.get(key), "b": runtime_b.get(key)})
    for key in PLATFORM_KEYS:
        va, vb = _meaningful({key: a.config.doc.get(key)}).get(key), _meaningful({key: b.config.doc.get(key)}).get(key)
        if va != vb:
            out.append({"field": key, "a": va, "b": vb})
    return out


def verify_images(a: Image | str, b: Image | str, config: Config, progress: Progress | None = None,
                  platform: str = DEFAULT_PLATFORM) -> VerifyResult:
    img_a = a if isinstance(a, Image) else load_image(a, config, platform)
    img_b = b if isinstance(b, Image) else load_image(b, config, platform)
    cache = LayerIndex.for_config(config)
    diff = diff_images(img_a, img_b, progress, labels=("A", "B"), cache=cache)
    # every blob checked once (an index entry exists only for a checked blob): the layers the
    # diff did not need, read together; those it read are in the index's memory already
    read_layers([Want(img, i) for img in (img_a, img_b) for i in range(len(img.layers))], cache, progress,
                "the rest of A's and B's layers")
    return VerifyResult(img_a.pinned, img_b.pinned, diff.changes, diff.layers_read, config_differences(img_a, img_b))


@dataclass
class IndexVerifyResult:
    """`verify` of two multi-platform images: their platform sets, and each platform's result."""
    a: str
    b: str
    per_platform: dict[str, VerifyResult]
    platforms_a: list[str]
    platforms_b: list[str]

    @property
    def equal(self) -> bool:
        return self.platforms_a == self.platforms_b and all(r.equal for r in self.per_platform.values())

    @property
    def differences(self) -> list[Change]:
        return [c for r in self.per_platform.values() for c in r.differences]

    @property
    def config_differences(self) -> list[dict[str, Any]]:
        out = [{"field": "platforms", "a": self.platforms_a, "b": self.platforms_b}] \
            if self.platforms_a != self.platforms_b else []
        return out + [{**d, "platform": key} for key, r in self.per_platform.items() for d in r.config_differences]

    @property
    def layers_read(self) -> int:
        return sum(r.layers_read for r in self.per_platform.values())

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "equal": self.equal,
                "differences": [{**c.to_json(), "platform": key} for key, r in self.per_platform.items()
                                for c in r.differences],
                "config_differences": self.config_differences, "layers_read": self.layers_read,
                "platforms": {key: r.to_json() for key, r in self.per_platform.items()}}


def verify_refs(a: str, b: str, config: Config, progress: Progress | None = None,
                platform: str | None = None) -> VerifyResult | IndexVerifyResult:
    """Verify two references: every platform when both are multi-platform (unless `platform`
    narrows it), else the images a device of `platform` (default linux/amd64) would run."""

    entries_a, entries_b = platform_entries(a, config), platform_entries(b, config)
    if entries_a is None or entries_b is None or platform:
        return verify_images(a, b, config, progress, platform or DEFAULT_PLATFORM)
    per = {}
    for key in sorted(set(entries_a) & set(entries_b)):
        per[key] = verify_images(entries_a[key], entries_b[key], config, progress)
    return IndexVerifyResult(a, b, per, sorted(entries_a), sorted(entries_b))
