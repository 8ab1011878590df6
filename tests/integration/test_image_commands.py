"""`fleet-tui tags|layers|plan` against the real registry, and the plan checked by a real dockerd pull."""

from __future__ import annotations

import json

import pytest

from fleet_tui.cli import main
from tests.support.dockerd import DockerDaemon
from tests.support.images import ml_pair
from tests.support.registry import free_port


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def pair(client, repo_name):
    return ml_pair(client, repo_name)


def test_tags_json_and_text(capsys, registry, repo_name, pair):
    code, out, _ = run(capsys, "tags", f"{registry.host}/{repo_name}", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["repository"] == f"{registry.host}/{repo_name}" and sorted(doc["tags"]) == ["1", "2"]
    code, out, _ = run(capsys, "tags", f"{registry.host}/{repo_name}")
    assert sorted(out.split()) == ["1", "2"]


def test_layers_humanized_text_exact_json(capsys, registry, repo_name, pair):
    ref = f"{registry.host}/{repo_name}:1"
    code, out, _ = run(capsys, "layers", ref, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["digest"] == pair.v1
    assert set(doc) >= {"ref", "digest", "media_type", "layers", "config_bytes", "manifest_bytes"}
    sizes = [l["size"] for l in doc["layers"]]
    assert all(isinstance(s, int) for s in sizes) and sizes[1] > 300_000
    assert doc["layers"][1]["created_by"] == "/bin/sh -c pip install -r requirements.txt"
    code, out, _ = run(capsys, "layers", ref)
    assert "300.7 kB" in out and "RUN pip install -r requirements.txt" in out


def test_plan_counts_only_missing_layers(capsys, registry, repo_name, pair):
    host = registry.host
    code, out, _ = run(capsys, "plan", f"{host}/{repo_name}:2", "--have", f"{host}/{repo_name}:1", "--json")
    doc = json.loads(out)
    assert [l["needed"] for l in doc["layers"]] == [False, True, True]
    assert doc["total_bytes"] == doc["manifest_bytes"] + doc["config_bytes"] + sum(
        l["size"] for l in doc["layers"] if l["needed"])
    code, out, _ = run(capsys, "plan", f"{host}/{repo_name}:2", "--have", f"{host}/{repo_name}:2", "--json")
    assert json.loads(out)["total_bytes"] == json.loads(out)["manifest_bytes"]  # already has it all


def test_plan_equals_what_a_real_dockerd_pulls(capsys, registry, repo_name, pair, tmp_path):
    """Done-when of the foundation: plan total == bytes the registry served to a real dockerd."""
    host = registry.host
    daemon = DockerDaemon(tmp_path / "dockerd", insecure=[host]).start()
    try:
        daemon.client.images.pull(f"{host}/{repo_name}", tag="1")
        mark = registry.mark()
        daemon.client.images.pull(f"{host}/{repo_name}", tag="2")
        served = registry.served_bytes(mark)
    finally:
        daemon.stop()
    code, out, _ = run(capsys, "plan", f"{host}/{repo_name}:2", "--have", f"{host}/{repo_name}:1", "--json")
    assert code == 0
    assert json.loads(out)["total_bytes"] == served


@pytest.mark.parametrize("argv, needle", [
    (["layers", "127.0.0.1:{port}/a/b:1"], "connection refused"),
    (["layers", "no-such-host.invalid/a/b:1"], "not found (DNS"),
    (["layers", "Bad Ref!!"], "malformed"),
    (["layers", "{registry}/nope/nothing:1"], "not found"),
    (["layers", "{registry}/{repo}:nope"], "tag 'nope' not found"),
    (["layers", "oci:/nonexistent/dir:1"], "not an OCI image layout"),
    (["plan", "{registry}/{repo}:2", "--have", "{registry}/{repo}@sha256:" + "0" * 64], "not found"),
])
def test_bad_input_is_one_line(capsys, registry, repo_name, pair, argv, needle):
    argv = [a.format(port=free_port(), registry=registry.host, repo=repo_name) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code != 0
    assert err.startswith("fleet-tui: error: ") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
