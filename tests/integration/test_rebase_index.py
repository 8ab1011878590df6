"""The layer index cache against a real docker-registry: a monthly release reads no blob of
OLD's dependency layer, a truncated or foreign index is ignored and rebuilt, a blob that
fails its digest check leaves no index, and results are identical with and without it."""

from __future__ import annotations

import gzip
import json

import pytest

from fleet_tui.config import Config
from fleet_tui.errors import FleetError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.rebase import rebase, verify_images
from fleet_tui.rebase.diff import diff_images
from fleet_tui.rebase.layerindex import LayerIndex
from tests.support.images import MODEL_DIR, SCORE, app_layer, base_layer, build, deps_layer, ml_pair, noise

PATHS = [f"/{MODEL_DIR},/{SCORE}"]


def _blob_gets(registry, since: int, digest: str) -> int:
    return sum(1 for a in registry.accesses(since) if a.method == "GET" and a.path.endswith(f"/blobs/{digest}"))


def _push_v3(client, repo: str) -> str:
    """Release 3: the dependency layer rebuilt once more (new timestamps), a new model."""
    v3 = build([(base_layer(), "/bin/sh -c #(nop) ADD file:base in /"),
                (deps_layer(300_000, mtime=1_900_000_000), "/bin/sh -c pip install -r requirements.txt"),
                (app_layer(noise(2000, 9)), "COPY azureml-models /var/azureml-app/azureml-models")])
    return v3.push(client, repo, "3")


def test_monthly_release_reads_no_blob_of_old(registry, client, repo_name, tmp_path):
    config = Config(state_dir=str(tmp_path / "state"))
    ml_pair(client, repo_name)
    _push_v3(client, repo_name)
    ref = lambda tag: f"{registry.host}/{repo_name}:{tag}"  # noqa: E731
    v2 = load_image(ref("2"), config)
    first = rebase(ref("2"), ref("1"), "2-rebased", config, paths=PATHS, append=True)  # last month: v2 was NEW
    assert first.pushed
    index_dir = tmp_path / "state" / "layer-index"
    assert {p.name for p in index_dir.iterdir()} >= {LayerIndex(index_dir).path_for(l).name for l in v2.layers[1:]}

    mark = registry.mark()
    second = rebase(ref("3"), ref("2"), "3-rebased", config, paths=PATHS, append=True)  # this month: v2 is OLD
    assert second.pushed and second.refused is None and second.outside_paths_changed == []
    for layer in v2.layers:  # not one byte of OLD's blobs read
        assert _blob_gets(registry, mark, layer.digest) == 0
    v3 = load_image(ref("3"), config)
    assert _blob_gets(registry, mark, v3.layers[1].digest) == 1  # NEW's dependency layer: read once
    assert verify_images(ref("3-rebased"), ref("3"), config).equal


def test_truncated_or_foreign_index_is_ignored_and_rebuilt(registry, client, repo_name, tmp_path):
    config = Config(state_dir=str(tmp_path / "state"))
    ml_pair(client, repo_name)
    old_ref, new_ref = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    expected = rebase(new_ref, old_ref, "2-rebased", config, paths=PATHS, append=True)
    old = load_image(old_ref, config)
    cache = LayerIndex.for_config(config)
    deps = old.layers[1]
    path = cache.path_for(deps)
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])  # a write cut short
    assert cache.load(deps) is None
    mark = registry.mark()
    again = rebase(new_ref, old_ref, "2-rebased", config, paths=PATHS, append=True)
    assert again.digest == expected.digest and again.to_json()["changes"] == expected.to_json()["changes"]
    assert _blob_gets(registry, mark, deps.digest) == 1  # the blob was read instead …
    assert cache.load(deps) is not None and path.read_bytes() == good  # … and the index rebuilt

    doc = json.loads(gzip.decompress(good))
    doc["head"]["digest"] = "sha256:" + "0" * 64  # the index of another blob under this name
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert cache.load(deps) is None
    path.write_bytes(b"not gzip at all")
    assert cache.load(deps) is None


def test_results_identical_with_and_without_the_index(registry, client, repo_name, tmp_path):
    ml_pair(client, repo_name)
    old_ref, new_ref = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    plain = Config(state_dir=str(tmp_path / "a"))
    old, new = load_image(old_ref, plain), load_image(new_ref, plain)
    bare = diff_images(old, new)
    cache = LayerIndex(tmp_path / "idx")
    cold = diff_images(old, new, cache=cache)
    warm = diff_images(old, new, cache=cache)
    assert cache.writes == 4 and cache.hits == 4  # two upper layers per image, then read back
    assert bare.changes == cold.changes == warm.changes

    for state in ("x", "x", "y"):  # cold, warm, then a fresh state dir: same digests
        r = rebase(new_ref, old_ref, "2-rebased", Config(state_dir=str(tmp_path / state)), auto=True)
        assert r.digest == rebase(new_ref, old_ref, "2-rebased", plain, auto=True).digest


def test_blob_that_fails_its_digest_leaves_no_index(tmp_path):
    store = LayoutStore(tmp_path / "store", create=True)
    ml_pair(store, "", family=mt.OCI)
    config = Config(state_dir=str(tmp_path / "state"))
    old = load_image(f"oci:{tmp_path / 'store'}:1", config)
    blob = tmp_path / "store" / "blobs" / "sha256" / old.layers[1].digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF  # in the gzip trailer: the tar reads fine, the digest does not match
    blob.write_bytes(bytes(data))
    with pytest.raises(FleetError):
        rebase(f"oci:{tmp_path / 'store'}:2", f"oci:{tmp_path / 'store'}:1", "2-rebased", config, paths=PATHS, append=True)
    assert not LayerIndex.for_config(config).path_for(old.layers[1]).exists()


def test_index_never_stands_in_for_extracted_files(registry, client, repo_name, tmp_path):
    config = Config(state_dir=str(tmp_path / "state"))
    ml_pair(client, repo_name)
    old_ref, new_ref = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    first = rebase(new_ref, old_ref, "2-rebased", config, paths=PATHS, append=True)
    new = load_image(new_ref, config)
    mark = registry.mark()
    second = rebase(new_ref, old_ref, "2-rebased", config, paths=PATHS, append=True)  # every layer indexed now
    assert second.digest == first.digest
    assert _blob_gets(registry, mark, new.layers[1].digest) == 0  # the diff read no dependency blob …
    assert _blob_gets(registry, mark, new.layers[2].digest) == 1  # … but the model files came from the blob
