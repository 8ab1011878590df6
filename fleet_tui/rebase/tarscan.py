"""A lean streaming reader of layer tar streams, headers parsed the way devices parse them.

`scan_layer` yields `(Member, data)` for each entry of a layer; a consumer that wants a
regular file's bytes iterates `data` (zero-copy memoryviews of the decompressed buffer)
before asking for the next entry, else the bytes are skipped. This is the hot path
of every rebase and verify: `tarfile`'s per-member object and read overhead, `gzip.GzipFile`
and small reads cost several times the decompression itself.

Invariants:
- the stream comes from `layerstream.layer_bytes`; after the last tar entry the rest is
  drained, so blob digest, end of the compressed stream and diff_id are checked before the
  generator ends (a caller that saw the generator finish has read a layer a device accepts);
- memory is bounded by one decompressed piece (`INFLATE_OUT`) plus one header, whatever
  the layer or file size (a gzip bomb cannot inflate more than that at once), times the
  read-ahead depth when download + gunzip run ahead in their own thread (`readahead.py`);
- headers read as Go's archive/tar reads them — the reader of every device's engine (moby):
  format by magic/version/trailer (USTAR/PAX and STAR use the name prefix at byte 345, GNU
  keeps atime/ctime there, V7 has neither); numbers octal with spaces/NULs trimmed, or
  base-256; GNU long names/links; PAX `x` records for path, linkpath, size, uid, gid and
  `SCHILY.xattr.*`; PAX *global* `g` headers are NOT applied to later entries (archive/tar
  returns them as entries, moby ignores them); a legacy `\0` type with a trailing `/` is a
  directory. A bad checksum, a bad PAX number, or a zero block followed by data is an error,
  never a silent end of the layer; an empty stream is an empty layer;
- sparse files raise `Unsupported`: `blobstream.map_layer` then reads the layer with `tarfile`.
"""

from __future__ import annotations

import struct
from typing import Iterator

from fleet_tui.oci.image import Image, Layer
from fleet_tui.rebase.layerstream import layer_bytes, layer_error
from fleet_tui.rebase.readahead import read_ahead

BLOCK = 512
MAX_META = 1 << 20  # archive/tar maxSpecialFileSize: bigger PAX / GNU long-name data fails the read
ZERO_BLOCK = bytes(BLOCK)
REGULAR = (b"0", b"\0", b"7")
XATTR = "SCHILY.xattr."
DATA_LESS = (b"1", b"2", b"3", b"4", b"5", b"6")  # tarfile skips no data for these types
_SIGNED = struct.Struct("148b8x356b")


class TarFormatError(Exception):
    """The decompressed stream is not a well-formed tar archive."""


class Unsupported(Exception):
    """An entry this reader does not handle (sparse files); use `tarfile` for the layer."""


class Member:
    """One tar entry, with the attributes `tarfile.TarInfo` has for them."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "linkname", "devmajor", "devminor", "sha256", "xattrs")

    def __init__(self, name: str, type: bytes, mode: int, uid: int, gid: int, size: int,
                 linkname: str, devmajor: int, devminor: int, sha256: str = "") -> None:
        self.name, self.type, self.mode, self.uid, self.gid = name, type, mode, uid, gid
        self.size, self.linkname, self.devmajor, self.devminor = size, linkname, devmajor, devminor
        self.sha256 = sha256  # hex digest of the content, filled in by whoever hashed it
        self.xattrs: dict[str, str] = {}  # from PAX SCHILY.xattr.* records (values as text, surrogateescape)

    def isreg(self) -> bool:
        return self.type in REGULAR


def _nts(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _num(field: bytes) -> int:
    """archive/tar parseNumeric: base-256 when the top bit is set, else octal with
    leading/trailing spaces and NULs trimmed (an empty field is 0)."""
    if field[0] & 0x80:
        n = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return n - (1 << (8 * len(field) - 1)) if field[0] & 0x40 else n
    text = field.strip(b" \0")
    try:
        return int(text, 8) if text else 0
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
        if self._pad:
            self._take(self._pad)  # cut inside the last padding: archive/tar ends cleanly there
        self._left = self._pad = 0

    def _meta(self, size: int) -> bytes:
        if size > MAX_META:
            raise TarFormatError(f"tar metadata entry of {size} bytes")
        data = self._take(size + (-size % BLOCK))
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        return data[:size]

    def members(self) -> Iterator[Member]:
        """Entries as Go's archive/tar returns them, less those moby ignores (PAX globals)."""
        local: dict[str, str] = {}
        long_name = long_link = None
        while True:
            self._skip_rest()
            block = self._take(BLOCK)
            if len(block) < BLOCK:
                if block:
                    raise TarFormatError("truncated header")
                return  # end of data at a header boundary: Go's reader ends (an empty layer too)
            if block == ZERO_BLOCK:
                second = self._take(BLOCK)
                if second and second != ZERO_BLOCK:  # archive/tar: "zero block and then non-zero block"
                    raise TarFormatError("a zero block followed by data")
                return
            chksum = _num(block[148:156])
            if chksum != 256 + sum(block) - sum(block[148:156]) and chksum != 256 + sum(_SIGNED.unpack(block)):
                raise TarFormatError("bad checksum in a tar header")
            fmt = _format(block)
            kind, size = block[156:157], _num(block[124:136])
            if kind in (b"L", b"K"):
                value = _nts(self._meta(size))
                long_name, long_link = (value, long_link) if kind == b"L" else (long_name, value)
                continue
            if kind == b"x":  # a second `x` replaces the first (archive/tar), it does not add to it
                local = {k: v for k, v in _pax(self._meta(size)).items() if v != ""}  # empty: keep the header's
                continue
            if kind == b"g":
                # archive/tar returns a global header as an entry of its own (named by its own
                # `path` record if any), its records not merged into later entries; moby ignores
                # it after creating its parents and removing what is at its name.
                records = _pax(self._meta(size))
                yield Member(records.get("path") or _nts(block[0:100]), kind, 0, 0, 0, 0, "", 0, 0)
                local, long_name, long_link = {}, None, None
                continue
            if kind == b"S":  # archive/tar keeps the type; moby's createTarFile refuses it
                raise TarFormatError("an old-GNU sparse entry (type S), which engines refuse")
            if any(k.startswith("GNU.sparse") for k in local):
                raise Unsupported("sparse file")
            name = _nts(block[0:100])
            if fmt in ("ustar", "star") and (prefix := _nts(block[345:500] if fmt == "ustar" else block[345:476])):
                name = prefix + "/" + name  # GNU headers keep atime/ctime at 345: never a prefix there
            linkname = _nts(block[157:257])
            uid, gid = _num(block[108:116]), _num(block[116:124])
            xattrs: dict[str, str] = {}
            if local:
                name, linkname = local.get("path", name), local.get("linkpath", linkname)
                uid, gid, size = (_pax_int(local, "uid", uid), _pax_int(local, "gid", gid), _pax_int(local, "size", size))
                xattrs = {k[len(XATTR):]: v for k, v in local.items() if k.startswith(XATTR)}
            name, linkname = long_name or name, long_link or linkname  # GNU L/K win over PAX path/linkpath
            raw_kind = kind
            if kind == b"\0":  # TypeRegA, after long names and PAX: a trailing slash makes a directory
                kind = b"5" if name.endswith("/") else b"0"
            if kind == b"5":
                name = name.rstrip("/")
            dev = (_num(block[329:337]), _num(block[337:345])) if kind in (b"3", b"4") and fmt != "v7" else (0, 0)
            member = Member(name, kind, _num(block[100:108]), uid, gid, size, linkname, *dev)
            if xattrs:
                member.xattrs = xattrs
            local, long_name, long_link = {}, None, None
            if raw_kind not in DATA_LESS:
                self._left, self._pad = size, -size % BLOCK
            yield member


def _format(block: bytes) -> str:
    """archive/tar's format detection (format.go getFormat): magic, version, STAR trailer."""
    magic, version = block[257:263], block[263:265]
    if magic == b"ustar\0":
        return "star" if block[508:512] == b"tar\0" else "ustar"
    if magic == b"ustar " and version == b" \0":
        return "gnu"
    return "v7"


def _pax_int(pax: dict[str, str], key: str, default: int) -> int:
    if key not in pax:
        return default
    try:
        value = int(pax[key], 10)
    except ValueError:
        raise TarFormatError(f"invalid PAX {key} {pax[key]!r}") from None  # archive/tar: ErrHeader
    if value < 0:
        raise TarFormatError(f"negative PAX {key}")
    return value


def scan_layer(image: Image, layer: Layer, ahead: bool = False) -> Iterator[tuple[Member, Iterator[memoryview]]]:
    """Each entry of `layer` with its data (read it before the next entry, else it is skipped).
    The generator ends only after the whole stream was read and checked (`layerstream`).

    `ahead`: download and gunzip in a read-ahead thread (when this is the only layer read).
    """
    pieces = layer_bytes(image, layer)
    if ahead:
        pieces = read_ahead(pieces)
    scan = TarScan(pieces)
    try:
        for member in scan.members():
            yield member, scan.data()
        for _ in pieces:  # read to the end: blob digest, end of stream and diff_id get checked
            pass
    except TarFormatError as exc:
        raise layer_error(image, layer, f"its tar stream is malformed ({exc})") from None
