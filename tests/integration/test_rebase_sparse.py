"""Layers with sparse files (GNU tar `--sparse`). PAX sparse files (`--format=posix`): the lean
scanner hands them back and the `tarfile` path reads them instead, holes as zeros, as Go's
archive/tar does — for the diff (hashing) and for the files a rebase ships. Old-GNU sparse
entries (`--format=gnu`, type `S`): engines refuse the layer (moby has no case for `S`), so a
rebase refuses in one line and pushes nothing."""

from __future__ import annotations

import gzip
import hashlib
import subprocess

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
