"""`fleet-tui demo --no-console` on a fresh dir, then `groups`, `preview` (naive vs rebased)
and `rebase` on the demo fleet — the story a new user follows, headless."""

from __future__ import annotations

import json

import pytest

from fleet_tui.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--dir", str(root), "--devices", "12", "--no-console", "--json"])
    assert code == 0
    yield root
    main(["-c", str(root / "demo.toml"), "sim", "down"])


def test_demo_fleet_is_registered(demo, capsys):
    code, out, _ = run(capsys, "-c", str(demo / "demo.toml"), "groups", "--json")
    groups = {g["name"]: g for g in json.loads(out)["groups"]}
    assert code == 0 and set(groups) == {"vans-west", "trucks-east", "drones", "factory-basement"}
    assert sum(g["devices"] for g in groups.values()) == 12
    # `sim up` returns only once every device has reported what it runs
    code, out, _ = run(capsys, "-c", str(demo / "demo.toml"), "devices", "--json")
    states = {d["state"] for d in json.loads(out)["devices"]}
    assert states <= {"running", "offline"} and "running" in states
    assert all(d["digest"] for d in json.loads(out)["devices"])


def test_preview_naive_vs_rebased(demo, capsys):
    cfg, store = str(demo / "demo.toml"), demo / "store"
    code, out, err = run(capsys, "-c", cfg, "rebase", f"oci:{store}:2", "--onto", f"oci:{store}:1",
                         "--paths", "/var/azureml-app/azureml-models,/var/azureml-app/iot_score.py",
                         "--tag", "2-rebased", "--json")
    assert code == 0, err
    rebased = json.loads(out)
    code, out, _ = run(capsys, "-c", cfg, "log", "--json")  # the build is journalled with who pushed it
    build = json.loads(out)["entries"][0]
    assert code == 0 and (build["action"], build["subject"]) == ("build", rebased["ref"]) and build["by"]
    assert build["detail"]["onto"] == f"oci:{store}:1"
    code, out, _ = run(capsys, "-c", cfg, "preview", f"oci:{store}:2", "--group", "vans-west",
                       "--compare", f"oci:{store}:2-rebased", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["devices"]) == 4
    naive_each = {d["bytes"] for d in doc["devices"]}
    rebased_each = {d["bytes"] for d in doc["compare"]["devices"]}
    assert len(naive_each) == 1 and naive_each.pop() > 70_000_000  # the whole dependency layer again
    assert rebased_each == {rebased["bytes_for_old_holders"]} and rebased["bytes_for_old_holders"] < 20_000
    assert doc["total_bytes"] == sum(d["bytes"] for d in doc["devices"])
    assert doc["cost"] == pytest.approx(doc["total_bytes"] / 1e9 * 720.0, abs=0.01)


def test_preview_unknown_group_is_one_line(demo, capsys):
    code, _, err = run(capsys, "-c", str(demo / "demo.toml"), "preview", f"oci:{demo / 'store'}:2", "--group", "nope")
    assert code != 0 and err.count("\n") == 1 and "known groups: drones" in err


def test_the_text_preview_names_the_compared_image_and_counts_in_words(demo, capsys):
    """`--compare` prices the waves of the image it names (no literal REF placeholder), and
    counts read as words (issue 25.9)."""
    cfg, store = str(demo / "demo.toml"), demo / "store"
    compared = f"oci:{store}:3"
    code, out, _ = run(capsys, "-c", cfg, "preview", f"oci:{store}:2", "--group", "vans-west", "--compare", compared)
    assert code == 0
    assert f"for {compared}" in out and " REF" not in out and "TARGET" not in out
    assert "for 4 devices" in out and "1 devices" not in out
