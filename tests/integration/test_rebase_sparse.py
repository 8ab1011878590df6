"""Layers with sparse files (GNU tar `--sparse`). PAX sparse files (`--format=posix`): the lean
scanner hands them back and the `tarfile` path reads them instead, holes as zeros, as Go's
archive/tar does — for the diff (hashing) and for the files a rebase ships. Old-GNU sparse
entries (`--format=gnu`, type `S`): engines refuse the layer (moby has no case for `S`), so a
rebase refuses in one line and pushes nothing. A rebase writes a mostly-hole file as a PAX 1.0
sparse entry (`fleet_tui.oci.sparse`): the delta costs the file's data; Python's `tarfile`
and a real dockerd read NEW's bytes from it."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile

import pytest

from fleet_tui.errors import FleetError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import Entry, LayerResult, write_layer
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.rebase import rebase, verify_images
from fleet_tui.rebase.tarscan import Unsupported, scan_layer
from fleet_tui.rebase.tree import merged
from tests.support.dockerd import DockerDaemon
from tests.support.images import build, noise

WEIGHTS = "opt/model/weights.bin"


def _sparse_layer(tmp_path, fmt: str) -> tuple[LayerResult, bytes]:
    root = tmp_path / "root"
    (root / "opt/model").mkdir(parents=True)
    content = bytearray(4 << 20)  # 4 MB, mostly holes
    content[1 << 20:(1 << 20) + 5000] = noise(5000, 1)
    content[-3000:] = noise(3000, 2)
    with open(root / WEIGHTS, "wb") as fh:
        fh.write(content[:(1 << 20) + 5000])
        fh.seek(len(content) - 3000)
        fh.write(content[-3000:])
    tar = subprocess.run(["tar", "--sparse", f"--format={fmt}", "--numeric-owner", "--owner=0", "--group=0",
                          "--mtime=@0", "--sort=name", "-C", str(root), "-cf", "-", "opt"],
                         check=True, capture_output=True).stdout
    blob = gzip.compress(tar, mtime=0)
    return LayerResult(sha256(blob), sha256(tar), len(blob), blob), bytes(content)


def _store_with_sparse(tmp_path, fmt: str):
    d = tmp_path / "store"
    store = LayoutStore(d, create=True)
    base = write_layer([Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=x\n")])
    old_model = write_layer([Entry("opt", kind="dir", mode=0o755), Entry("opt/model", kind="dir", mode=0o755),
                             Entry(WEIGHTS, data=b"old weights")])
    sparse, content = _sparse_layer(tmp_path, fmt)
    build([(base, "base"), (old_model, "model")], mt.OCI).push(store, "", "1")
    build([(base, "base"), (sparse, "model")], mt.OCI).push(store, "", "2")
    return d, content


def test_old_gnu_sparse_layer_is_refused_in_one_line(tmp_path, config):
    d, _ = _store_with_sparse(tmp_path, "gnu")
    with pytest.raises(FleetError) as err:
        rebase(f"oci:{d}:2", f"oci:{d}:1", "r", config, auto=True, force=True)
    message = str(err.value)
    assert "type S" in message and f"oci:{d}:2" in message and "\n" not in message
    assert LayoutStore(d).head_manifest("", "r") is None  # nothing pushed


def test_pax_sparse_layer_is_read_with_tarfile_and_rebased(tmp_path, config):
    d, content = _store_with_sparse(tmp_path, "posix")
    new = load_image(f"oci:{d}:2", config)
    with pytest.raises(Unsupported):  # the fallback is what this test exercises
        for _ in scan_layer(new, new.layers[1]):
            pass

    node = merged(new).node(WEIGHTS)
    assert node.size == len(content) and node.sha256 == hashlib.sha256(content).hexdigest()
    result = rebase(f"oci:{d}:2", f"oci:{d}:1", "r", config, auto=True, force=True)
    assert result.pushed and result.changes["written"] >= 1
    rebased = load_image(result.ref, config)
    assert merged(rebased).node(WEIGHTS).sha256 == node.sha256  # the shipped bytes are the sparse file's
    assert verify_images(rebased, new, config).equal


# --- the delta layer writes sparse files as sparse (issue 25 item 3) ------------------------

BIG = 64 << 20  # apparent size; the data is DATA_A + DATA_B bytes
DATA_A, DATA_B = 60_000, 40_000


def _big_sparse(tmp_path) -> tuple[LayerResult, bytes, bytes]:
    """NEW's model layer: GNU tar --sparse --format=posix of a 64 MiB file with 100 KB of data."""
    root = tmp_path / "big"
    (root / "opt/model").mkdir(parents=True)
    a, b = noise(DATA_A, 11), noise(DATA_B, 12)
    content = bytearray(BIG)
    content[8 << 20:(8 << 20) + DATA_A] = a
    content[40 << 20:(40 << 20) + DATA_B] = b
    with open(root / WEIGHTS, "wb") as fh:
        fh.seek(8 << 20)
        fh.write(a)
        fh.seek(40 << 20)
        fh.write(b)
        fh.truncate(BIG)  # ends in a hole
    tar = subprocess.run(["tar", "--sparse", "--format=posix", "--numeric-owner", "--owner=0", "--group=0",
                          "--mtime=@0", "--sort=name", "-C", str(root), "-cf", "-", "opt"],
                         check=True, capture_output=True).stdout
    assert len(tar) < 1 << 20  # GNU tar stored it sparse: the test's input is what the issue is about
    blob = gzip.compress(tar, mtime=0)
    return LayerResult(sha256(blob), sha256(tar), len(blob), blob), bytes(content), a + b


def _busybox_base() -> list[Entry]:
    return [Entry("bin", kind="dir", mode=0o755), Entry("bin/busybox", data=open("/bin/busybox", "rb").read(), mode=0o755),
            Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=x\n")]


def _sparse_pair(tmp_path, client, repo: str) -> tuple[bytes, bytes]:
    """OLD = busybox, deps, old model; NEW = busybox, deps rebuilt (new digest, same files), sparse model."""
    base = write_layer(_busybox_base())
    deps = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
            Entry("usr/lib/libdeps.so", data=noise(2_000_000, 5), mode=0o755)]
    old_model = write_layer([Entry("opt", kind="dir", mode=0o755), Entry("opt/model", kind="dir", mode=0o755),
                             Entry(WEIGHTS, data=b"old weights")])
    sparse, content, data = _big_sparse(tmp_path)
    build([(base, "base"), (write_layer(deps, mtime=1), "deps"), (old_model, "model")], mt.OCI).push(client, repo, "1")
    build([(base, "base"), (write_layer(deps, mtime=2), "deps"), (sparse, "model")], mt.OCI).push(client, repo, "2")
    return content, data


def _sparse_entry(tar: bytes) -> tuple[dict[str, str], bytes, bytes]:
    """(PAX records, ustar name, data block) of the first entry with GNU.sparse records, parsed by hand."""
    pos = 0
    while pos + 512 <= len(tar) and tar[pos:pos + 512] != bytes(512):
        header = tar[pos:pos + 512]
        size = int(header[124:136].strip(b" \0") or b"0", 8)
        data = tar[pos + 512:pos + 512 + size]
        if header[156:157] == b"x":
            records = {}
            rest = data
            while rest:
                length = int(rest.split(b" ", 1)[0])
                key, _, value = rest[:length].split(b" ", 1)[1][:-1].partition(b"=")
                records[key.decode()] = value.decode()
                rest = rest[length:]
            if any(k.startswith("GNU.sparse") for k in records):
                nxt = pos + 512 + size + (-size % 512)
                file_header = tar[nxt:nxt + 512]
                file_size = int(file_header[124:136].strip(b" \0"), 8)
                assert file_header[156:157] in (b"0", b"\0")
                return records, file_header[0:100].rstrip(b"\0"), tar[nxt + 512:nxt + 512 + file_size]
        pos += 512 + size + (-size % 512)
    raise AssertionError("no PAX sparse entry in the layer")


def test_sparse_file_in_new_is_written_sparse_and_the_delta_stays_at_its_data(tmp_path, registry, client, config,
                                                                                 repo_name):
    content, data = _sparse_pair(tmp_path, client, repo_name)
    new_ref, old_ref = f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1"
    result = rebase(new_ref, old_ref, "2-rebased", config, auto=True)  # no --force: it pays
    assert result.pushed and not result.refused, result.to_json()

    digest = result.new_layer["digest"]
    blob = client.read_blob(repo_name, digest)
    tar = gzip.decompress(blob)
    floor = len(gzip.compress(data, 6, mtime=0))
    assert len(tar) < len(data) + 16 * 1024, len(tar)  # uncompressed: the data, not 64 MiB
    assert len(blob) < floor + 8 * 1024, (len(blob), floor)  # compressed: the data's gzip, not 64 MiB of zeros
    assert result.bytes_for_old_holders < floor + 16 * 1024

    records, name, block = _sparse_entry(tar)
    assert records["GNU.sparse.major"] == "1" and records["GNU.sparse.minor"] == "0"
    assert records["GNU.sparse.name"] == WEIGHTS and records["GNU.sparse.realsize"] == str(BIG)
    assert name == b"opt/model/GNUSparseFile.0/weights.bin"
    numbers = block.split(b"\n")
    count = int(numbers[0])
    regions = [(int(numbers[1 + 2 * i]), int(numbers[2 + 2 * i])) for i in range(count)]
    map_len = len(b"\n".join(numbers[:1 + 2 * count])) + 1
    map_block = map_len + (-map_len % 512)
    assert block[map_len:map_block] == bytes(map_block - map_len)  # the map is padded with NULs to 512
    assert len(block) == map_block + sum(n for _, n in regions)
    assert regions[-1][0] + regions[-1][1] == BIG and sum(n for _, n in regions) < len(data) + 16 * 4096
    rebuilt, at = bytearray(BIG), map_block
    for offset, length in regions:  # the map and the regions give NEW's bytes back
        rebuilt[offset:offset + length] = block[at:at + length]
        at += length
    assert bytes(rebuilt) == content

    with tarfile.open(fileobj=io.BytesIO(tar)) as t:  # Python's reader agrees
        member = t.getmember(WEIGHTS)
        assert member.issparse() and member.size == BIG
        assert hashlib.sha256(t.extractfile(member).read()).hexdigest() == hashlib.sha256(content).hexdigest()

    rebased = load_image(result.ref, config)
    node = merged(rebased).node(WEIGHTS)
    assert node.size == BIG and node.sha256 == hashlib.sha256(content).hexdigest()
    assert verify_images(rebased, load_image(new_ref, config), config).equal


def test_a_real_dockerd_reads_the_sparse_file_as_new_has_it(tmp_path, registry, client, config, repo_name):
    content, _ = _sparse_pair(tmp_path, client, repo_name)
    result = rebase(f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1", "2-rebased", config, auto=True)
    assert result.pushed
    daemon = DockerDaemon(tmp_path / "dockerd", insecure=[registry.host]).start()
    try:
        docker = daemon.client
        docker.images.pull(f"{registry.host}/{repo_name}", tag="1")  # the device holds OLD
        docker.images.pull(result.ref)
        out = docker.containers.run(result.ref, ["/bin/busybox", "sha256sum", f"/{WEIGHTS}"], network_mode="none",
                                    remove=True)
        assert out.split()[0].decode() == hashlib.sha256(content).hexdigest()
        size = docker.containers.run(result.ref, ["/bin/busybox", "stat", "-c", "%s", f"/{WEIGHTS}"],
                                     network_mode="none", remove=True)
        assert int(size) == BIG
    finally:
        daemon.stop()
