"""Auto mode against a real docker-registry: added/changed/deleted files, a deleted directory,
symlinks, mode- and owner-only changes, opaque dirs, type changes, hard links; verify."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

from fleet_tui.cli import main
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import Entry, opaque, whiteout
from fleet_tui.rebase import rebase, verify_images
from tests.support.images import noise, push_layers

BASE = [
    Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=x\n"), Entry("etc/conf", data=b"a=1\n"),
    Entry("bin", kind="dir", mode=0o755), Entry("bin/tool", data=b"\x7fELF tool", mode=0o755),
    Entry("srv", kind="dir", mode=0o755), Entry("srv/owned", data=b"mine"),
    Entry("data", kind="dir", mode=0o755), Entry("data/old", kind="dir", mode=0o755),
    Entry("data/old/x", data=b"x"), Entry("data/old/sub", kind="dir", mode=0o755), Entry("data/old/sub/y", data=b"y"),
    Entry("lib", kind="dir", mode=0o755), Entry("lib/gone.txt", data=b"bye"),
    Entry("lib/link", kind="symlink", linkname="target1"), Entry("lib/keep-link", kind="symlink", linkname="/etc/os-release"),
    Entry("opq", kind="dir", mode=0o755), Entry("opq/a", data=b"a"), Entry("opq/b", data=b"b"),
    Entry("swap", data=b"i am a file"),
    Entry("big.bin", data=noise(300_000, 4)),
]
DEPS_OLD = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
            Entry("usr/lib/libfoo.so.1", data=noise(50_000, 1), mode=0o755)]
DEPS_NEW = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
            Entry("usr/lib/libfoo.so.1", data=noise(50_000, 2), mode=0o755),
            Entry("usr/lib/libbar.so", data=b"bar", mode=0o755)]
TOP_NEW = [
    whiteout("data/old"), whiteout("lib/gone.txt"), opaque("opq"), Entry("opq/c", data=b"c"),
    Entry("etc/conf", data=b"a=2\n"), Entry("bin/tool", data=b"\x7fELF tool", mode=0o700),
    Entry("srv/owned", data=b"mine", uid=1000, gid=1000), Entry("lib/link", kind="symlink", linkname="target2"),
    Entry("swap", kind="dir", mode=0o755), Entry("swap/inner", data=b"in"),
    Entry("added", kind="dir", mode=0o750), Entry("added/new.txt", data=b"new"),
    Entry("added/zz-hl", kind="hardlink", linkname="added/new.txt"),
]


def _push(client, repo):
    push_layers(client, repo, "old", [BASE, DEPS_OLD])
    push_layers(client, repo, "new", [BASE, DEPS_NEW, TOP_NEW], mtime=1_800_000_000)


def _layer_members(client, repo, digest):
    data = client.read_blob(repo, digest)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name.rstrip("/"): m for m in tar.getmembers()}


def test_auto_mode_result_equals_new(registry, client, config, repo_name):
    _push(client, repo_name)
    old, new = f"{registry.host}/{repo_name}:old", f"{registry.host}/{repo_name}:new"
    before = verify_images(old, new, config)
    what = {("/" + c.path): c.what for c in before.differences}
    assert what["/etc/conf"] == "content" and what["/bin/tool"] == "mode" and what["/srv/owned"] == "owner"
    assert what["/lib/link"] == "link" and what["/swap"] == "type" and what["/data/old/sub/y"] == "deleted"
    assert what["/opq/a"] == "deleted" and what["/added/zz-hl"] == "added" and what["/usr/lib/libfoo.so.1"] == "content"
    assert "/big.bin" not in what and "/etc/os-release" not in what and "/lib/keep-link" not in what

    result = rebase(new, old, "delta", config, auto=True, append=True)  # on all of OLD: the delta's entries
    assert result.pushed and result.mode == "auto" and result.refused is None and result.reused_layers == 2
    after = verify_images(result.ref, new, config)
    assert after.equal, after.differences

    members = _layer_members(client, repo_name, result.new_layer["digest"])
    assert "data/.wh.old" in members and not any(n.startswith("data/old/") or n.startswith("data/.wh.old/") for n in members)
    assert "lib/.wh.gone.txt" in members and "opq/.wh.a" in members and "opq/.wh.b" in members
    assert members["bin/tool"].mode == 0o700 and members["srv/owned"].uid == 1000
    assert members["lib/link"].issym() and members["lib/link"].linkname == "target2"
    assert members["swap"].isdir() and "swap/inner" in members
    assert members["added/new.txt"].isreg() and members["added/new.txt"].size == 3  # a hard-link group ships once:
    assert members["added/zz-hl"].islnk() and members["added/zz-hl"].linkname == "added/new.txt"  # file + link
    assert {m.mtime for m in members.values()} == {0}
    assert not {"big.bin", "etc/os-release", "lib/keep-link", "etc", "usr"} & set(members)
    assert result.new_layer["size"] < 60_000  # libfoo's 50 KB of noise plus a few small entries

    # by default the rebase drops DEPS_OLD: NEW replaces all it held, so keeping it costs old
    # holders nothing and fresh devices its bytes (fleet_tui.rebase.seam)
    seamed = rebase(new, old, "seam", config, auto=True)
    assert seamed.reused_layers == 1 and seamed.onto_layers == 2
    assert seamed.bytes_for_old_holders <= result.bytes_for_old_holders * 1.05 + 1024
    assert seamed.bytes_for_fresh < result.bytes_for_fresh
    assert [c["kept_layers"] for c in seamed.seam] == [2, 1] and [c["chosen"] for c in seamed.seam] == [False, True]
    assert verify_images(seamed.ref, new, config).equal


def test_verify_cli_exit_codes(registry, client, config, repo_name, capsys):
    _push(client, repo_name)
    old, new = f"{registry.host}/{repo_name}:old", f"{registry.host}/{repo_name}:new"
    assert main(["verify", old, new, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["equal"] is False
    tool = next(d for d in out["differences"] if d["path"] == "/bin/tool")
    assert tool == {"path": "/bin/tool", "change": "mode", "kind": "file", "details": {"mode": ["0o755", "0o700"]}}
    assert main(["verify", new, new]) == 0
    assert "equal" in capsys.readouterr().out
    assert main(["verify", old, f"{registry.host}/{repo_name}:missing"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fleet-tui: error:") and err.count("\n") == 1


def test_rebase_across_shared_prefix_reads_only_upper_layers(registry, client, config, repo_name):
    # paths touched on both sides only: the shared base layer is never streamed
    push_layers(client, repo_name, "1", [BASE, DEPS_OLD])
    push_layers(client, repo_name, "2", [BASE, DEPS_NEW])
    base_digest = load_image(f"{registry.host}/{repo_name}:1", config).layers[0].digest
    mark = registry.mark()
    result = rebase(f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1", "d", config, auto=True, force=True)
    assert result.pushed
    assert not any(a.method == "GET" and base_digest in a.path for a in registry.accesses(mark))
