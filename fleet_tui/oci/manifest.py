"""Manifests, indexes and image configs: parse, pick a platform, serialise canonically.

Facts kept here: manifest `layers[].digest` is of the *compressed* blob, config
`rootfs.diff_ids` of the *uncompressed* tar; `history` entries with `empty_layer: true`
made no layer, so build steps are matched to layers by skipping them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.errors import FleetError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.digest import sha256

DEFAULT_PLATFORM = "linux/amd64"  # what a device or image that names no platform is


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Descriptor":
        try:
            return cls(
                d.get("mediaType", ""), d["digest"], int(d["size"]),
                dict(d.get("annotations") or {}), d.get("platform"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FleetError(f"malformed descriptor in manifest: missing or bad {exc}") from None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True)
class RawManifest:
    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        try:
            return json.loads(self.data)
        except ValueError:
            raise FleetError(f"manifest {self.digest[:19]} is not valid JSON") from None


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: RawManifest) -> "Manifest":
        doc = raw.json()
        media_type = doc.get("mediaType") or raw.media_type
        if media_type not in mt.MANIFESTS:
            raise FleetError(f"unsupported manifest type {media_type!r} (schema 1 images are not supported)")
        if "config" not in doc:
            raise FleetError(f"manifest {raw.digest[:19]} has no config")
        return cls(
            media_type,
            Descriptor.from_json(doc["config"]),
            [Descriptor.from_json(layer) for layer in doc.get("layers", [])],
            dict(doc.get("annotations") or {}),
        )

    @property
    def family(self) -> str:
        return mt.family_of(self.media_type)

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        doc["config"] = self.config.to_json()
        doc["layers"] = [layer.to_json() for layer in self.layers]
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return canonical(doc)


def canonical(doc: dict[str, Any]) -> bytes:
    """Deterministic JSON: same document → same bytes → same digest."""
    return json.dumps(doc, indent=3, sort_keys=False).encode()


def parse_index(raw: RawManifest) -> list[Descriptor]:
    doc = raw.json()
    return [Descriptor.from_json(m) for m in doc.get("manifests", [])]


def platform_str(p: dict[str, Any] | None) -> str:
    if not p:
        return "unknown"
    out = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return out + (f"/{p['variant']}" if p.get("variant") else "")


def pick_platform(entries: list[Descriptor], platform: str) -> Descriptor:
    """Choose the manifest for `os/arch[/variant]` from an index."""
    want = platform.split("/")
    for entry in entries:
        p = entry.platform or {}
        have = [p.get("os"), p.get("architecture")] + ([p.get("variant")] if len(want) > 2 else [])
        if have == want:
            return entry
    offered = ", ".join(platform_str(e.platform) for e in entries) or "none"
    raise FleetError(f"image has no {platform} variant (it offers: {offered}); pass --platform")


@dataclass(frozen=True)
class ImageConfig:
    """The parsed image config blob, with helpers for layers and build history."""

    doc: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes) -> "ImageConfig":
        try:
            doc = json.loads(data)
        except ValueError:
            raise FleetError(f"image config {sha256(data)[:19]} is not valid JSON") from None
        return cls(doc)

    @property
    def diff_ids(self) -> list[str]:
        return list((self.doc.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.doc.get("history") or [])

    @property
    def container(self) -> dict[str, Any]:
        return dict(self.doc.get("config") or {})

    def layer_steps(self, n_layers: int) -> list[str]:
        """`created_by` for each of the n layers, skipping empty_layer history entries."""
        steps = [h.get("created_by", "") for h in self.history if not h.get("empty_layer")]
        if len(steps) != n_layers:
            # History does not line up with layers (squashed or hand-made image): align the end.
            steps = ([""] * n_layers + steps)[-n_layers:] if n_layers else []
        return [s.strip() for s in steps]

    def to_bytes(self) -> bytes:
        return json.dumps(self.doc, separators=(",", ":"), sort_keys=True).encode()
