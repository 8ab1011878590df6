"""An oracle independent of fleet-tui: what a real dockerd makes of an image.

`exported(docker, ref)` pulls the image into a real dockerd, creates (never starts) a
container from it and reads `docker export` with Python's `tarfile`: every path with its
type, permission bits, owner, content hash, link target, device numbers and the one xattr
export records (`security.capability`), plus hard-link groups (export writes a link entry for
every further name of a regular file). `runtime(docker, ref)` is `docker inspect`'s Config and
platform. Nothing here imports fleet_tui's rebase code: the oracle must not share its bugs.

Paths the engine itself adds to every container (`/etc/hosts`, `/.dockerenv`, `/dev/console`…,
see moby's initlayer) are left out of the comparison, as are mtimes.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

from docker import errors as docker_errors

INIT_PATHS = {".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", "dev", "dev/console",
              "dev/pts", "dev/shm", "proc", "sys"}
CAP = "SCHILY.xattr.security.capability"


def pull(docker: Any, ref: str, platform: str | None = None) -> None:
    """`docker pull`; an error the engine reports in its progress stream raises (docker-py's
    plain `api.pull` would return it as text)."""
    repo, _, digest = ref.partition("@")
    if not digest:
        repo, _, digest = ref.rpartition(":")
    for message in docker.api.pull(repo, tag=digest, platform=platform, stream=True, decode=True):
        if "error" in message:
            raise docker_errors.APIError(f"pull {ref}: {message['error']}")


def exported(docker: Any, ref: str, platform: str | None = None) -> dict[str, tuple]:
    pull(docker, ref, platform)
    container = docker.api.create_container(ref, command=["/nothing-runs"], platform=platform)
    try:
        data = b"".join(docker.api.export(container["Id"]))
    finally:
        docker.api.remove_container(container["Id"], force=True)
    files: dict[str, tuple] = {}
    links: dict[str, set[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            path = m.name.strip("/").removeprefix("./")
            if not path or path in INIT_PATHS or any(path.startswith(p + "/") for p in ("dev", "proc", "sys")):
                continue
            cap = m.pax_headers.get(CAP, "")
            if m.islnk():
                target = m.linkname.strip("/")
                links.setdefault(target, {target}).add(path)
                files[path] = ("link-of", target)
                continue
            content = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isreg() else ""
            files[path] = (m.type, m.mode & 0o7777 if not m.issym() else 0o777, m.uid, m.gid, content,
                           m.linkname if m.issym() else "", (m.devmajor, m.devminor) if m.ischr() or m.isblk() else (),
                           cap)
    for target, group in links.items():  # every name of a hard-linked file: the file's state + its group
        state = files[target] + (tuple(sorted(group)),)
        for path in group:
            files[path] = state
    return files


def runtime(docker: Any, ref: str) -> dict[str, Any]:
    info = docker.api.inspect_image(ref)
    config = {k: v for k, v in (info.get("Config") or {}).items() if v not in (None, "", [], {}, False)}
    config.pop("Image", None)  # the builder's parent image id, not a runtime setting
    return {"config": config, "os": info.get("Os"), "architecture": info.get("Architecture"),
            "variant": info.get("Variant") or None}


def differences(docker: Any, a: str, b: str, platform: str | None = None) -> list[str]:
    """What differs between A and B as the engine runs them (empty: the same)."""
    fa, fb = exported(docker, a, platform), exported(docker, b, platform)
    out = [f"/{p}: {fa.get(p)} != {fb.get(p)}" for p in sorted(set(fa) | set(fb)) if fa.get(p) != fb.get(p)]
    ra, rb = runtime(docker, a), runtime(docker, b)
    out += [f"config {k}: {ra[k]} != {rb[k]}" for k in ra if ra[k] != rb[k]]
    return out
