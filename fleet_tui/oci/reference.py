"""Image references: `host[:port]/ns/name[:tag][@sha256:…]` and `oci:DIR[:tag|@digest]`.

Docker Hub defaults apply as in the docker CLI: no host → `docker.io`, a single-component
name → `library/NAME`, no tag and no digest → `latest`. A first component is a host only if
it has a `.` or `:` or is `localhost`. Malformed references raise `UsageError` naming the
problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from fleet_tui.errors import UsageError
from fleet_tui.oci.digest import DIGEST_RE

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# `$upstream[:port]`: IoT Edge's name for the parent gateway a nested child pulls through (its API
# proxy forwards to the parent's registry module; Azure/iotedge docs "How to connect downstream
# IoT Edge devices": `$upstream:443/azureiotedge-agent:1.4`)
_HOST = re.compile(r"^\$upstream(?::[0-9]+)?$|^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    registry: str  # "docker.io", "127.0.0.1:5000"; "" for an OCI layout
    repository: str  # "library/alpine"; the directory for an OCI layout
    tag: str | None = None
    digest: str | None = None
    layout: bool = False

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """`host/repo` (or `oci:DIR`) without tag or digest."""
        return f"oci:{self.repository}" if self.layout else f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> "Reference":
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> "Reference":
        return replace(self, digest=digest, tag=None)

    def pinned(self, digest: str | None = None) -> str:
        return f"{self.name}@{digest or self.digest}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse an image reference; `default_tag=None` allows a bare repository name."""
    raw = (text or "").strip()
    if not raw:
        raise UsageError("empty image reference; expected host/ns/name:tag or oci:DIR:tag")
    if raw.startswith("oci:"):
        return _parse_layout(raw, default_tag)
    name, digest = _split_digest(raw)
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise UsageError(f"malformed tag {tag!r} in image reference {raw!r}")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] in ("localhost", "$upstream")):
        registry, path = parts[0], parts[1:]
        if not _HOST.match(registry):
            raise UsageError(f"malformed registry host {registry!r} in image reference {raw!r}")
        port = registry.rpartition("]")[2].rpartition(":")[2] if ":" in registry.rpartition("]")[2] else ""
        if port and not 1 <= int(port) <= 65535:
            raise UsageError(f"registry port {port} in image reference {raw!r} is not a port: use 1-65535")
    else:
        registry, path = DOCKER_HUB, parts
        if len(path) == 1:
            path = ["library", *path]
    for comp in path:
        if not _COMPONENT.match(comp):
            raise UsageError(
                f"malformed repository name component {comp!r} in {raw!r}: use lowercase letters, digits and . _ -"
            )
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry, "/".join(path), tag, digest)


def _split_digest(raw: str) -> tuple[str, str | None]:
    if "@" not in raw:
        return raw, None
    name, digest = raw.split("@", 1)
    if not DIGEST_RE.match(digest):
        raise UsageError(f"malformed digest {digest!r} in image reference {raw!r}: expected sha256:<64 hex>")
    return name, digest


def _parse_layout(raw: str, default_tag: str | None) -> Reference:
    rest, digest = _split_digest(raw[4:])
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.match(tag):
            raise UsageError(f"malformed tag {tag!r} in {raw!r}")
    if not rest:
        raise UsageError(f"{raw!r} names no directory; expected oci:DIR:tag")
    if tag is None and digest is None:
        tag = default_tag
    return Reference("", rest, tag, digest, layout=True)
