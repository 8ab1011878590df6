"""A lean streaming reader of layer blobs: gunzip in big steps, tar headers parsed by hand.

`scan_layer` yields `(Member, data)` for each entry of a layer; a consumer that wants a
regular file's bytes iterates `data` (zero-copy memoryviews of the decompressed buffer)
before asking for the next entry, else the bytes are skipped. This is the hot path
of every rebase and verify: `tarfile`'s per-member object and read overhead, `gzip.GzipFile`
and small reads cost several times the decompression itself.

Invariants:
- the blob comes from `store.iter_blob`, which hashes it as it streams; after the last tar
  entry the rest of the blob is drained, so its digest is checked before the generator
  ends (a caller that saw the generator finish has read a verified blob);
- memory is bounded by one decompressed piece (`INFLATE_OUT`) plus one header, whatever
  the layer or file size (a gzip bomb cannot inflate more than that at once), times the
  read-ahead depth when download + gunzip run ahead in their own thread (`readahead.py`);
- entries read like `tarfile` reads them (names in UTF-8 with surrogateescape, ustar
  prefix, GNU long names/links, PAX `x`/`g` records for path, linkpath, size, uid, gid;
  old-style directories as regular entries with a trailing `/`). Unlike `tarfile`, a bad
  header checksum in the middle is an error, never a silent end of the layer;
- sparse files raise `Unsupported`: `blobstream.map_layer` then reads the layer with `tarfile`.
"""

from __future__ import annotations

import struct
from typing import Iterator

from fleet_tui.errors import FleetError
from fleet_tui.oci.digest import short
from fleet_tui.oci.image import Image, Layer
from fleet_tui.rebase.readahead import read_ahead

try:  # ISA-L inflates about twice as fast as zlib, same format and API
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib as _zlib  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 512
INFLATE_OUT = 1 << 20  # most bytes one decompress call may return
MAX_META = 16 << 20  # PAX / GNU long-name data bigger than this is not a real layer
ZERO_BLOCK = bytes(BLOCK)
REGULAR = (b"0", b"\0", b"7")
DATA_LESS = (b"1", b"2", b"3", b"4", b"5", b"6")  # tarfile skips no data for these types
_SIGNED = struct.Struct("148b8x356b")


class TarFormatError(Exception):
    """The decompressed stream is not a well-formed tar archive."""


class Unsupported(Exception):
    """An entry this reader does not handle (sparse files); use `tarfile` for the layer."""


class Member:
    """One tar entry, with the attributes `tarfile.TarInfo` has for them."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "linkname", "devmajor", "devminor", "sha256")

    def __init__(self, name: str, type: bytes, mode: int, uid: int, gid: int, size: int,
                 linkname: str, devmajor: int, devminor: int, sha256: str = "") -> None:
        self.name, self.type, self.mode, self.uid, self.gid = name, type, mode, uid, gid
        self.size, self.linkname, self.devmajor, self.devminor = size, linkname, devmajor, devminor
        self.sha256 = sha256  # hex digest of the content, filled in by whoever hashed it

    def isreg(self) -> bool:
        return self.type in REGULAR


def _nts(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _num(field: bytes) -> int:
    if field[0] in (0o200, 0o377):  # GNU base-256
        n = int.from_bytes(field[1:], "big")
        return -(256 ** (len(field) - 1) - n) if field[0] == 0o377 else n
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise TarFormatError("invalid number in a tar header") from None


def _pax(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1] not in (b"\0", b""):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("invalid PAX header record") from None
        if space < 0 or length <= 0 or pos + length > len(data):
            raise TarFormatError("invalid PAX header record")
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def inflate(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Decompressed pieces of a gzip stream (several members allowed)."""
    z = _zlib.decompressobj(31)
    for piece in pieces:
        while piece:
            out = z.decompress(piece, INFLATE_OUT)
            if out:
                yield out
            if z.eof:
                piece, z = z.unused_data, _zlib.decompressobj(31)
            else:
                piece = z.unconsumed_tail
    if rest := z.flush():
        yield rest


class TarScan:
    """Tar entries over an iterator of byte pieces (see module docstring)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current entry not consumed yet
        self._pad = 0

    def _take(self, n: int) -> bytes:
        """Exactly `n` bytes, or fewer at the end of the stream."""
        end = self._pos + n
        if end <= len(self._buf):
            out = self._buf[self._pos:end]
            self._pos = end
            return out
        parts, need = [self._buf[self._pos:]], n - (len(self._buf) - self._pos)
        self._buf, self._pos = b"", 0
        while need > 0:
            piece = next(self._pieces, None)
            if piece is None:
                break
            if len(piece) > need:
                parts.append(piece[:need])
                self._buf, self._pos, need = piece, need, 0
            else:
                parts.append(piece)
                need -= len(piece)
        return b"".join(parts)

    def _views(self, n: int) -> Iterator[memoryview]:
        while n > 0:
            if self._pos >= len(self._buf):
                piece = next(self._pieces, None)
                if piece is None:
                    raise TarFormatError("unexpected end of data")
                self._buf, self._pos = piece, 0
            k = min(n, len(self._buf) - self._pos)
            yield memoryview(self._buf)[self._pos:self._pos + k]
            self._pos += k
            n -= k
            self._left -= k

    def data(self) -> Iterator[memoryview]:
        """The current entry's bytes not read yet, as views valid until the next step."""
        return self._views(self._left)

    def _skip_rest(self) -> None:
        for _ in self._views(self._left):
            pass
        if self._pad and len(self._take(self._pad)) != self._pad:
            raise TarFormatError("unexpected end of data")
        self._left = self._pad = 0

    def _meta(self, size: int) -> bytes:
        if size > MAX_META:
            raise TarFormatError(f"tar metadata entry of {size} bytes")
        data = self._take(size + (-size % BLOCK))
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        return data[:size]

    def members(self) -> Iterator[Member]:
        glob: dict[str, str] = {}
        local: dict[str, str] = {}
        long_name = long_link = None
        first = True
        while True:
            self._skip_rest()
            block = self._take(BLOCK)
            if len(block) < BLOCK:
                if block or first:
                    raise TarFormatError("truncated header" if block else "empty file")
                return
            if block == ZERO_BLOCK:
                return
            first = False
            chksum = _num(block[148:156])
            if chksum != 256 + sum(block) - sum(block[148:156]) and chksum != 256 + sum(_SIGNED.unpack(block)):
                raise TarFormatError("bad checksum in a tar header")
            kind, size = block[156:157], _num(block[124:136])
            if kind in (b"L", b"K"):
                value = _nts(self._meta(size))
                long_name, long_link = (value, long_link) if kind == b"L" else (long_name, value)
                continue
            if kind in (b"x", b"g", b"X"):
                records = _pax(self._meta(size))
                (glob if kind == b"g" else local).update(records)
                continue
            if kind == b"S" or any(k.startswith("GNU.sparse") for k in local):
                raise Unsupported("sparse file")
            name = _nts(block[0:100])
            if kind == b"\0" and name.endswith("/"):
                kind = b"5"
            if (prefix := _nts(block[345:500])):
                name = prefix + "/" + name
            linkname = _nts(block[157:257])
            uid, gid = _num(block[108:116]), _num(block[116:124])
            name, linkname = long_name or name, long_link or linkname
            pax = {**glob, **local} if glob else local
            if pax:
                name, linkname = pax.get("path", name), pax.get("linkpath", linkname)
                uid, gid, size = (_pax_int(pax, "uid", uid), _pax_int(pax, "gid", gid), _pax_int(pax, "size", size))
            if kind == b"5":
                name = name.rstrip("/")
            dev = (_num(block[329:337]), _num(block[337:345])) if kind in (b"3", b"4") else (0, 0)
            member = Member(name, kind, _num(block[100:108]), uid, gid, size, linkname, *dev)
            local, long_name, long_link = {}, None, None
            if kind not in DATA_LESS:
                self._left, self._pad = size, -size % BLOCK
            yield member


def _pax_int(pax: dict[str, str], key: str, default: int) -> int:
    if key not in pax:
        return default
    try:
        return int(pax[key])
    except ValueError:
        return 0  # as tarfile does


DECOMPRESS_ERRORS = (_zlib.error, EOFError)


def layer_bytes(image: Image, layer: Layer) -> Iterator[bytes]:
    """The uncompressed tar bytes of `layer` (gzip or plain; zstd refused); the blob's digest is
    checked when the iterator is run to its end."""
    raw = image.store.iter_blob(image.repo, layer.digest, layer.size)
    first = next(raw, b"")
    while len(first) < 4 and (more := next(raw, None)) is not None:
        first += more
    if first.startswith(ZSTD_MAGIC):
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is zstd-compressed; rebase reads gzip or plain tar layers only")
    pieces = _chain(first, raw)
    return inflate(pieces) if first.startswith(GZIP_MAGIC) else pieces


def scan_layer(image: Image, layer: Layer, ahead: bool = False) -> Iterator[tuple[Member, Iterator[memoryview]]]:
    """Each entry of `layer` with its data (read it before the next entry, else it is skipped);
    verifies the blob at the end.

    `ahead`: download and gunzip in a read-ahead thread (when this is the only layer read).
    """
    pieces = layer_bytes(image, layer)
    if ahead:
        pieces = read_ahead(pieces)
    scan = TarScan(pieces)
    try:
        for member in scan.members():
            yield member, scan.data()
        for _ in pieces:  # read to the end so that the blob's digest gets verified
            pass
    except TarFormatError as exc:
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is corrupted or not a tar archive ({exc})") from None
    except DECOMPRESS_ERRORS as exc:
        raise FleetError(f"layer {short(layer.digest)} of {image.ref} is corrupted ({type(exc).__name__}: {exc})") from None


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
