"""Layers with sparse files (GNU tar `--sparse`): the lean scanner hands them back and the
`tarfile` path reads them instead, for the diff (hashing) and for the files a rebase ships."""

from __future__ import annotations

import gzip
import hashlib
import subprocess

import pytest

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


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_layer_is_read_with_tarfile_and_rebased(tmp_path, config, fmt):
    d = tmp_path / "store"
    store = LayoutStore(d, create=True)
    base = write_layer([Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=x\n")])
    old_model = write_layer([Entry("opt", kind="dir", mode=0o755), Entry("opt/model", kind="dir", mode=0o755),
                             Entry(WEIGHTS, data=b"old weights")])
    sparse, content = _sparse_layer(tmp_path, fmt)
    build([(base, "base"), (old_model, "model")], mt.OCI).push(store, "", "1")
    build([(base, "base"), (sparse, "model")], mt.OCI).push(store, "", "2")
    new = load_image(f"oci:{d}:2", config)
    with pytest.raises(Unsupported):  # the fallback is what this test exercises
        for _ in scan_layer(new, new.layers[1]):
            pass

    node = merged(new)[WEIGHTS]
    assert node.size == len(content) and node.sha256 == hashlib.sha256(content).hexdigest()
    result = rebase(f"oci:{d}:2", f"oci:{d}:1", "r", config, auto=True, force=True)
    assert result.pushed and result.changes["written"] >= 1
    rebased = load_image(result.ref, config)
    assert merged(rebased)[WEIGHTS].sha256 == node.sha256  # the shipped bytes are the sparse file's
    assert verify_images(rebased, new, config).equal
