"""The merged filesystem of an image, built the way a device's engine builds it.

Applies tar entries (as `tarscan` reads them, i.e. as Go's archive/tar does) with the
semantics of moby's layer unpacking — `UnpackLayer` (pkg/archive/diff.go) and
`createTarFile` (pkg/archive/archive.go), run chrooted into the layer (chrootarchive), as
dockerd 20.10 does for every storage driver's ApplyDiff:

- names are cleaned like Go's `filepath.Clean` and joined to the root, so `a/./m`,
  `usr//bin/x` and `/x` are `a/m`, `usr/bin/x`, `x`, and `..` cannot leave the root;
- a missing parent directory is created (`MkdirAll`) as root-owned with `IMPLIED_MODE`, for
  every entry (whiteouts, skipped ones and PAX global headers too); parent components that
  are symlinks are followed, as the kernel does inside the chroot;
- any name whose base starts `.wh.` is a whiteout, whatever its type: `.wh.NAME` removes
  `dir/NAME` cleaned (`RemoveAll`; `.wh.` alone is the directory itself), `.wh..wh..opq`
  removes what the directory held that this layer did not unpack; names starting `.wh..wh.`
  at the root are AUFS metadata;
- a PAX global header creates its parents and removes what is at its own name, nothing more;
- the root's own entry (`./`) is not modelled: overlay2 ignores it, vfs applies it, and no
  export shows it;
- an existing path is removed first unless both it and the entry are directories; a
  directory entry then only updates mode, owner and xattrs (existing xattrs stay);
- a hard link shares the *inode* of its target (resolved now, final component not
  followed): owner, mode (unless the target is a symlink) and xattrs of the link header are
  applied to that inode; a missing or directory target fails the layer;
- symlinks' own mode is meaningless on Linux (0777); xattrs come from `SCHILY.xattr.*`;
- PAX global headers and unknown entry types: see `apply`.

Entries the engines disagree on are refused rather than guessed: a whiteout of a path the
same layer created (vfs deletes it, overlay2 fails the pull). Paths map to inode numbers;
inodes carry identity (type, mode, owner, content, link target, device, xattrs) and the
layer entry whose bytes hold the content (`source`), so a delta can extract them.

`open_lower=True` builds a range of layers over an unknown lower part and raises `NeedLower`
as soon as the result would depend on it (a parent, whiteout or link target it does not
hold); diff.py then reads the lower part. Timestamps are not modelled (they never count).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from fleet_tui.rebase.tarscan import Member

# dockerd 20.10 `UnpackLayer`: `system.MkdirAll(parentPath, 0600)` under umask 0 (moby >= 23
# uses 0755: `ImpliedDirectoryMode`). A delta never writes an implied directory OLD lacks, so
# the device's own engine implies it again, whatever its version.
IMPLIED_MODE = 0o600
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
META = ".wh..wh."
MAX_SYMLINKS = 40  # Linux's limit on symlinks followed in one lookup (ELOOP)
KINDS = {b"0": "file", b"\0": "file", b"1": "hardlink", b"2": "symlink", b"3": "char", b"4": "block", b"5": "dir", b"6": "fifo"}


class NeedLower(Exception):
    """An open-lower range touched a path it does not hold."""


class LayerRefused(Exception):
    """A layer a device would refuse or that engines apply differently (message says why)."""


@dataclass(frozen=True)
class Inode:
    kind: str  # file, dir, symlink, char, block, fifo
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""  # content, files only
    target: str = ""  # symlink target as written
    dev: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, str], ...] = ()
    source: tuple[int, str] = (-1, "")  # (layer index, entry name) holding the content
    implied: bool = False  # a parent directory the engine created (no entry of its own)

    def identity(self) -> tuple:
        return (self.kind, self.mode, self.uid, self.gid, self.sha256, self.target, self.dev, self.xattrs)

    def same_as(self, other: "Inode") -> bool:
        return self.identity() == other.identity()

    def differences(self, other: "Inode") -> list[str]:
        if self.kind != other.kind:
            return ["type"]
        pairs = [("content", self.sha256, other.sha256), ("mode", self.mode, other.mode),
                 ("owner", (self.uid, self.gid), (other.uid, other.gid)), ("link", self.target, other.target),
                 ("device", self.dev, other.dev), ("xattrs", self.xattrs, other.xattrs)]
        return [name for name, a, b in pairs if a != b]


def clean(name: str) -> str:
    """A tar name as the chrooted engine resolves it: Go's Clean of `/name`, without the `/`."""
    if name and name[0] not in "./" and name[-1] != "/" and "//" not in name and "/." not in name:
        return name  # already clean (the usual case): no `.`/`..` component, no doubled or edge slash
    path = posixpath.normpath("/" + name.lstrip("/"))
    return path.lstrip("/")


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


class MergedFS:
    def __init__(self, open_lower: bool = False) -> None:
        self.open_lower = open_lower
        self.paths: dict[str, int] = {"": 0}
        self.inodes: dict[int, Inode] = {0: Inode("dir", 0o755, 0, 0)}
        self.kids: dict[str, set[str]] = {"": set()}
        self._next = 1
        self._layer = -1
        self._unpacked: set[str] = set()
        self._real_dirs: set[str] = {""}  # directories reached with no symlink on the way (a cache)

    def copy(self) -> "MergedFS":
        other = MergedFS(self.open_lower)
        other.paths, other.inodes = dict(self.paths), dict(self.inodes)
        other.kids = {k: set(v) for k, v in self.kids.items()}
        other._next = self._next
        other._real_dirs = set(self._real_dirs)
        return other

    # --- lookups ------------------------------------------------------------------------
    def node(self, path: str) -> Inode | None:
        ino = self.paths.get(path)
        return None if ino is None else self.inodes[ino]

    def _missing(self, path: str, why: str) -> None:
        if self.open_lower:
            raise NeedLower(f"{why} /{path}")

    def real(self, path: str, follow_last: bool, depth: int = 0) -> str | None:
        """`path` with symlinked components followed (the last one only if `follow_last`);
        None when a component is missing."""
        out = ""
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            nxt = f"{out}/{part}" if out else part
            node = self.node(nxt)
            if node is None:
                self._missing(nxt, "needs")
                return None
            if node.kind == "symlink" and (i < len(parts) - 1 or follow_last):
                if depth >= MAX_SYMLINKS:
                    raise LayerRefused(f"too many levels of symbolic links at /{nxt}")
                base = "" if node.target.startswith("/") else out
                hop = self.real(clean(posixpath.join("/" + base, node.target)), True, depth + 1)
                if hop is None:
                    return None
                nxt = hop
            elif i < len(parts) - 1 and node.kind != "dir":
                raise LayerRefused(f"/{nxt} is not a directory but holds /{path}")
            out = nxt
        return out

    def links(self) -> dict[int, frozenset[str]]:
        """Inode → every path naming it, for inodes named more than once (hard-link groups)."""
        groups: dict[int, set[str]] = {}
        for path, ino in self.paths.items():
            groups.setdefault(ino, set()).add(path)
        return {ino: frozenset(p) for ino, p in groups.items() if len(p) > 1}

    # --- changes --------------------------------------------------------------------------
    def _new(self, path: str, inode: Inode) -> None:
        self.inodes[self._next] = inode
        self._link(path, self._next)
        self._next += 1

    def _link(self, path: str, ino: int) -> None:
        self.paths[path] = ino
        self.kids.setdefault(parent_of(path), set()).add(path)
        if self.inodes[ino].kind == "dir":
            self.kids.setdefault(path, set())

    def remove_all(self, path: str, removed: list[str] | None = None) -> None:
        """Remove `path` and what is below it (an inode another path names lives on)."""
        if path not in self.paths:
            self._missing(path, "removes")
            return
        for kid in list(self.kids.get(path, ())):
            self.remove_all(kid, removed)
        self.kids.pop(path, None)
        del self.paths[path]
        self._real_dirs.discard(path)
        self.kids.get(parent_of(path), set()).discard(path)
        if removed is not None:
            removed.append(path)

    def _mkdir_all(self, path: str) -> str:
        """The real directory for `path`, creating missing components (root, IMPLIED_MODE)."""
        if path in self._real_dirs:
            return path
        out, plain = "", True
        for part in [p for p in path.split("/") if p]:
            nxt = f"{out}/{part}" if out else part
            if self.node(nxt) is None:
                self._missing(nxt, "creates a parent directory at")
                self._new(nxt, Inode("dir", IMPLIED_MODE, 0, 0, implied=True))
                out = nxt
                continue
            resolved = self.real(nxt, follow_last=True)
            if resolved is None or self.node(resolved) is None or self.node(resolved).kind != "dir":  # type: ignore[union-attr]
                raise LayerRefused(f"/{nxt} is not a directory but holds an entry below it")
            plain = plain and resolved == nxt
            out = resolved
        if plain:
            self._real_dirs.add(out)
        return out

    def begin_layer(self, index: int) -> None:
        self._layer, self._unpacked = index, set()

    def apply(self, member: Member) -> None:
        """One entry of the current layer (see the module docstring)."""
        name = clean(member.name)
        if not name:
            return  # the root's own entry (see the module docstring)
        parent, _, base = name.rpartition("/")
        real_parent = self._mkdir_all(parent)
        if name.startswith(META) and name != OPAQUE:
            return  # AUFS metadata at the root
        if base.startswith(WHITEOUT):
            return self._whiteout(real_parent, base)
        kind = KINDS.get(member.type)
        if kind is None and member.type != b"g":  # moby createTarFile: "unhandled tar header type"
            raise LayerRefused(f"/{name} has tar entry type {member.type!r}, which engines refuse")
        path = f"{real_parent}/{base}" if real_parent else base
        current = self.node(path)
        if current is not None and not (current.kind == "dir" and kind == "dir"):
            self.remove_all(path)
        if kind is None:
            return  # a PAX global header: moby "found and ignored" (after the removal above)
        # (open lower, path not held: whatever lower had there is replaced alike on both
        # sides, and diff.py reads the lower part unless both sides hold the same paths)
        self._unpacked.add(path)
        if kind == "hardlink":
            return self._hardlink(path, member)
        if kind == "dir" and current is not None and current.kind == "dir":
            self.inodes[self.paths[path]] = self._meta(current, member, merge_xattrs=True)
            return
        self._new(path, self._meta(Inode(kind, 0, 0, 0), member, source=(self._layer, member.name)))

    def _meta(self, inode: Inode, m: Member, merge_xattrs: bool = False, source: tuple[int, str] | None = None) -> Inode:
        kind = inode.kind
        if m.xattrs:
            xattrs = dict(inode.xattrs) if merge_xattrs else {}
            xattrs.update(m.xattrs)
            attrs = tuple(sorted(xattrs.items()))
        else:
            attrs = inode.xattrs if merge_xattrs else ()
        return Inode(
            kind, 0o777 if kind == "symlink" else m.mode & 0o7777, m.uid, m.gid,
            m.size if kind == "file" else inode.size, m.sha256 if kind == "file" else inode.sha256,
            m.linkname if kind == "symlink" else inode.target,
            (m.devmajor, m.devminor) if kind in ("char", "block") else inode.dev, attrs, source or inode.source,
        )

    def _hardlink(self, path: str, m: Member) -> None:
        target = clean(m.linkname)
        real = self.real(target, follow_last=False)
        ino = self.paths.get(real) if real is not None else None
        if ino is None:
            raise LayerRefused(f"hard link /{path} points at /{target}, which does not exist")
        inode = self.inodes[ino]
        if inode.kind == "dir":
            raise LayerRefused(f"hard link /{path} points at the directory /{target}")
        xattrs = dict(inode.xattrs) | m.xattrs
        mode = inode.mode if inode.kind == "symlink" else m.mode & 0o7777
        self.inodes[ino] = replace(inode, uid=m.uid, gid=m.gid, mode=mode, xattrs=tuple(sorted(xattrs.items())))
        self._link(path, ino)

    def _whiteout(self, real_parent: str, base: str) -> None:
        if base == OPAQUE:
            if self.open_lower:
                raise NeedLower(f"opaque directory /{real_parent}")
            for kid in list(self.kids.get(real_parent, ())):
                self._opaque_walk(kid)
            return
        target = clean(posixpath.join(real_parent, base[len(WHITEOUT):]))
        if not target:
            raise LayerRefused(f"a whiteout /{real_parent}/{base} would remove the root")
        removed: list[str] = []
        self.remove_all(target, removed)
        if self._unpacked.intersection(removed):
            raise LayerRefused(f"the layer both creates and whites out /{target} (vfs deletes it, overlay2 "
                               "refuses the layer)")

    def _opaque_walk(self, path: str) -> None:
        if path not in self._unpacked:
            self.remove_all(path)
        else:
            for kid in list(self.kids.get(path, ())):
                self._opaque_walk(kid)

    def apply_layer(self, index: int, members: Iterable[Member]) -> "MergedFS":
        self.begin_layer(index)
        for member in members:
            self.apply(member)
        return self

    def walk(self) -> Iterator[tuple[str, Inode]]:
        for path, ino in self.paths.items():
            yield path, self.inodes[ino]
