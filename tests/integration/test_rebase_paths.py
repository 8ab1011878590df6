"""Paths mode against a real docker-registry: reuse, config, annotations, mount, determinism,
refusal on dependency changes, fallback on small savings."""

from __future__ import annotations

import json

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.annotations import BASE_DIGEST, BASE_NAME
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import Entry
from fleet_tui.rebase import rebase, verify_images
from tests.support.images import (
    MODEL_DIR,
    SCORE,
    app_layer,
    base_layer,
    build,
    deps_layer,
    ml_pair,
    noise,
    push_layers,
)

PATHS = [f"/{MODEL_DIR},/{SCORE}"]


def test_paths_mode_reuses_old_blobs_and_takes_new_files(registry, client, config, repo_name):
    pair = ml_pair(client, repo_name)
    old_ref, new_ref = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    result = rebase(new_ref, old_ref, "2-rebased", config, paths=PATHS, append=True)  # on all of OLD
    assert result.pushed and result.refused is None
    assert result.ref == f"{registry.host}/{repo_name}@{result.digest}"

    old, new = load_image(old_ref, config), load_image(new_ref, config)
    rebased = load_image(f"{registry.host}/{repo_name}:2-rebased", config)
    assert rebased.digest == result.digest
    assert [l.digest for l in rebased.layers[:-1]] == [l.digest for l in old.layers]
    assert result.reused_layers == len(old.layers) == 3
    assert rebased.layers[-1].digest == result.new_layer["digest"]
    assert rebased.layers[-1].size == result.new_layer["size"] < 4000
    # config: OLD's + the new diff_id + a history entry; container settings from NEW
    assert rebased.config.diff_ids[:-1] == old.config.diff_ids
    assert len(rebased.config.history) == len(old.config.history) + 1
    assert rebased.config.history[-1]["created"] == new.config.doc["created"]
    assert rebased.config.container["Cmd"] == new.config.container["Cmd"]
    # one family, base annotations
    assert rebased.media_type == mt.DOCKER_MANIFEST
    assert {l.media_type for l in rebased.layers} == {mt.DOCKER_LAYER}
    assert rebased.manifest.config.media_type == mt.DOCKER_CONFIG
    assert rebased.manifest.annotations[BASE_NAME] == old_ref
    assert rebased.manifest.annotations[BASE_DIGEST] == old.digest == pair.v1
    # bytes: what an OLD holder pulls vs the naive pull of NEW
    assert result.bytes_for_old_holders == rebased.layers[-1].size + rebased.config_bytes + rebased.manifest_bytes
    assert result.bytes_naive > 300_000 > 50 * result.bytes_for_old_holders
    assert result.outside_paths_changed == [] and result.warnings == []  # deps differ by mtime only
    assert verify_images(rebased, new, config).equal


def test_oci_family_is_kept(registry, client, config, repo_name):
    ml_pair(client, repo_name, family=mt.OCI)
    result = rebase(f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1", "r", config, paths=PATHS)
    rebased = load_image(result.ref, config)
    assert rebased.media_type == mt.OCI_MANIFEST
    assert rebased.manifest.config.media_type == mt.OCI_CONFIG
    assert {l.media_type for l in rebased.layers} == {mt.OCI_LAYER_GZIP}
    assert rebased.manifest.annotations[BASE_DIGEST] == load_image(f"{registry.host}/{repo_name}:1", config).digest


def test_cross_repository_rebase_mounts_old_blobs(registry, client, config, repo_name):
    old_repo, new_repo = repo_name + "-prod", repo_name + "-ci"
    pair = ml_pair(client, old_repo)
    pair.v2_builder.push(client, new_repo, "2")  # the CI repo has NEW only
    old = load_image(f"{registry.host}/{old_repo}:1", config)
    mark = registry.mark()
    result = rebase(f"{registry.host}/{new_repo}:2", old, "2-rebased", config, paths=PATHS, append=True)
    assert result.ref.startswith(f"{registry.host}/{new_repo}@")
    log = registry.accesses(mark)
    uploads = [a for a in log if a.method in ("PUT", "PATCH") and "/blobs/uploads/" in a.path]
    for layer in old.layers:
        hexd = layer.digest.split(":")[1]
        assert not any(hexd in a.path for a in uploads), f"layer {hexd[:12]} was uploaded, not mounted"
    mounts = [a for a in log if a.method == "POST" and "mount=" in a.path and a.status == 201]
    assert mounts, "expected cross-repository mounts"
    assert len([a for a in uploads if a.method == "PUT"]) == 2  # the new layer and the config: nothing else
    assert result.blobs == {"present": 1, "mounted": 2}  # base shared by NEW; deps + app of OLD mounted
    rebased = load_image(result.ref, config)
    assert [l.digest for l in rebased.layers[:-1]] == [l.digest for l in old.layers]


def test_same_rebase_twice_gives_same_digests(registry, client, config, repo_name):
    ml_pair(client, repo_name)
    args = (f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1")
    first = rebase(*args, "a", config, paths=PATHS)
    second = rebase(*args, "b", config, paths=PATHS)
    assert first.new_layer == second.new_layer
    assert first.digest == second.digest


def _bumped_pair(client, repo, dist_version: str, extra_pyc: bool = False):
    """v1/v2 where v2's dependency layer has a different numpy version record."""
    base = base_layer()
    v1 = build([(base, "base"), (deps_layer(), "deps"), (app_layer(noise(2000, 7)), "app")])
    deps2 = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
             Entry("usr/lib/python3", kind="dir", mode=0o755)]
    for i in range(3):
        deps2.append(Entry(f"usr/lib/python3/pkg{i}.so", data=noise(100_000, 10 + i), mode=0o755))
    deps2.append(Entry(f"usr/lib/python3/numpy-{dist_version}.dist-info", kind="dir", mode=0o755))
    deps2.append(Entry(f"usr/lib/python3/numpy-{dist_version}.dist-info/METADATA",
                       data=f"Name: numpy\nVersion: {dist_version}\n".encode()))
    if extra_pyc:
        deps2.append(Entry("usr/lib/python3/__pycache__", kind="dir", mode=0o755))
        deps2.append(Entry("usr/lib/python3/__pycache__/x.cpython-311.pyc", data=b"stamp"))
    from fleet_tui.oci.layer import write_layer
    v2 = build([(base, "base"), (write_layer(deps2, mtime=1_800_000_000), "deps"),
                (app_layer(noise(2000, 8)), "app")])
    return v1.push(client, repo, "1"), v2.push(client, repo, "2")


def test_dependency_change_refuses_paths_mode_unless_forced(registry, client, config, repo_name):
    _bumped_pair(client, repo_name, "1.27.0")
    new, old = f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1"
    result = rebase(new, old, "r", config, paths=PATHS)
    assert not result.pushed and result.ref is None and not result.fallback
    assert "numpy 1.26.0 → 1.27.0" in result.refused and "--auto" in result.refused
    assert "\n" not in result.refused
    assert "r" not in client.list_tags(repo_name)  # nothing tagged
    paths = {c["path"] for c in result.outside_paths_changed}
    assert "/usr/lib/python3/numpy-1.27.0.dist-info/METADATA" in paths
    forced = rebase(new, old, "r", config, paths=PATHS, force=True)
    assert forced.pushed and "r" in client.list_tags(repo_name)


def test_cache_differences_are_warnings_not_refusals(registry, client, config, repo_name):
    _bumped_pair(client, repo_name, "1.26.0", extra_pyc=True)
    result = rebase(f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1", "r", config, paths=PATHS)
    assert result.pushed and result.refused is None
    assert any("cache" in w for w in result.warnings)
    assert {c["path"] for c in result.outside_paths_changed} >= {"/usr/lib/python3/__pycache__/x.cpython-311.pyc"}


def test_small_saving_falls_back_to_new_unless_forced(registry, client, config, repo_name):
    big_model = noise(400_000, 3)
    push_layers(client, repo_name, "1", [[Entry("etc/os-release", data=b"ID=x\n")],
                                         [Entry(f"{MODEL_DIR}/model.pkl", data=noise(400_000, 2))]])
    new_digest = push_layers(client, repo_name, "2", [[Entry("etc/os-release", data=b"ID=x\n")],
                                                      [Entry(f"{MODEL_DIR}/model.pkl", data=big_model)]])
    new, old = f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1"
    result = rebase(new, old, "r", config, paths=[f"/{MODEL_DIR}"])
    assert result.fallback and not result.pushed
    assert result.ref == f"{registry.host}/{repo_name}@{new_digest}"
    assert "deploy" in result.refused
    assert "r" not in client.list_tags(repo_name)
    forced = rebase(new, old, "r", config, paths=[f"/{MODEL_DIR}"], force=True)
    assert forced.pushed and not forced.fallback


def test_deleted_model_file_becomes_whiteout(registry, client, config, repo_name):
    files = lambda names: [Entry(f"{MODEL_DIR}/{n}", data=noise(3000, i)) for i, n in enumerate(names)]
    big = [Entry("usr/lib/libbig.so", data=noise(200_000, 9))]
    push_layers(client, repo_name, "1", [big, files(["a.pkl", "b.pkl"])])
    push_layers(client, repo_name, "2", [big, files(["a.pkl"]) + [Entry(f"{MODEL_DIR}/c.pkl", data=b"c")]])
    new = f"{registry.host}/{repo_name}:2"
    result = rebase(new, f"{registry.host}/{repo_name}:1", "r", config, paths=[f"/{MODEL_DIR}"])
    assert result.changes["whiteouts"] == 1 and result.changes["written"] == 1
    assert verify_images(result.ref, new, config).equal


def test_cli_rebase_and_verify_json(registry, client, config, repo_name, capsys):
    from fleet_tui.cli import main

    ml_pair(client, repo_name)
    new, old = f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1"
    code = main(["rebase", new, "--onto", old, "--paths", PATHS[0], "--tag", "cli", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("ref", "digest", "reused_layers", "new_layer", "bytes_for_old_holders", "bytes_naive",
                "outside_paths_changed", "warnings", "refused"):
        assert key in out
    assert set(out["new_layer"]) >= {"digest", "size"} and "@sha256:" in out["ref"]
    assert main(["verify", out["ref"], new, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["equal"] is True and verdict["differences"] == []
    assert main(["verify", old, new]) == 1
    text = capsys.readouterr().out
    assert "/var/azureml-app/azureml-models/model.pkl" in text and "content" in text
    code = main(["rebase", new, "--onto", old, "--paths", "relative/path", "--tag", "x"])
    assert code == 2 and "absolute path" in capsys.readouterr().err


def test_root_path_means_the_whole_image(registry, client, config, repo_name):
    """`--paths /` takes every difference (as verify sees them), never "nothing differs"."""
    ml_pair(client, repo_name)
    new = f"{registry.host}/{repo_name}:2"
    for paths in (["/"], ["//"], ["/var/../"]):
        result = rebase(new, f"{registry.host}/{repo_name}:1", "root", config, paths=paths, force=True)
        assert result.pushed and sum(result.changes.values()) > 0 and result.outside_paths_changed == [], paths
        assert verify_images(load_image(result.ref, config), load_image(new, config), config).equal
