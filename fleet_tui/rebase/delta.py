"""Write the one new layer of a rebase: B's entries for the changed paths + whiteouts.

File contents come from the spools the diff's one read of B kept (`spooling.Keeper`); what it
did not keep is extracted by streaming only the layers that hold it (`spools_for`: always
from the blob, never from the layer index, which holds no bytes). Spools are
content-addressed by sha256 (a file's bytes are checked against B's model before they are
written), in memory up to `spooling.SPOOL_IN_MEMORY`, else in a temp file. Entries keep B's
type, mode, owner, xattrs and device numbers; mtimes are fixed. A file whose zero runs save
at least `sparse.SPARSE_MIN` is written as a PAX 1.0 sparse file (`fleet_tui.oci.sparse`),
whether NEW stored it sparse or not: engines read its holes as zeros, so the merged
filesystem's bytes are NEW's, and the layer costs the file's data, not its apparent size.

A directory NEW's engine implied (no entry of its own) is not written where OLD lacks it and
an entry below it is: the device's engine implies it again, with the mode its version uses.

Order, as the engine applies entries one by one (see mergedfs.py):
1. whiteouts first — they only ever remove what OLD holds, never an entry of this layer;
2. then every other entry, parents before children (sorted by path components);
3. hard links last, each to the first-written path of its inode, which exists by then.
A hard-link group of B is shipped as one file plus links (never as copies).

Refused (one line, nothing written): a directory that must *lose* xattrs (a directory entry
only adds to the xattrs the engine finds there).
Invariant: the same changes always give the same bytes (hence digests).
"""

from __future__ import annotations

import os
from typing import Iterable

from fleet_tui.errors import FleetError
from fleet_tui.oci.image import Image
from fleet_tui.oci.layer import Entry, LayerResult, whiteout, write_layer
from fleet_tui.rebase.blobstream import map_layer
from fleet_tui.rebase.diff import Change
from fleet_tui.rebase.spooling import Keeper, LazyFile, Spool, spool_bytes
from fleet_tui.rebase.tarscan import Member
from fleet_tui.rebase.tree import Progress

__all__ = ["Spool", "LazyFile", "extract", "entries_for", "wanted_from", "build_delta", "spools_for"]


def extract(image: Image, wanted: dict[int, set[str]], workdir: str,
            progress: Progress | None = None) -> dict[tuple[int, str], Spool]:
    """Spool the files named `wanted[layer_index]` (entry names) from those layers of `image`,
    keyed by (layer index, sha256 of the content)."""
    spools: dict[tuple[int, str], Spool] = {}
    for index in sorted(wanted):
        if progress:
            progress("extracting files from NEW layer", index + 1, len(image.layers))
        names = wanted[index]

        def keep(member: Member, data: Iterable[bytes | memoryview]) -> tuple[str, Spool] | None:
            return spool_bytes(data, member.size, workdir) if member.isreg() and member.name in names else None
        for digest, spool in map_layer(image, image.layers[index], keep):
            spools[(index, digest)] = spool
    return spools


def _check_dir_xattrs(c: Change) -> None:
    if c.old is not None and c.new is not None and c.old.kind == c.new.kind == "dir":
        lost = sorted({k for k, _ in c.old.xattrs} - {k for k, _ in c.new.xattrs})
        if lost:
            raise FleetError(f"directory /{c.path} loses xattrs {', '.join(lost)} in NEW; a layer cannot remove a "
                             f"directory's xattrs — deploy NEW instead of a rebase")


def entries_for(writes: list[Change], whiteouts: list[Change], spools: dict[tuple[int, str], Spool]) -> list[Entry]:
    """The layer's entries in the order the engine must apply them (module docstring)."""
    first = [whiteout(c.path) for c in sorted(whiteouts, key=lambda c: c.path.split("/"))]
    body: list[Entry] = []
    links: list[Entry] = []
    leader: dict[frozenset[str], str] = {}  # hard-link group → the path written as the file
    written = {c.path for c in writes}
    for c in sorted(writes, key=lambda c: c.path.split("/") if c.path else []):
        node = c.new
        assert node is not None
        if node.implied and c.old is None and any(p.startswith(c.path + "/") for p in written):
            continue  # the engine implies it again below the entries written here, with its own mode
        entry = Entry(c.path, kind=node.kind, mode=node.mode, uid=node.uid, gid=node.gid, linkname=node.target,
                      xattrs=dict(node.xattrs), dev=node.dev)
        if c.new_links:
            if c.new_links in leader:
                links.append(Entry(c.path, kind="hardlink", mode=node.mode, uid=node.uid, gid=node.gid,
                                   linkname=leader[c.new_links], xattrs=dict(node.xattrs)))
                continue
            leader[c.new_links] = c.path
        if node.kind == "file":
            spool = spools.get((node.source[0], node.sha256))
            if spool is None:
                raise FleetError(f"could not read /{c.path} from NEW's layer {node.source[0] + 1}; the image may be corrupted")
            entry.source, entry.size = LazyFile(spool, node.size), node.size  # type: ignore[assignment]
            entry.sparse = spool.data_regions(node.size)  # a mostly-hole file: PAX 1.0 sparse
        body.append(entry)
    return first + body + links


def wanted_from(writes: list[Change]) -> dict[int, set[str]]:
    wanted: dict[int, set[str]] = {}
    for c in writes:
        if c.new is not None and c.new.kind == "file":
            wanted.setdefault(c.new.source[0], set()).add(c.new.source[1])
    return wanted


def build_delta(image: Image, writes: list[Change], whiteouts: list[Change], workdir: str,
                progress: Progress | None = None, compression: str = "gzip",
                spools: dict[tuple[int, str], Spool] | None = None) -> tuple[LayerResult, str]:
    """Write the layer to a file in `workdir`; returns its result and the file path. `spools`:
    files already extracted (for several candidate layers of one rebase: extracted once)."""
    for c in writes:
        _check_dir_xattrs(c)
    if spools is None:
        spools = extract(image, wanted_from(writes), workdir, progress)
    entries = entries_for(writes, whiteouts, spools)
    path = os.path.join(workdir, "layer.tar.gz")
    with open(path, "wb") as out:
        result = write_layer(entries, out=out, ordered=True, compression=compression)
    return result, path


def spools_for(image: Image, writes: list[Change], keeper: Keeper,
               progress: Progress | None = None) -> dict[tuple[int, str], Spool]:
    """The spools `writes` need: what the keeper kept while the diff read NEW, plus the rest
    extracted now from the layers that hold it (only those layers are read again)."""
    missing: dict[int, set[str]] = {}
    for c in writes:
        node = c.new
        if node is not None and node.kind == "file" and (node.source[0], node.sha256) not in keeper.spools:
            missing.setdefault(node.source[0], set()).add(node.source[1])
    spools = dict(keeper.spools)
    if missing:
        spools.update(extract(image, missing, keeper.workdir, progress))
    return spools
