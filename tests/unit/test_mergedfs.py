"""The merged-filesystem model follows moby's layer unpacking (dockerd 20.10, the engine the
integration tests run as the oracle); each rule here is one a naive overlay gets wrong."""

from __future__ import annotations

import pytest

from fleet_tui.rebase.mergedfs import IMPLIED_MODE, LayerRefused, MergedFS, NeedLower, clean
from fleet_tui.rebase.tarscan import Member


def m(name: str, kind: bytes = b"0", mode: int = 0o644, uid: int = 0, link: str = "", sha: str = "",
      xattrs: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)) -> Member:
    member = Member(name, kind, mode, uid, 0, len(sha), link, dev[0], dev[1], sha)
    member.xattrs = xattrs or {}
    return member


def fs_of(*layers: list[Member]) -> MergedFS:
    fs = MergedFS()
    for i, layer in enumerate(layers):
        fs.apply_layer(i, layer)
    return fs


def test_names_are_cleaned_inside_the_root():
    assert [clean(n) for n in ("./a/./b", "usr//bin/x", "/abs", "../../etc/x", "a/b/../c", "d/")] == \
        ["a/b", "usr/bin/x", "abs", "etc/x", "a/c", "d"]


def test_missing_parents_are_implied_root_owned_0600():
    fs = fs_of([m("srv/data/file", sha="aa")])
    for d in ("srv", "srv/data"):
        node = fs.node(d)
        assert node.kind == "dir" and node.mode == IMPLIED_MODE == 0o600 and node.implied
    assert not fs_of([m("srv/", b"5", 0o750), m("srv/x", sha="a")]).node("srv").implied


def test_entries_below_a_symlinked_parent_land_in_its_target():
    fs = fs_of([m("usr/", b"5"), m("usr/lib/", b"5"), m("lib", b"2", link="usr/lib")], [m("lib/x.so", sha="x")])
    assert fs.node("usr/lib/x.so") is not None and fs.node("lib/x.so") is None
    fs = fs_of([m("usr/", b"5"), m("usr/lib/", b"5"), m("lib", b"2", link="usr/lib")], [m("lib/", b"5"), m("lib/x", sha="x")])
    assert fs.node("lib").kind == "dir" and fs.node("lib/x") is not None  # an entry of its own replaces the link


def test_hard_links_share_the_inode_and_the_link_header_sets_its_metadata():
    fs = fs_of([m("a", sha="c1", mode=0o644)], [m("b", b"1", link="a", mode=0o600, uid=7, xattrs={"user.k": "v"})])
    assert fs.node("a") == fs.node("b") and fs.node("a").mode == 0o600 and fs.node("a").uid == 7
    assert fs.node("a").xattrs == (("user.k", "v"),)
    assert fs.links() == {fs.paths["a"]: frozenset({"a", "b"})}
    fs.apply_layer(2, [m("a", sha="c2")])  # replacing one name leaves the other on the old inode
    assert fs.node("b").sha256 == "c1" and fs.links() == {}
    for bad in ([m("l", b"1", link="missing")], [m("d/", b"5"), m("l", b"1", link="d")]):
        with pytest.raises(LayerRefused):
            fs_of(bad)


def test_whiteouts_and_opaque_directories():
    base = [m("d/", b"5"), m("d/a", sha="a"), m("d/b", sha="b"), m("d/sub/", b"5"), m("d/sub/c", sha="c")]
    assert sorted(fs_of(base, [m("d/.wh.a")]).paths) == ["", "d", "d/b", "d/sub", "d/sub/c"]
    assert sorted(fs_of(base, [m("d/.wh.")]).paths) == [""]  # `.wh.` alone: the directory itself
    opaque = fs_of(base, [m("d/", b"5"), m("d/new", sha="n"), m("d/.wh..wh..opq")])
    assert sorted(opaque.paths) == ["", "d", "d/new"]
    implied = fs_of(base, [m("d/sub/x", sha="x"), m("d/.wh..wh..opq")])  # d/sub has no entry of its own
    assert sorted(implied.paths) == ["", "d"]
    with pytest.raises(LayerRefused, match="both creates and whites out"):
        fs_of([m("x", sha="x"), m(".wh.x")])
    with pytest.raises(LayerRefused, match="both creates and whites out"):
        fs_of([m("d/", b"5"), m("d/f", sha="f"), m(".wh.d")])


def test_directories_merge_metadata_and_xattrs_files_are_replaced():
    fs = fs_of([m("d/", b"5", 0o755, xattrs={"user.a": "1"}), m("f", sha="1", xattrs={"user.a": "1"})],
               [m("d/", b"5", 0o700, uid=5, xattrs={"user.b": "2"}), m("f", sha="2")])
    assert fs.node("d").mode == 0o700 and fs.node("d").uid == 5
    assert fs.node("d").xattrs == (("user.a", "1"), ("user.b", "2"))
    assert fs.node("f").xattrs == ()  # a new file: a new inode, no old xattrs


def test_global_headers_root_entries_aufs_metadata_and_bad_types():
    fs = fs_of([m("etc/", b"5"), m("etc/passwd", sha="p")], [m("etc/passwd", b"g"), m("tmp/GlobalHead.1", b"g")])
    assert fs.node("etc/passwd") is None and fs.node("tmp").implied and fs.node("tmp/GlobalHead.1") is None
    assert fs_of([m("./", b"5", 0o700)]).node("").mode == 0o755  # the root's own entry: not modelled
    assert fs_of([m(".wh..wh.plnk/123", sha="x")]).node(".wh..wh.plnk/123") is None
    for kind in (b"7", b"X", b"V"):
        with pytest.raises(LayerRefused, match="entry type"):
            fs_of([m("x", kind)])


def test_an_open_lower_part_is_never_guessed():
    for layer in ([m("d/.wh.x")], [m("a/b", sha="x")], [m("l", b"1", link="lower-file")], [m("d/", b"5"), m("d/.wh..wh..opq")]):
        with pytest.raises(NeedLower):
            MergedFS(open_lower=True).apply_layer(0, layer)
    fs = MergedFS(open_lower=True).apply_layer(0, [m("d/", b"5"), m("d/x", sha="x"), m("d/y", b"1", link="d/x")])
    assert sorted(fs.paths) == ["", "d", "d/x", "d/y"]
