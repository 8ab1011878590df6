"""Rebase multi-platform images: platform by platform, then one index with every platform.

When NEW is an index (linux/amd64 + linux/arm64 is the usual edge fleet), each of its
platforms is rebased onto OLD's image *for the same platform* (`engine.prepare_rebase`), and
the pushed tag is an index of the same family holding every rebased platform — so an arm64
device pulling the tag gets the arm64 rebase, never the amd64 one. OLD lacking one of NEW's
platforms is refused in one line (unless `--platform` narrows the rebase to platforms OLD
has). Entries that are not runnable images (`unknown/unknown`: build attestations, whose
subject digests would no longer match) are dropped and said so.

Invariants: nothing is tagged until every platform's blobs and manifest are pushed (by
digest); a refusal or fallback of any one platform is the whole rebase's, naming it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fleet_tui.config import Config
from fleet_tui.errors import FleetError, UsageError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.annotations import BASE_DIGEST, BASE_NAME
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.image import DEFAULT_PLATFORM, Image, load_image
from fleet_tui.oci.manifest import (
    Descriptor,
    RawManifest,
    canonical,
    parse_index,
    platform_str,
)
from fleet_tui.oci.reference import Reference, parse_reference
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.rebase.engine import (
    RebasePlan,
    RebaseResult,
    prepare_rebase,
    target_reference,
)
from fleet_tui.rebase.tree import Progress


def _raw(ref: Reference, config: Config) -> RawManifest:
    return open_store(ref, config).get_manifest(repo_of(ref), ref.reference)


def _is_index(raw: RawManifest) -> bool:
    return mt.is_index(raw.media_type or raw.json().get("mediaType", "")) or "manifests" in raw.json()


def _runnable(entry: Descriptor) -> bool:
    p = entry.platform or {}
    return bool(p.get("os")) and p.get("os") != "unknown" and p.get("architecture") != "unknown"


def _key(platform: dict[str, Any] | None) -> str:
    return platform_str(platform)


@dataclass
class IndexPlan:
    """The per-platform plans of one multi-platform rebase; used like a RebasePlan."""

    plans: dict[str, RebasePlan]  # platform → plan
    descriptors: dict[str, Descriptor]  # platform → NEW's index entry (platform dict kept)
    index_type: str
    target: Reference
    old_ref: str
    old_digest: str
    new_pinned: str
    dropped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def _index(self) -> bytes:
        manifests = []
        for key, plan in self.plans.items():
            a = plan.assembled
            entry = Descriptor(a.manifest.media_type, a.digest, len(a.manifest_bytes), platform=self.descriptors[key].platform)
            manifests.append(entry.to_json())
        doc = {"schemaVersion": 2, "mediaType": self.index_type, "manifests": manifests}
        if self.index_type == mt.OCI_INDEX:
            doc["annotations"] = {BASE_NAME: self.old_ref, BASE_DIGEST: self.old_digest}
        return canonical(doc)

    @property
    def refused(self) -> str | None:
        for key, plan in self.plans.items():
            if plan.refused:
                return f"{key}: {plan.refused}"
        return None

    def result(self, pushed: bool) -> RebaseResult:
        index = self._index()
        first_key = "linux/amd64" if "linux/amd64" in self.plans else next(iter(self.plans))
        out = self.plans[first_key].result(pushed)
        refused = self.refused
        out.refused = refused
        out.fallback = refused is not None and any(p.fallback for p in self.plans.values())
        if refused is None:
            out.ref, out.digest = self.target.pinned(sha256(index)), sha256(index)
        elif out.fallback:
            out.ref, out.digest = self.new_pinned, self.new_pinned.rsplit("@", 1)[1]
        else:
            out.ref = out.digest = None
        out.platforms = {key: _platform_json(plan, len(index)) for key, plan in self.plans.items()}
        out.index_bytes = len(index)
        out.bytes_for_old_holders += len(index)
        out.warnings += [f"not rebased (not a runnable image): {d}" for d in self.dropped]
        out.seconds = time.monotonic() - self.started
        return out

    def push(self, progress: Progress | None = None) -> RebaseResult:
        if self.refused:
            return self.result(pushed=False)
        blobs: dict[str, int] = {}
        for plan in self.plans.values():
            for how, n in plan.push_untagged(progress).items():
                blobs[how] = blobs.get(how, 0) + n
        store = open_store(self.target, next(iter(self.plans.values())).config, create=True)
        store.put_manifest(repo_of(self.target), self.target.tag or sha256(self._index()), self._index(), self.index_type)
        result = self.result(pushed=True)
        result.blobs = blobs
        return result

    def close(self) -> None:
        for plan in self.plans.values():
            plan.close()

    def __enter__(self) -> "IndexPlan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _platform_json(plan: RebasePlan, index_bytes: int) -> dict[str, Any]:
    return {"digest": plan.assembled.digest, "reused_layers": len(plan.old.layers),
            "new_layer": {"digest": plan.layer.digest, "size": plan.layer.size},
            "bytes_for_old_holders": plan.bytes_for_old_holders + index_bytes, "bytes_naive": plan.bytes_naive,
            "refused": plan.refused}


def image_platform(image: Image) -> str | None:
    """`os/arch[/variant]` from an image's config; None when the config does not say."""
    doc = image.config.doc
    if not doc.get("os") or not doc.get("architecture"):
        return None
    return _key({k: doc.get(k) for k in ("os", "architecture", "variant")})


def _old_for(old_ref: Reference, old_raw: RawManifest, platform: dict[str, Any] | None, config: Config) -> Image:
    key = _key(platform)
    if _is_index(old_raw):
        entries = [e for e in parse_index(old_raw) if _runnable(e)]
        match = [e for e in entries if _key(e.platform) == key]
        if not match:
            offered = ", ".join(_key(e.platform) for e in entries) or "none"
            raise FleetError(f"OLD {old_ref} has no {key} image (it has {offered}); every platform of NEW needs one "
                             f"to rebase onto — or narrow with --platform")
        return load_image(parse_reference(old_ref.pinned(match[0].digest)), config)
    old = load_image(old_ref, config)
    have = image_platform(old)
    if have is not None and have != key:
        raise FleetError(f"OLD {old_ref} is a {have} image and NEW has {key}; rebase onto an image of that platform")
    return old


def prepare_any(new: str, onto: str, tag: str, config: Config, paths: list[str] | None = None, auto: bool = False,
                force: bool = False, progress: Progress | None = None, compression: str = "gzip",
                platforms: list[str] | None = None, append: bool = False) -> RebasePlan | IndexPlan:
    """A RebasePlan when NEW is one image, an IndexPlan when NEW is a multi-platform index."""
    new_ref, old_ref = parse_reference(new), parse_reference(onto)
    new_raw = _raw(new_ref, config)
    if not _is_index(new_raw):
        new_img = load_image(new_ref, config)
        key = image_platform(new_img) or DEFAULT_PLATFORM
        if platforms and platforms != [key]:
            raise UsageError(f"NEW {new_ref} is a single {key} image; --platform {','.join(platforms)} does not match")
        parts = key.split("/") + [""]
        old_img = _old_for(old_ref, _raw(old_ref, config), {"os": parts[0], "architecture": parts[1],
                                                            "variant": parts[2]}, config)
        return prepare_rebase(new_img, old_img, tag, config, paths, auto, force, progress, compression, append=append)
    entries = [e for e in parse_index(new_raw) if _runnable(e)]
    dropped = [f"{_key(e.platform)} {e.digest[:19]}" for e in parse_index(new_raw) if not _runnable(e)]
    if platforms:
        unknown = [p for p in platforms if p not in {_key(e.platform) for e in entries}]
        if unknown:
            raise UsageError(f"NEW {new_ref} has no {', '.join(unknown)} image (it has "
                             f"{', '.join(_key(e.platform) for e in entries)})")
        entries = [e for e in entries if _key(e.platform) in platforms]
    old_raw = _raw(old_ref, config)
    plans: dict[str, RebasePlan] = {}
    try:
        for entry in entries:
            key = _key(entry.platform)
            new_img = load_image(parse_reference(new_ref.pinned(entry.digest)), config)
            old_img = _old_for(old_ref, old_raw, entry.platform, config)
            plans[key] = prepare_rebase(new_img, old_img, tag, config, paths, auto, force, progress, compression,
                                        append=append)
    except BaseException:
        for plan in plans.values():
            plan.close()
        raise
    families = {plan.old.family for plan in plans.values()}
    if len(families) != 1:
        for plan in plans.values():
            plan.close()
        raise FleetError(f"OLD's platform images mix Docker and OCI formats ({', '.join(sorted(families))}); "
                         f"an index cannot hold both")
    index_type = mt.DOCKER_LIST if families == {mt.DOCKER} else mt.OCI_INDEX
    target = target_reference(tag, next(iter(plans.values())).new)
    return IndexPlan(plans, {_key(e.platform): e for e in entries}, index_type, target, str(old_ref),
                     old_raw.digest, new_ref.pinned(new_raw.digest), dropped)


def platform_entries(ref: str, config: Config) -> dict[str, str] | None:
    """`{platform: pinned ref}` of a multi-platform image's runnable entries; None for one image."""
    parsed = parse_reference(ref)
    raw = _raw(parsed, config)
    if not _is_index(raw):
        return None
    return {_key(e.platform): parsed.pinned(e.digest) for e in parse_index(raw) if _runnable(e)}
