"""Read the entries of many layers at once: from the layer index, else each blob streamed once.

How rebase, verify and diff read layers (`read_layers`; `tree.read_range` for one image).
A wanted layer comes from the layer index when it holds that exact layer (`layerindex.py`:
in memory once loaded or saved by this index object, else its file); otherwise its blob is
streamed — download, blob digest, inflate, diff_id, tar parse and a sha256 per file
(`read_layer`) — and then indexed. ISA-L/zlib and hashlib release the GIL, so streams run in
threads, up to one per core (`WORKERS`), biggest blob first; a blob that is streamed (nearly)
alone — at least `ALONE` times the bytes of every other stream of the call together — gets a
read-ahead thread (`readahead.py`: download + inflate ahead of parse + hashing), so that one
blob also keeps two cores busy.

Invariants:
- within one call a blob (digest + diff_id) is streamed at most once, however many wanted
  layers name it, and not at all when the index holds it;
- entries are returned only for layers read to their end with every check held (blob digest,
  end of the compressed stream, diff_id) or taken from the index, which holds only such
  layers (its invariants);
- the first failure is raised after the streams already running stopped; queued ones never
  start; results come in the order asked, whatever order the streams finish in.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from fleet_tui.oci.digest import DigestVerifier
from fleet_tui.oci.image import Image, Layer
from fleet_tui.oci.layer import LayerResult
from fleet_tui.oci.reference import Reference
from fleet_tui.rebase.blobstream import map_layer
from fleet_tui.rebase.layerindex import LayerIndex
from fleet_tui.rebase.tarscan import Member

if TYPE_CHECKING:
    from fleet_tui.rebase.spooling import Keeper

WORKERS = max(2, min(4, os.cpu_count() or 2))
ALONE = 3
Progress = Callable[[str, int, int], None]  # (what, n, of)


def _hashed(member: Member, data: Iterable[memoryview | bytes]) -> Member:
    if member.isreg():
        h = hashlib.sha256()
        for view in data:
            h.update(view)
        member.sha256 = h.hexdigest()
    return member


def read_layer(image: Image, index: int, ahead: bool = False, keeper: "Keeper | None" = None) -> list[Member]:
    """Every entry of one layer, regular files hashed; returned only once the whole layer was
    read and checked (blob digest, end of stream, diff_id). `keeper` (`spooling.Keeper`) keeps
    the bytes of files a rebase may ship, during this same read."""
    if keeper is None:
        return map_layer(image, image.layers[index], _hashed, ahead)
    return keeper.commit(index, map_layer(image, image.layers[index], keeper.visitor(), ahead))


def layer_members(image: Image, index: int, cache: LayerIndex | None = None, ahead: bool = False,
                  keeper: "Keeper | None" = None) -> list[Member]:
    """The layer's entries from the index if it has them, else from the blob (then indexed)."""
    layer = image.layers[index]
    members = cache.load(layer) if cache is not None else None
    if members is None:
        members = read_layer(image, index, ahead, keeper)
        if cache is not None:
            cache.save(layer, members)
    return members


@dataclass(frozen=True)
class Want:
    """Layer `index` of `image`; `keeper`: keep file bytes while streaming it (NEW's layers)."""

    image: Image
    index: int
    keeper: "Keeper | None" = None

    @property
    def layer(self) -> Layer:
        return self.image.layers[self.index]

    @property
    def key(self) -> tuple[str, str]:
        return (self.layer.digest, self.layer.diff_id)


def read_layers(wants: list[Want], cache: LayerIndex | None, progress: Progress | None = None,
                label: str = "layers") -> list[list[Member]]:
    """The entries of each wanted layer, in the order asked (module docstring)."""
    jobs: dict[tuple[str, str], Want] = {}
    for w in wants:
        if w.key not in jobs or (w.keeper is not None and jobs[w.key].keeper is None):
            jobs[w.key] = w  # one stream per blob; the one that keeps bytes, if any does
    streamed = {k for k, w in jobs.items() if cache is None or not cache.known(w.layer)}
    total = sum(jobs[k].layer.size for k in streamed)
    order = sorted(jobs, key=lambda k: (k not in streamed, -jobs[k].layer.size))

    def ahead(k: tuple[str, str]) -> bool:
        size = jobs[k].layer.size
        return k in streamed and size > 0 and size >= ALONE * (total - size)

    def run(k: tuple[str, str]) -> list[Member]:
        w = jobs[k]
        return layer_members(w.image, w.index, cache, ahead(k), w.keeper)

    results: dict[tuple[str, str], list[Member]] = {}
    if len(order) == 1:
        results[order[0]] = run(order[0])
    elif order:
        pool = ThreadPoolExecutor(min(WORKERS, len(order)), thread_name_prefix="layer-read")
        try:
            futures: dict[Future, tuple[str, str]] = {pool.submit(run, k): k for k in order}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    results[futures[f]] = f.result()  # the first failure is raised here
                    if progress:
                        progress(f"reading {label}", len(results), len(order))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[w.key] for w in wants]


class _WrittenBlob:
    """The one blob of a file this process wrote (a rebase's new layer), as a store reads it."""

    kind = name = "written"

    def __init__(self, path: str) -> None:
        self.path = path

    def iter_blob(self, repo: str, digest: str, size: int | None = None, offset: int = 0,
                  verifier: DigestVerifier | None = None, chunk: int = 1 << 20) -> Iterator[bytes]:
        verifier = DigestVerifier(digest, size)
        with open(self.path, "rb") as fh:
            while piece := fh.read(chunk):
                verifier.update(piece)
                yield piece
        verifier.finish()


def index_written(path: str, result: LayerResult, media_type: str, owner: Image, ref: Reference,
                  cache: LayerIndex) -> list[Member]:
    """Index a layer this process wrote to `path`, read back through every check a pulled blob
    gets (blob digest, end of stream, diff_id, tar headers as devices read them)."""
    layer = Layer(result.digest, result.size, media_type, result.diff_id)
    image = replace(owner, ref=ref, store=_WrittenBlob(path), layers=[layer])  # type: ignore[arg-type]
    members = read_layer(image, 0)
    cache.save(layer, members)
    return members
