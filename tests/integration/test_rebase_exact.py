"""Rebase and verify are exact on images built by other tools, as a real dockerd sees them.

Each case pushes an OLD and a NEW made with hand-written tar headers, GNU tar or `docker
build`, rebases NEW onto OLD (`--auto`), and checks against an oracle that shares no code
with the rebaser (tests/support/oracle.py: a real dockerd's `docker export` + inspect):
- the rebased image runs exactly like NEW (same exported filesystem and runtime config),
  and `verify` says equal;
- OLD and NEW differ for the oracle, and `verify` says they differ too;
- a dockerd holding OLD fetches exactly the planned bytes to pull the rebased image.
Cases a device would refuse end in one error line naming the image and layer, and nothing
pushed (the oracle's pull fails as well).
"""

from __future__ import annotations

import docker.errors
import pytest

from fleet_tui.cli import main
from fleet_tui.errors import FleetError
from fleet_tui.oci.image import load_image
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rebase import rebase
from fleet_tui.rebase.verify import verify_refs
from tests.support import oracle
from tests.support.dockerd import DockerDaemon
from tests.support.tricky import CAP_NET_ADMIN, CAP_NET_RAW, end, entry, global_pax, image, raw_header, raw_layer

GNU_MAGIC = b"ustar  \0"


@pytest.fixture(scope="module")
def dockerd(registry, tmp_path_factory):
    daemon = DockerDaemon(tmp_path_factory.mktemp("dockerd-exact"), insecure=[registry.host]).start()
    yield daemon
    daemon.stop()


def _base() -> bytes:
    return (entry("bin/", kind=b"5", mode=0o755) + entry("bin/ping", b"\x7fELF ping v1" * 50, mode=0o755,
            pax={"SCHILY.xattr.security.capability": CAP_NET_RAW}) + entry("etc/", kind=b"5", mode=0o755)
            + entry("etc/app.conf", b"level=1\n", pax={"SCHILY.xattr.user.origin": "base"})
            + entry("lib/", kind=b"5", mode=0o755) + entry("lib/shared.so", b"shared library" * 100, mode=0o755)
            + entry("usr/", kind=b"5", mode=0o755) + entry("usr/lib/", kind=b"5", mode=0o755)
            + entry("opt/", kind=b"5", mode=0o755) + entry("opt/lib", kind=b"2", linkname="/usr/lib") + end())


def check_exact(registry, client, config, dockerd, repo, old_layers, new_layers, **images):
    """Push OLD/NEW, rebase (on all of OLD, and where the seam rule puts it), and compare both
    with the oracle (module docstring). Returns the appended result."""
    host = registry.host
    image(client, repo, "old", old_layers, **images)
    image(client, repo, "new", new_layers, **images)
    old, new = f"{host}/{repo}:old", f"{host}/{repo}:new"
    assert oracle.differences(dockerd.client, old, new), "the case must make OLD and NEW differ"
    assert not verify_refs(old, new, config).equal
    appended = rebase(new, old, "rebased", config, auto=True, force=True, append=True)
    seamed = rebase(new, old, "seamed", config, auto=True, force=True)  # may keep fewer of OLD's layers
    for result in (appended, seamed) if seamed.digest != appended.digest else (appended,):
        assert result.pushed and result.refused is None, result.to_json()
        # a device holding OLD fetches exactly the plan (oracle.differences pulled OLD already)
        planned = plan_pull(load_image(result.ref, config), [load_image(old, config)]).total_bytes
        mark = registry.mark()
        oracle.pull(dockerd.client, f"{host}/{repo}@{result.digest}")
        assert registry.served_bytes(mark) == planned
        assert oracle.differences(dockerd.client, new, result.ref) == []
        check = verify_refs(new, result.ref, config)
        assert check.equal, check.to_json()
    return appended


def test_xattrs_are_diffed_shipped_and_verified(registry, client, config, dockerd, repo_name):
    base = raw_layer(_base())
    top = raw_layer(  # a naive rebuild: same bytes, a capability-only change, a changed file keeping its caps
        entry("bin/", kind=b"5", mode=0o755)
        + entry("bin/ping", b"\x7fELF ping v1" * 50, mode=0o755, pax={"SCHILY.xattr.security.capability": CAP_NET_ADMIN})
        + entry("bin/tool", b"\x7fELF tool v2", mode=0o755, pax={"SCHILY.xattr.security.capability": CAP_NET_RAW})
        + entry("etc/", kind=b"5", mode=0o755) + entry("etc/app.conf", b"level=1\n", pax={"SCHILY.xattr.user.origin": "top"})
        + end())
    old_top = raw_layer(entry("bin/", kind=b"5", mode=0o755) + entry("bin/tool", b"\x7fELF tool v1", mode=0o755) + end())
    result = check_exact(registry, client, config, dockerd, repo_name, [base, old_top], [base, top])
    old, new = f"{registry.host}/{repo_name}:old", f"{registry.host}/{repo_name}:new"
    what = {c.path: c.what for c in verify_refs(old, new, config).differences}
    assert what == {"bin/ping": "xattrs", "bin/tool": "content+xattrs", "etc/app.conf": "xattrs"}
    assert 3 <= result.changes["written"] <= 4  # (+ etc/ re-declared: shipping an equal entry is harmless)


def test_hard_links_ship_once_after_their_targets(registry, client, config, dockerd, repo_name):
    base = raw_layer(_base())
    model = b"weights v2 " * 1000
    old_top = raw_layer(entry("app/", kind=b"5", mode=0o755) + entry("app/z-target", b"model v1")
                        + entry("app/a-link", kind=b"1", linkname="app/z-target") + end())
    new_top = raw_layer(  # link names sort before targets; a link to a file of a lower layer; a fresh pair
        entry("app/", kind=b"5", mode=0o755) + entry("app/z-target", model, mode=0o640)
        + entry("app/a-link", kind=b"1", linkname="app/z-target", mode=0o640)
        + entry("app/shared-link", kind=b"1", linkname="lib/shared.so", mode=0o755)
        + entry("app/m2", b"pair") + entry("app/m1", kind=b"1", linkname="./app//m2") + end())
    result = check_exact(registry, client, config, dockerd, repo_name, [base, old_top], [base, new_top])
    import gzip
    import io
    import tarfile

    blob = client.read_blob(repo_name, result.new_layer["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        members = tar.getmembers()
    regular = [m.name for m in members if m.isreg()]
    links = {m.name: m.linkname for m in members if m.islnk()}
    assert len([n for n in regular if n.startswith("app/")]) == 3  # z-target, m1|m2, and shared.so's group: once each
    order = [m.name for m in members]
    for link, target in links.items():
        assert order.index(target) < order.index(link)


def test_names_and_headers_are_read_as_go_reads_them(registry, client, config, dockerd, repo_name):
    base = raw_layer(_base())
    atime = b"14536421711\0" + b"14536421711\0"  # GNU atime/ctime at 345: a USTAR reader takes a prefix
    new_top = raw_layer(
        global_pax({"path": "evil/global", "uid": "4242"})  # archive/tar does not apply globals to entries
        + entry("app/./models/", kind=b"5", mode=0o755) + entry("app/./models//m.bin", b"weights", uid=3_000_000,
                                                              big_uid=True)
        + entry("usr//lib//libx.so", b"libx", mode=0o755)
        + raw_header("gnu-file", b"0", 3, magic=GNU_MAGIC, gnu_times=atime) + b"gnu" + bytes(509)
        + entry("/abs/file", b"absolute") + entry("opt/lib/via-symlink.so", b"lands in /usr/lib") + end())
    check_exact(registry, client, config, dockerd, repo_name, [base], [base, new_top])


def test_implied_parents_fifos_devices_and_an_empty_layer(registry, client, config, dockerd, repo_name):
    base = raw_layer(_base())
    empty = raw_layer(b"", compression="none")  # a 0-byte tar layer: dockerd accepts it
    new_top = raw_layer(entry("srv/data/deep/file.txt", b"no parent entries")  # implied parents
                        + entry("srv/fifo", kind=b"6", mode=0o600) + entry("srv/null", kind=b"3", devmajor=1, devminor=3)
                        + end())
    check_exact(registry, client, config, dockerd, repo_name, [base], [base, empty, new_top])


def test_runtime_config_comes_from_new(registry, client, config, dockerd, repo_name):
    base = raw_layer(_base())
    top = raw_layer(entry("app/", kind=b"5", mode=0o755) + entry("app/model.bin", b"v2") + end())
    old_top = raw_layer(entry("app/", kind=b"5", mode=0o755) + entry("app/model.bin", b"v1") + end())
    host = registry.host
    image(client, repo_name, "old", [base, old_top], container={"Cmd": ["/bin/ping"], "Env": ["A=1"]})
    image(client, repo_name, "new", [base, top], container={
        "Cmd": ["/bin/ping"], "Env": ["A=1"], "User": "1000:1000", "StopSignal": "SIGINT", "WorkingDir": "/app",
        "Volumes": {"/data": {}}, "Healthcheck": {"Test": ["CMD", "/bin/ping", "-c1", "x"], "Interval": 30_000_000_000}})
    old, new = f"{host}/{repo_name}:old", f"{host}/{repo_name}:new"
    before = {d["field"] for d in verify_refs(old, new, config).config_differences}
    assert {"config.User", "config.StopSignal", "config.Volumes", "config.Healthcheck"} <= before
    result = rebase(new, old, "rebased", config, auto=True, force=True)
    assert oracle.differences(dockerd.client, new, result.ref) == []
    assert oracle.runtime(dockerd.client, result.ref)["config"]["User"] == "1000:1000"
    assert verify_refs(new, result.ref, config).equal


@pytest.mark.parametrize("damage", ["truncate", "trailing"])
def test_a_damaged_blob_is_refused_and_nothing_pushed(registry, client, config, dockerd, repo_name, damage):
    base = raw_layer(_base())
    bad = raw_layer(entry("app/model.bin", b"m" * 5000) + end(), damage=damage)
    image(client, repo_name, "old", [base])
    image(client, repo_name, "new", [base, bad])
    new = f"{registry.host}/{repo_name}:new"
    with pytest.raises(docker.errors.APIError):  # the oracle: a real engine refuses it too
        oracle.pull(dockerd.client, new)
        raise AssertionError("dockerd pulled a damaged layer")
    for action in (lambda: rebase(new, f"{registry.host}/{repo_name}:old", "rebased", config, auto=True, force=True),
                   lambda: verify_refs(new, new, config)):
        with pytest.raises(FleetError) as err:
            action()
        message = str(err.value)
        assert "\n" not in message and bad.digest.split(":")[1][:12] in message and repo_name in message
    assert client.head_manifest(repo_name, "rebased") is None


@pytest.mark.parametrize("layer, why", [
    (entry("x", kind=b"7", data=b"contiguous") + end(), "type"),
    (entry("x", b"made here") + entry(".wh.x") + end(), "whites out"),
    (entry("d/", kind=b"5") + entry("d/f", b"f") + entry(".wh.d") + end(), "whites out"),
    (entry("l", kind=b"1", linkname="missing") + end(), "does not exist"),
])
def test_layers_engines_refuse_or_disagree_on_are_refused(registry, client, config, repo_name, layer, why):
    base = raw_layer(_base())
    image(client, repo_name, "old", [base])
    image(client, repo_name, "new", [base, raw_layer(layer)])
    with pytest.raises(FleetError, match=why) as err:
        rebase(f"{registry.host}/{repo_name}:new", f"{registry.host}/{repo_name}:old", "r", config, auto=True, force=True)
    assert "\n" not in str(err.value) and client.head_manifest(repo_name, "r") is None


def test_layer_depth_is_guarded(registry, client, config, repo_name, capsys):
    tiny = [raw_layer(entry(f"l{i}", b"%d" % i) + end()) for i in range(125)]
    image(client, repo_name, "deep", tiny)
    image(client, repo_name, "almost", tiny[:124])
    image(client, repo_name, "new", tiny[:3] + [raw_layer(entry("app", b"new") + end())])
    new = f"{registry.host}/{repo_name}:new"
    with pytest.raises(FleetError, match="max depth exceeded"):
        rebase(new, f"{registry.host}/{repo_name}:deep", "r", config, auto=True, force=True, append=True)
    assert client.head_manifest(repo_name, "r") is None
    # by default the rebase may keep fewer of OLD's layers (the seam): then it fits, and is exact
    seamed = rebase(new, f"{registry.host}/{repo_name}:deep", "seamed", config, auto=True, force=True)
    assert seamed.pushed and seamed.reused_layers < 125 and verify_refs(new, seamed.ref, config).equal
    result = rebase(new, f"{registry.host}/{repo_name}:almost", "r", config, auto=True, force=True, append=True)
    assert result.pushed and len(load_image(result.ref, config).layers) == 125
    image(client, repo_name, "too-deep", tiny + [raw_layer(entry("extra", b"x") + end())])
    assert main(["plan", f"{registry.host}/{repo_name}:too-deep", "--json"]) == 1  # no device can run it
    err = capsys.readouterr().err
    assert "126 layers" in err and "max depth exceeded" in err and err.count("\n") == 1
