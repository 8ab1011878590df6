"""`fleet-tui groups`, `devices` and `hub seed` through the real CLI entry, on a local hub."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.config import load_config
from fleet_tui.hub import open_hub
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import ModuleReport

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[hub]\npath = "{tmp_path / "hub.sqlite"}"\nmodule = "scoring"\n')
    hub = LocalHub(tmp_path / "hub.sqlite")
    groups = ["vans-west", "trucks"]
    hub.register_devices((f"dev-{i}", {"fleetGroup": groups[i % 2]}) for i in range(6))
    run = {"scoring": ModuleReport("scoring", f"reg/ml/scoring@{A}", A, "running")}
    hub.report_many((f"dev-{i}", run, True) for i in range(4))
    hub.report("dev-4", {"scoring": ModuleReport("scoring", f"reg/ml/scoring@{B}", B, "downloading")})
    hub.close()  # dev-5 never reported: offline
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_groups_json(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "-c", cfg, "groups", "--json")
    assert out == {
        "groups": [
            {"name": "trucks", "devices": 3, "images": {A: 2}, "online": 2, "offline": 1},
            {"name": "vans-west", "devices": 3, "images": {A: 2, B: 1}, "online": 3, "offline": 0},
        ]
    }


def test_groups_table(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", cfg, "groups"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GROUP", "DEVICES", "ONLINE", "OFFLINE", "IMAGES", "(scoring)"]
    assert lines[1].split()[:4] == ["trucks", "3", "2", "1"] and "aaaaaaaaaaaa ×2" in lines[1]
    assert "1 not reporting" in lines[1]
    assert "aaaaaaaaaaaa ×2, bbbbbbbbbbbb ×1" in lines[2]
    assert lines[1].index("3") == lines[2].index("3")  # columns aligned


def test_devices_json_and_filters(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "-c", cfg, "devices", "--json")
    assert [d["id"] for d in out["devices"]] == [f"dev-{i}" for i in range(6)]
    first = out["devices"][0]
    assert set(first) >= {"id", "group", "image", "state", "last_seen", "digest"}
    assert first["group"] == "vans-west" and first["state"] == "running" and first["digest"] == A
    assert first["image"] == f"reg/ml/scoring@{A}" and first["last_seen"].endswith("Z")
    assert out["devices"][5]["state"] == "offline" and out["devices"][5]["last_seen"] is None
    vans = run_json(capsys, "-c", cfg, "devices", "--group", "vans-west", "--json")
    assert [d["id"] for d in vans["devices"]] == ["dev-0", "dev-2", "dev-4"]
    down = run_json(capsys, "-c", cfg, "devices", "--state", "downloading", "--json")
    assert [d["id"] for d in down["devices"]] == ["dev-4"]


def test_devices_json_streams_one_device_per_line(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Written as the hub pages it (a 1,000,000-device group starts printing at once):
    each device is one line of the JSON document, and the document as a whole parses."""
    from fleet_tui.hub import local_listing

    old, local_listing.CHUNK = local_listing.CHUNK, 2  # three pages of six devices
    try:
        assert main(["-c", cfg, "devices", "--json"]) == 0
    finally:
        local_listing.CHUNK = old
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[:2] == ["{", '  "devices": ['] and lines[-2:] == ["  ]", "}"]
    assert [json.loads(line.strip().rstrip(","))["id"] for line in lines[2:-2]] == [f"dev-{i}" for i in range(6)]
    assert [d["id"] for d in json.loads(text)["devices"]] == [f"dev-{i}" for i in range(6)]
    assert main(["-c", cfg, "devices", "--state", "failed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"devices": []}


def test_devices_table_humanizes_last_seen(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    hub = open_hub(load_config(cfg))
    assert isinstance(hub, LocalHub)
    hub.store.conn.execute("UPDATE devices SET last_seen = ? WHERE device_id = 'dev-1'", (time.time() - 180,))
    hub.close()
    assert main(["-c", cfg, "devices", "--group", "trucks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["DEVICE", "GROUP"]
    assert out[1].split()[:4] == ["dev-1", "trucks", "aaaaaaaaaaaa", "running"] and "3 minutes ago" in out[1]
    assert "never" in out[3] and "offline" in out[3]
    assert out[-1] == "3 devices"


def test_unknown_group_is_one_line_listing_known(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", cfg, "devices", "--group", "boats"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "fleet-tui: error: unknown group 'boats'; known groups: trucks, vans-west\n"


def test_bad_state_is_one_line(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", cfg, "devices", "--state", "sleeping"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown device state 'sleeping'" in err


def test_hub_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\npath = "{tmp_path / "seeded.sqlite"}"\n')
    out = run_json(capsys, "-c", str(cfg), "hub", "seed", "--devices", "7", "--groups", "a,b", "--image", f"r/x@{A}", "--json")
    assert out["devices"] == 7 and out["new"] == 7
    groups = run_json(capsys, "-c", str(cfg), "groups", "--json")["groups"]
    assert [(g["name"], g["devices"], g["images"], g["online"]) for g in groups] == [("a", 4, {A: 4}, 4), ("b", 3, {A: 3}, 3)]
    assert main(["-c", str(cfg), "hub", "seed", "--devices", "2", "--groups", "a", "--image", "r/x:latest"]) == 2
    assert "not digest-pinned" in capsys.readouterr().err
    assert main(["-c", str(cfg), "--read-only", "hub", "seed", "--devices", "2", "--groups", "a", "--image", f"r/x@{A}"]) == 2
    assert "--read-only" in capsys.readouterr().err


def test_empty_hub_says_how_to_fill_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\npath = "{tmp_path / "empty.sqlite"}"\n')
    assert main(["-c", str(cfg), "groups"]) == 0
    assert "hub seed" in capsys.readouterr().out


def test_example_config_loads_and_names_no_secret() -> None:
    example = REPO / "config" / "example.toml"
    config = load_config(example)
    assert config.hub.kind == "local" and config.hub.group_tag == "fleetGroup"
    assert config.hub.connection_string_env == "IOTHUB_CONNECTION_STRING"
    assert "SharedAccessKey" not in example.read_text()
