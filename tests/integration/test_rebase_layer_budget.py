"""OLD at the layer budget (125 layers, the most an engine registers): appending would give
126, so the rebase merges the new layer into a seam over OLD's top layer, says in one line
(and in --json) what that costs devices holding OLD, and the result equals NEW. When no
candidate fits, it refuses in one line and pushes nothing."""

from __future__ import annotations

import json

import pytest

from fleet_tui.cli import main
from fleet_tui.errors import FleetError
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import files_layer
from fleet_tui.rebase import rebase
from fleet_tui.rebase.verify import verify_refs
from tests.support.images import MODEL_DIR, SCORE, base_layer, build, noise

LABELS = f"{MODEL_DIR}/labels.bin"  # in OLD's top layer, unchanged in NEW: merging re-ships it
LABELS_BYTES = noise(30_000, 7)


def _pair(client, repo: str, top_extra: dict[str, bytes] | None = None) -> tuple[str, str]:
    """OLD: base + 123 tiny layers + app v1 (125 layers); NEW: OLD's bottom 124 + app v2 (125 layers)."""
    bottom = [(base_layer(), "base")] + [(files_layer({f"opt/lib/l{i}.txt": b"%d\n" % i}), f"l{i}")
                                         for i in range(123)]
    app1 = files_layer({f"{MODEL_DIR}/model.pkl": noise(2000, 1), LABELS: LABELS_BYTES, SCORE: "v1\n",
                        **(top_extra or {})})
    app2 = files_layer({f"{MODEL_DIR}/model.pkl": noise(2000, 2), LABELS: LABELS_BYTES, SCORE: "v2\n"})
    build(bottom + [(app1, "app v1")]).push(client, repo, "old")
    build(bottom + [(app2, "app v2")]).push(client, repo, "new")
    return repo + ":new", repo + ":old"


def test_old_at_the_budget_merges_into_a_seam_and_says_what_it_costs(registry, client, config, repo_name):
    new, old = (f"{registry.host}/{r}" for r in _pair(client, repo_name))
    assert len(load_image(old, config).layers) == 125
    result = rebase(new, old, "merged", config, auto=True, force=True)
    assert result.pushed and not result.refused
    assert len(load_image(result.ref, config).layers) <= 125 and result.reused_layers == 124
    assert verify_refs(new, result.ref, config).equal  # exact: the merged filesystem is NEW's
    b = result.layer_budget
    assert b["max_layers"] == 125 and b["onto_layers"] == 125 and b["merged_layers"] == 1 and b["layers"] == 125
    assert b["old_holder_bytes"] == result.bytes_for_old_holders
    # the merged layer re-ships OLD's top layer's live file (30 KB of noise) that appending would not
    assert 25_000 < b["extra_old_holder_bytes"] == b["old_holder_bytes"] - b["old_holder_bytes_if_appended"] < 40_000


def test_cli_says_in_one_line_what_merging_cost_and_json_has_the_figures(registry, client, config, repo_name, capsys):
    new, old = (f"{registry.host}/{r}" for r in _pair(client, repo_name))
    assert main(["rebase", new, "--onto", old, "--auto", "--force", "--tag", "human"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "layer budget" in line]
    assert len(lines) == 1
    assert "125 layers" in lines[0] and "merged with OLD's top 1 layer" in lines[0] and "+" in lines[0]
    assert main(["rebase", new, "--onto", old, "--auto", "--force", "--tag", "machine", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layer_budget"]["merged_layers"] == 1 and doc["layer_budget"]["extra_old_holder_bytes"] > 25_000
    assert doc["bytes_for_old_holders"] == doc["layer_budget"]["old_holder_bytes"]


def test_below_the_budget_nothing_is_merged(registry, client, config, repo_name):
    new, _ = (f"{registry.host}/{r}" for r in _pair(client, repo_name))
    build([(base_layer(), "base"), (files_layer({f"{MODEL_DIR}/model.pkl": noise(2000, 1), LABELS: LABELS_BYTES,
                                                   SCORE: "v1\n"}), "app v1")]).push(client, repo_name, "shallow")
    plain = rebase(new, f"{registry.host}/{repo_name}:shallow", "plain", config, auto=True, force=True, append=True)
    assert plain.pushed and plain.layer_budget == {} and plain.to_json()["layer_budget"] == {}


def test_nothing_fits_refuses_in_one_line_and_pushes_nothing(registry, client, config, repo_name, capsys):
    # OLD's top layer holds a file outside --paths that NEW lacks: a --paths rebase must keep it
    # as OLD has it, and only appending (126 layers) would
    new, old = (f"{registry.host}/{r}" for r in _pair(client, repo_name, {"etc/top.conf": b"only in OLD\n"}))
    with pytest.raises(FleetError) as err:
        rebase(new, old, "refused", config, paths=[f"/{MODEL_DIR},/{SCORE}"], force=True)
    message = str(err.value)
    assert "125 layers" in message and "max depth exceeded" in message and "\n" not in message
    assert client.head_manifest(repo_name, "refused") is None  # nothing tagged …
    assert main(["rebase", new, "--onto", old, "--paths", f"/{MODEL_DIR},/{SCORE}", "--force", "--tag", "cli"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err and "max depth exceeded" in captured.err
    assert client.head_manifest(repo_name, "cli") is None
    with pytest.raises(FleetError, match="max depth exceeded"):  # --append forbids the seam: refused too
        rebase(new, old, "appended", config, auto=True, force=True, append=True)
    assert client.head_manifest(repo_name, "appended") is None
