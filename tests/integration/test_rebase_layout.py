"""Rebase and verify with the `oci:` image-layout store, and across stores (blobs copied
byte for byte); bounded memory on a large changed file."""

from __future__ import annotations

import tracemalloc

from fleet_tui.cli import main
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import Entry
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.rebase import rebase, verify_images
from tests.support.images import MODEL_DIR, SCORE, ml_pair, noise, push_layers

PATHS = [f"/{MODEL_DIR},/{SCORE}"]


def test_paths_rebase_inside_layout_store(tmp_path, config, capsys):
    store = LayoutStore(tmp_path / "store", create=True)
    ml_pair(store, "", family=mt.OCI)
    d = tmp_path / "store"
    code = main(["rebase", f"oci:{d}:2", "--onto", f"oci:{d}:1", "--paths", PATHS[0], "--tag", "2-rebased", "--append"])
    out = capsys.readouterr().out
    assert code == 0 and f"oci:{d}@sha256:" in out and "saves" in out
    rebased = load_image(f"oci:{d}:2-rebased", config)
    old = load_image(f"oci:{d}:1", config)
    assert [l.digest for l in rebased.layers[:-1]] == [l.digest for l in old.layers]
    assert rebased.media_type == mt.OCI_MANIFEST
    assert main(["verify", f"oci:{d}:2-rebased", f"oci:{d}:2"]) == 0


def test_registry_images_rebased_into_a_layout_dir_copy_blobs_exactly(registry, client, config, repo_name, tmp_path):
    ml_pair(client, repo_name)
    old = load_image(f"{registry.host}/{repo_name}:1", config)
    target = f"oci:{tmp_path / 'edge'}:2-rebased"
    result = rebase(f"{registry.host}/{repo_name}:2", old, target, config, paths=PATHS, append=True)
    assert result.pushed and result.blobs == {"copied": 3}
    rebased = load_image(target, config)
    for layer in old.layers:  # byte for byte: same digest, same bytes
        assert rebased.store.read_blob("", layer.digest) == client.read_blob(repo_name, layer.digest)
    assert verify_images(rebased, f"{registry.host}/{repo_name}:2", config).equal


def test_layout_images_rebased_into_the_registry(registry, config, repo_name, tmp_path):
    store = LayoutStore(tmp_path / "s", create=True)
    ml_pair(store, "")
    target = f"{registry.host}/{repo_name}:from-layout"
    result = rebase(f"oci:{tmp_path / 's'}:2", f"oci:{tmp_path / 's'}:1", target, config, paths=PATHS, append=True)
    assert result.ref.startswith(f"{registry.host}/{repo_name}@")
    assert verify_images(result.ref, f"oci:{tmp_path / 's'}:2", config).equal


def _peak_rebase(tmp_path, config, mb: int) -> int:
    d = tmp_path / f"s{mb}"
    store = LayoutStore(d, create=True)
    small = [Entry("etc/os-release", data=b"ID=x\n")]
    push_layers(store, "", "1", [small, [Entry("opt/data.bin", data=noise(mb << 20, 1))]])
    push_layers(store, "", "2", [small, [Entry("opt/data.bin", data=noise(mb << 20, 2))]])
    tracemalloc.start()
    try:
        result = rebase(f"oci:{d}:2", f"oci:{d}:1", "d", config, auto=True, force=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.pushed and result.new_layer["size"] > mb << 20
    assert verify_images(result.ref, f"oci:{d}:2", config).equal
    return peak


def test_auto_delta_of_a_large_file_keeps_memory_bounded(tmp_path, config):
    small, large = _peak_rebase(tmp_path, config, 4), _peak_rebase(tmp_path, config, 32)
    # the changed file is 8x larger (and spooled to disk), memory is not
    assert large < small + (4 << 20), f"peak {large >> 20} MB for 32 MB vs {small >> 20} MB for 4 MB"
    assert large < 16 << 20
