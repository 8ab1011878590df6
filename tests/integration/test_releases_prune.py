"""`fleet-tui releases` and `fleet-tui prune` on a repository with 30 releases, on a registry of
its own (so its garbage collector can run): prune removes only rebased releases nothing uses,
and after the registry's garbage collection every image a device runs still pulls whole."""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import subprocess

import pytest

from fleet_tui.cli import main
from fleet_tui.config import Config, load_config
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.rebase import rebase
from fleet_tui.rollout.journal import Assignment, Journal
from tests.support.registry import BINARY, RegistryServer
from tests.support.releases import PATHS, run_series

pytestmark = pytest.mark.integration
REPO = "ml/scoring"


def cli(config_path, *args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["-c", str(config_path), *args, "--json"])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def test_prune_removes_only_what_nothing_needs_and_kept_images_still_pull(tmp_path):
    registry = RegistryServer(tmp_path / "registry").start()
    try:
        cfg_path = tmp_path / "fleet.toml"
        cfg_path.write_text(f'state_dir = "{tmp_path / "state"}"\n[registry]\ninsecure = ["{registry.host}"]\n')
        config = load_config(cfg_path)
        client = RegistryClient(registry.host, Config())
        run_series(client, registry.host, REPO, config, 30, deps_size=60_000, model_bytes=4_000)
        host = registry.host
        # an appended rebase on r2-rebased: it holds all of r2-rebased's layers (builds on it)
        stacked = rebase(f"{host}/{REPO}:r3", f"{host}/{REPO}:r2-rebased", "a3", config, paths=PATHS, append=True)
        pinned = {t: load_image(f"{host}/{REPO}:{t}", config).pinned for t in ("r30-rebased", "r25-rebased", "r20-rebased")}
        pinned["a3"] = stacked.ref

        hub = LocalHub(config.hub_path())
        runs = {"van-1": "r30-rebased", "van-2": "r30-rebased", "truck-1": "r25-rebased", "drone-1": "a3"}
        hub.register_devices((d, {"fleetGroup": d.split("-")[0]}) for d in runs)
        hub.report_many((d, {"scoring": ModuleReport("scoring", pinned[t], pinned[t].rpartition("@")[2], "running")}, True)
                        for d, t in runs.items())
        hub.close()
        journal = Journal(config.state_path() / "rollouts.sqlite")  # a rollout that names r20-rebased
        r20 = pinned["r20-rebased"].rpartition("@")[2]
        journal.create("r-old", {"group": "vans", "target_digest": r20, "variants": {}}, [1],
                       [Assignment("van-1", 0, "full", "", "", 1)])
        journal.close()

        lineage = {r["tag"]: r for r in cli(cfg_path, "releases", f"{host}/{REPO}")["releases"]}
        assert len(lineage) == 30 + 29 + 1
        assert lineage["r30-rebased"]["devices"] == 2 and lineage["r20-rebased"]["rollouts"] == ["r-old"]
        assert lineage["r2-rebased"]["built_on_by"] == ["a3"] and lineage["a3"]["depth"] == 2
        assert lineage["a3"]["dead_bytes"] > 0 and lineage["r30-rebased"]["dead_bytes"] == 0
        assert not any(r["rebased"] for t, r in lineage.items() if "-" not in t and t != "a3")  # naive builds

        keep = {"r30-rebased", "r25-rebased", "r20-rebased", "a3", "r2-rebased"}
        dry = cli(cfg_path, "prune", f"{host}/{REPO}")
        expected = {f"r{m}-rebased" for m in range(2, 31)} - keep
        assert {p["tag"] for p in dry["prunable"]} == expected and dry["deleted"] == []
        assert len(client.list_tags(REPO)) == 60  # a dry run deletes nothing

        assert not [e for e in cli(cfg_path, "log")["entries"] if e["action"] == "prune"]  # the dry run is no action
        done = cli(cfg_path, "prune", f"{host}/{REPO}", "--yes")
        assert len(done["deleted"]) == len(expected)
        entry = cli(cfg_path, "log")["entries"][0]  # who did it, journalled
        assert (entry["action"], entry["subject"], entry["detail"]["deleted"]) == ("prune", f"{host}/{REPO}",
                                                                                   len(expected)) and entry["by"]
        left = set(client.list_tags(REPO))
        assert left == {f"r{m}" for m in range(1, 31)} | keep
        client.close()
        registry.stop()
        gc = subprocess.run([shutil.which("docker-registry") or BINARY, "garbage-collect",
                             str(registry.root / "config.yml")], capture_output=True, text=True, timeout=300)
        assert gc.returncode == 0, gc.stdout[-2000:] + gc.stderr[-2000:]
        registry.start()
        client = RegistryClient(registry.host, Config())
        for tag in sorted(keep | {"r30"}):  # every image a device runs (and the rest kept) pulls whole
            image = load_image(f"{host}/{REPO}:{tag}", config)
            for layer in image.layers:
                assert len(client.read_blob(REPO, layer.digest)) == layer.size
        client.close()
    finally:
        registry.stop()


def test_releases_and_prune_work_on_an_oci_layout_like_the_demo_store(tmp_path):
    """The demo's embedded store is an OCI layout: its lineage is listed and its unused rebased
    releases pruned as in a registry (issue 25.9); the naive builds stay."""
    from fleet_tui.oci import mediatypes as mt
    from fleet_tui.oci.layer import files_layer
    from fleet_tui.oci.layout import LayoutStore
    from tests.support.images import build

    store = tmp_path / "store"
    layout = LayoutStore(store, create=True)
    base = files_layer({"etc/os-release": "ID=demo\n"})
    blob = random.Random(5).randbytes(200_000)  # the same dependencies, rebuilt: a new layer blob
    for tag, model in (("1", "model one"), ("2", "model two")):
        build([(base, "base"), (files_layer({"usr/lib/deps.so": blob, "usr/lib/BUILD": tag}), "deps"),
               (files_layer({"app/model.pkl": model * 500}), "app")], mt.OCI).push(layout, "", tag)
    cfg_path = tmp_path / "fleet.toml"
    cfg_path.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    config = load_config(cfg_path)
    assert rebase(f"oci:{store}:2", f"oci:{store}:1", "2-rebased", config, paths=["/app"]).pushed
    listed = cli(cfg_path, "releases", f"oci:{store}")["releases"]
    by_tag = {r["tag"]: r for r in listed}
    assert set(by_tag) == {"1", "2", "2-rebased"} and by_tag["2-rebased"]["rebased"] is True
    assert by_tag["2-rebased"]["prunable"] is True and by_tag["1"]["prunable"] is False
    pruned = cli(cfg_path, "prune", f"oci:{store}", "--yes")
    assert [p["tag"] for p in pruned["prunable"]] == ["2-rebased"] and len(pruned["deleted"]) == 1
    assert sorted(LayoutStore(store).list_tags("")) == ["1", "2"]
