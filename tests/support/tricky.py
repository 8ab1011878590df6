"""Layers and images made the way other tools make them — not with fleet-tui's writer.

`raw_header()` builds tar headers byte by byte (any magic, GNU atime at 345, base-256
numbers, PAX records), so a test can hand the rebaser exactly what GNU tar, Go's
archive/tar, BusyBox or a hostile registry would; `raw_layer()` compresses a tar stream as
gzip, zstd or not at all, optionally damaged; `gnu_tar()` runs GNU tar on a directory tree;
`image()` pushes layers under a config a test controls (runtime settings, platform).
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.build import ImageBuilder, push_index
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.store import Store

BLOCK = 512
CAP_NET_RAW = bytes.fromhex("01000002") + (1 << 13).to_bytes(4, "little") + bytes(12)  # vfs_cap_data rev 2
CAP_NET_ADMIN = bytes.fromhex("01000002") + (1 << 12).to_bytes(4, "little") + bytes(12)


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def _base256(value: int, width: int) -> bytes:
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def raw_header(name: str, kind: bytes = b"0", size: int = 0, mode: int = 0o644, uid: int = 0, gid: int = 0,
               linkname: str = "", magic: bytes = b"ustar\x0000", prefix: bytes = b"", gnu_times: bytes = b"",
               big_uid: bool = False, devmajor: int = 0, devminor: int = 0, mtime: int = 0) -> bytes:
    """One 512-byte header. `magic` is the 8 bytes at 257 (ustar\\000, `ustar  \\0` for GNU, or
    zeros for V7); `prefix` goes at 345 (USTAR) and `gnu_times` at 345 (GNU atime/ctime)."""
    h = bytearray(BLOCK)
    h[0:100] = name.encode()[:100].ljust(100, b"\0")
    h[100:108] = _octal(mode, 8)
    h[108:116] = _base256(uid, 8) if big_uid else _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(mtime, 12)
    h[156:157] = kind
    h[157:257] = linkname.encode().ljust(100, b"\0")
    h[257:265] = magic
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    if prefix:
        h[345:345 + len(prefix)] = prefix
    if gnu_times:
        h[345:345 + len(gnu_times)] = gnu_times
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}".encode() + b"\0 "
    return bytes(h)


def pax_record(key: str, value: str | bytes) -> bytes:
    body = key.encode() + b"=" + (value if isinstance(value, bytes) else value.encode()) + b"\n"
    n = len(body) + 2
    while len(str(n)) + 1 + len(body) != n:
        n += 1
    return str(n).encode() + b" " + body


def entry(name: str, data: bytes = b"", kind: bytes = b"0", pax: dict[str, str | bytes] | None = None,
          **header: Any) -> bytes:
    """A header (+ PAX `x` header before it when `pax`), the data and its padding."""
    out = b""
    if pax:
        records = b"".join(pax_record(k, v) for k, v in pax.items())
        out += raw_header("PaxHeaders/" + name[-80:], b"x", len(records)) + records + bytes(-len(records) % BLOCK)
    out += raw_header(name, kind, len(data) if kind in (b"0", b"\0", b"7") else 0, **header)
    return out + data + bytes(-len(data) % BLOCK)


def global_pax(records: dict[str, str], name: str = "pax_global_header") -> bytes:
    body = b"".join(pax_record(k, v) for k, v in records.items())
    return raw_header(name, b"g", len(body)) + body + bytes(-len(body) % BLOCK)


def end() -> bytes:
    return bytes(2 * BLOCK)


def raw_layer(tar: bytes, compression: str = "gzip", damage: str = "") -> LayerResult:
    """A layer blob of `tar`: gzip, zstd or none; `damage`: "truncate" (cut the compressed
    stream), "trailing" (bytes after it). The diff_id is always the sha256 of `tar` itself."""
    if compression == "gzip":
        blob = gzip.compress(tar, mtime=0)
    elif compression == "zstd":
        import zstandard

        blob = zstandard.ZstdCompressor(level=3).compress(tar)
    else:
        blob = tar
    if damage == "truncate":
        blob = blob[: len(blob) * 2 // 3]
    elif damage == "trailing":
        blob += b"\0" * 64
    return LayerResult(sha256(blob), sha256(tar), len(blob), blob, compression)


def gnu_tar(root: Path, *args: str) -> bytes:
    """`tar -C root -cf - .` with GNU tar's own headers (numeric owners, given options)."""
    return subprocess.run(["tar", "--numeric-owner", "--sort=name", "--mtime=@1700000000", *args, "-C", str(root),
                           "-cf", "-", "."], check=True, capture_output=True).stdout


def py_tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def image(store: Store, repo: str, tag: str, layers: list[LayerResult], family: str = mt.DOCKER,
          container: dict[str, Any] | None = None, arch: str = "amd64") -> tuple[str, int, str]:
    """Push an image; returns (manifest digest, manifest size, media type) for an index."""
    b = ImageBuilder(family=family, architecture=arch)
    b.container = container if container is not None else {"Cmd": ["/bin/sh"]}
    for i, layer in enumerate(layers):
        b.add_layer(layer, f"layer {i}")
    manifest, config = b.manifest()
    for layer in layers:
        store.push_blob(repo, layer.digest, layer.data, layer.size)  # type: ignore[arg-type]
    store.push_blob(repo, manifest.config.digest, config, len(config))
    data = manifest.to_bytes()
    digest = store.put_manifest(repo, tag, data, manifest.media_type)
    return digest, len(data), manifest.media_type


def index(store: Store, repo: str, tag: str, entries: dict[str, tuple[str, int, str]], family: str = mt.DOCKER) -> str:
    return push_index(store, repo, tag, [(d, n, t, platform) for platform, (d, n, t) in entries.items()], family)


PLATFORMS = ("linux/amd64", "linux/arm64")


def release_layers(arch: str, release: int) -> list[LayerResult]:
    """base → dependency layer (same bytes every release, new timestamps) → app (new model)."""
    from tests.support.images import noise

    base = raw_layer(entry("bin/", kind=b"5", mode=0o755) + entry("bin/app", f"ELF {arch}".encode() * 300, mode=0o755)
                     + end())
    deps = raw_layer(entry("usr/", kind=b"5", mode=0o755) + entry("usr/lib/", kind=b"5", mode=0o755)
                     + entry(f"usr/lib/libdeps-{arch}.so", noise(200_000, len(arch)), mtime=release) + end())
    app = raw_layer(entry("app/", kind=b"5", mode=0o755) + entry("app/model.bin", f"model {release} {arch}".encode())
                    + entry("app/score.py", f"# release {release}\n".encode()) + end())
    return [base, deps, app]


def push_release(store: Store, repo: str, tag: str, release: int, platforms=PLATFORMS, family: str = mt.OCI) -> str:
    """A multi-platform release: one image per platform (tagged TAG-ARCH) and an index TAG."""
    entries = {}
    for platform in platforms:
        arch = platform.split("/")[1]
        entries[platform] = image(store, repo, f"{tag}-{arch}", release_layers(arch, release), family=family, arch=arch,
                                  container={"Cmd": ["/bin/app"], "Env": [f"RELEASE={release}"]})
    return index(store, repo, tag, entries, family)
