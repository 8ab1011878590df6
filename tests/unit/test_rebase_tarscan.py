"""The lean tar scanner reads what `tarfile` reads (all formats and entry kinds a layer
has, in pieces of any size), refuses malformed archives, and hands sparse files back."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from fleet_tui.rebase.layerstream import inflate
from fleet_tui.rebase.tarscan import TarFormatError, TarScan, Unsupported

LONG = "usr/lib/python3/site-packages/" + "very-long-directory-name/" * 8 + "module.py"


def _archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.size, ti.mode, ti.uid, ti.gid = kind, len(data), 0o644, 1000, 1000
            for key, value in attrs.items():
                setattr(ti, key, value)
            tar.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("usr/", tarfile.DIRTYPE, mode=0o755)
        add("usr/bin/tool", data=b"#!/bin/sh\necho hi\n" * 100, mode=0o4755)
        add("usr/bin/empty")
        add("usr/bin/big", data=bytes(range(256)) * 5000)  # spans many pieces
        add(LONG, data=b"print('long')\n")  # GNU long name / PAX path / ustar prefix
        add("usr/bin/link", tarfile.SYMTYPE, linkname="../lib/" + "x" * 120 if fmt != tarfile.USTAR_FORMAT else "tool")
        add("usr/bin/hard", tarfile.LNKTYPE, linkname="usr/bin/tool")
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("run/fifo", tarfile.FIFOTYPE)
        add("usr/share/café/ünïcode.txt" if fmt != tarfile.USTAR_FORMAT else "usr/share/plain.txt", data=b"x")
        add("usr/lib/.wh.gone")
        add("usr/share/.wh..wh..opq")
        if fmt == tarfile.PAX_FORMAT:
            add("big/uid", data=b"owned", uid=10_000_000, pax_headers={"SCHILY.xattr.user.k": "v"})
    return buf.getvalue()


def _tarfile_view(raw: bytes) -> list[tuple]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
        for m in tar:
            fh = tar.extractfile(m) if m.isreg() else None
            digest = hashlib.sha256(fh.read()).hexdigest() if fh else ""
            out.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname, m.devmajor, m.devminor, digest))
    return out


def _scan_view(pieces) -> list[tuple]:
    scan, out = TarScan(iter(pieces)), []
    for m in scan.members():
        digest = ""
        if m.isreg():
            h = hashlib.sha256()
            for view in scan.data():
                h.update(view)
            digest = h.hexdigest()
        out.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname, m.devmajor, m.devminor, digest))
    return out


def _split(data: bytes, n: int) -> list[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("piece", [7, 512, 65536, 1 << 22])
def test_scan_equals_tarfile(fmt, piece):
    raw = _archive(fmt)
    expected = _tarfile_view(raw)
    assert len(expected) >= 12
    assert _scan_view(_split(raw, piece)) == expected
    gz = gzip.compress(raw[: len(raw) // 2], mtime=0) + gzip.compress(raw[len(raw) // 2:], mtime=0)  # two members
    assert _scan_view(inflate(iter(_split(gz, piece)))) == expected


def test_unread_data_is_skipped():
    scan = TarScan(iter(_split(_archive(tarfile.PAX_FORMAT), 1000)))
    names = [m.name for m in scan.members()]  # never reads file data
    assert names == [row[0] for row in _tarfile_view(_archive(tarfile.PAX_FORMAT))]


def test_malformed_archives_are_errors_not_a_silent_end():
    raw = bytearray(_archive(tarfile.GNU_FORMAT))
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tar:
        middle = tar.getmembers()[5].offset
    raw[middle + 10] ^= 0x55  # a header in the middle (tarfile would just stop there)
    with pytest.raises(TarFormatError):
        _scan_view([bytes(raw)])
    good = _archive(tarfile.GNU_FORMAT)
    with pytest.raises(TarFormatError):
        _scan_view([good[:512 * 4 + 100]])  # data cut short
    assert _scan_view([b""]) == []  # an empty layer: archive/tar reads no entry, dockerd accepts it
    with pytest.raises(TarFormatError):
        _scan_view([bytes(512) + good[:512]])  # a zero block then a header: archive/tar's ErrHeader


def test_pax_sparse_entries_are_handed_back_and_old_gnu_sparse_refused():
    ti = tarfile.TarInfo("var/sparse")
    ti.type = tarfile.GNUTYPE_SPARSE
    with pytest.raises(TarFormatError, match="type S"):  # moby: "unhandled tar header type 83"
        _scan_view([ti.tobuf(tarfile.GNU_FORMAT) + bytes(1024)])
    pax = tarfile.TarInfo("var/sparse")
    pax.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": "4096"}
    with pytest.raises(Unsupported):
        _scan_view([pax.tobuf(tarfile.PAX_FORMAT) + bytes(1024)])


def test_read_ahead_passes_pieces_errors_and_stops_its_producer():
    from fleet_tui.rebase.readahead import read_ahead

    assert list(read_ahead(iter([b"a", b"b", b"c"]), depth=1)) == [b"a", b"b", b"c"]

    def failing():
        yield b"ok"
        raise ValueError("digest mismatch")
    got = read_ahead(failing())
    assert next(got) == b"ok"
    with pytest.raises(ValueError, match="digest mismatch"):
        next(got)

    produced, closed = [], []

    def endless():
        try:
            while True:
                produced.append(1)
                yield b"x"
        finally:
            closed.append(True)
    it = read_ahead(endless(), depth=2)
    assert next(it) == b"x"
    it.close()  # the consumer stops early: the producer is stopped and its source closed
    assert closed == [True] and len(produced) <= 5


def test_scan_with_read_ahead_equals_without():
    raw = gzip.compress(_archive(tarfile.PAX_FORMAT), mtime=0)
    from fleet_tui.rebase.readahead import read_ahead
    assert _scan_view(read_ahead(inflate(iter(_split(raw, 4096))))) == _tarfile_view(_archive(tarfile.PAX_FORMAT))
