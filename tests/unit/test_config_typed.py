"""The typed config: wrong types, ranges, enums, durations and sizes are one line naming
the key and the accepted form; environment overrides; relative paths; `state_dir` is
where the local hub and journal live; `config show` / `config check`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.config import Config, load_config, parse_config
from fleet_tui.errors import UsageError
from fleet_tui.units import parse_duration, parse_size, parse_threshold

PINNED = "127.0.0.1:5000/ml/scoring@sha256:" + "a" * 64


@pytest.mark.parametrize("toml, key, form", [
    ('[hub]\nunits = 500', "hub.units = 500", "a whole number from 1 to 200"),
    ('[hub]\nunits = "2"', "hub.units = '2'", "a whole number"),  # strict: text is not a number
    ('[hub]\nunits = true', "hub.units = True", "a whole number"),
    ('[hub]\nkind = "azur"', "hub.kind = 'azur'", 'one of "local", "azure"'),
    ('[hub]\ntier = "S4"', "hub.tier = 'S4'", 'one of "S1", "S2", "S3"'),
    ('[hub]\ngroup_tag = ""', "hub.group_tag = ''", "not empty"),
    ('[cost]\nper_gb = -1', "cost.per_gb = -1", "a number ≥ 0"),
    ('[registry]\ntimeout = "10 minutes"', "registry.timeout = '10 minutes'", "a duration"),
    ('[registry]\ntimeout = 0', "registry.timeout = 0", "> 0"),
    ('[registry]\ninsecure = "r:5000"', "registry.insecure = 'r:5000'", "a list of strings"),
    ('[rollout]\non_failure = "panic"', "rollout.on_failure = 'panic'", 'one of "halt", "rollback"'),
    ('[rollout]\nwaves = "1,abc"', "rollout.waves = '1,abc'", "cumulative waves"),
    ('[rollout]\nmax_failed = "120%"', "rollout.max_failed = '120%'", "a percentage"),
    ('[rollout]\nbake = "-5s"', "rollout.bake = '-5s'", "a duration"),
    ('[rollout]\nmin_finished = 0', "rollout.min_finished = 0", "a whole number ≥ 1"),
    ('hub = 3', "hub = 3", "a table"),
    (f'[sim]\nimage = "{PINNED}"\n[sim.groups.a]\ndevices = 0', "sim.groups.a.devices = 0", "from 1 to 10,000,000"),
    (f'[sim]\nimage = "{PINNED}"\n[sim.groups.a]\n[[sim.failures]]\nfraction = 2', "sim.failures[0].fraction = 2",
     "a number from 0 to 1"),
])
def test_a_bad_value_is_one_line_with_key_and_form(tmp_path: Path, toml: str, key: str, form: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(UsageError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert "\n" not in message and message.startswith("config: ")
    assert key in message and form in message, message


@pytest.mark.parametrize("data, words", [
    ({"hub": {"grup_tag": "x"}}, "unknown key hub.grup_tag; known keys: auth, base_manifest, config_writes_per_minute"),
    ({"registry": {"auth": {"acr.io": {"password": "x"}}}}, 'unknown key registry.auth."acr.io".password'),
    ({"bogus": 1}, "unknown key bogus"),
    ({"sim": {"groups": {"a": {}}}}, "sim.image is required; give a digest-pinned image ref"),
    ({"sim": {"image": PINNED, "groups": {"a": {"link": "sat"}}}}, "sim.groups.a.link 'sat' is not a [sim.links.*]"),
])
def test_structure_errors_name_the_key(data: dict, words: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_config(data)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_durations_sizes_and_thresholds_parse_the_operator_forms() -> None:
    assert [parse_duration(v) for v in ("90s", "10m", "1h30m", "2d", "1.5h", "250ms", 45, "30")] == [
        90.0, 600.0, 5400.0, 172800.0, 5400.0, 0.25, 45.0, 30.0]
    assert [parse_size(v) for v in ("5 GB", "512 MiB", "1.5kB", "100", 7, "3B")] == [
        5 * 10**9, 512 * 2**20, 1500, 100, 7, 3]
    assert [parse_threshold(v) for v in (3, "3", "10%", "12.5 %", 100.0)] == ["3", "3", "10%", "12.5%", "100"]
    for bad, parse in (("10 minutes", parse_duration), ("1h-5m", parse_duration), ("5 GiGs", parse_size),
                       ("0.5 B", parse_size), ("101%", parse_threshold), ("-3", parse_threshold)):
        with pytest.raises(ValueError):
            parse(bad)
    cfg = parse_config({"rollout": {"gate_timeout": "15m", "bake": "1m30s", "waves": [1, "50%", "100%"]}})
    assert (cfg.rollout.gate_timeout, cfg.rollout.bake, cfg.rollout.waves) == (900.0, 90.0, ("1", "50%", "100%"))


def test_environment_overrides_win_over_the_file_and_are_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[hub]\nkind = "local"\nunits = 2\n[cost]\nper_gb = 100\n')
    env = {"FLEET_TUI_HUB__UNITS": "4", "FLEET_TUI_COST__CURRENCY": "€", "FLEET_TUI_REGISTRY__INSECURE": '["r:1"]',
           "FLEET_TUI_DEBUG": "1"}
    cfg = load_config(path, environ=env)
    assert (cfg.hub.units, cfg.cost.per_gb, cfg.cost.currency, cfg.registry.insecure) == (4, 100.0, "€", ("r:1",))
    assert set(cfg.env_keys) == {"hub.units", "cost.currency", "registry.insecure"}
    with pytest.raises(UsageError, match=r"hub.units \(from \$FLEET_TUI_HUB__UNITS\) = 'many' is invalid"):
        load_config(path, environ={"FLEET_TUI_HUB__UNITS": "many"})
    with pytest.raises(UsageError, match=r"unknown key hub.unitz \(from \$FLEET_TUI_HUB__UNITZ\)"):
        load_config(path, environ={"FLEET_TUI_HUB__UNITZ": "3"})
    other = tmp_path / "other.toml"
    other.write_text("[cost]\nper_gb = 7\n")
    assert load_config(None, environ={"FLEET_TUI_CONFIG": str(other)}).cost.per_gb == 7.0


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "c.toml"
    path.write_text('state_dir = "state"\n[hub]\npath = "../hub/fleet.sqlite"\n')
    monkeypatch.chdir("/")
    cfg = load_config(path, environ={})
    assert Path(cfg.state_dir) == tmp_path / "etc" / "state"
    assert cfg.hub_path().resolve() == (tmp_path / "hub" / "fleet.sqlite").resolve()


def test_state_dir_holds_the_local_hub_and_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "srv-fleet"
    path = tmp_path / "c.toml"
    path.write_text(f'state_dir = "{state}"\n')
    assert main(["-c", str(path), "hub", "seed", "--devices", "3", "--groups", "a", "--image", PINNED, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hub"] == str(state / "hub.sqlite")
    assert (state / "hub.sqlite").exists()
    assert load_config(path, environ={}).hub_path() == state / "hub.sqlite"


def test_config_show_prints_the_effective_config_with_secret_references_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACR_PW_FOR_SHOW", "s3cret-registry-password")
    monkeypatch.setenv("FLEET_TUI_COST__PER_GB", "123.5")
    path = tmp_path / "c.toml"
    path.write_text('[registry.auth."acr.io"]\nusername = "puller"\npassword_env = "ACR_PW_FOR_SHOW"\n')
    assert main(["-c", str(path), "config", "show"]) == 0
    out = capsys.readouterr().out
    shown = tomllib.loads(out)
    assert shown["registry"]["auth"]["acr.io"] == {"username": "puller", "password_env": "ACR_PW_FOR_SHOW"}
    assert shown["cost"]["per_gb"] == 123.5 and "cost.per_gb" in out.splitlines()[1]
    assert "s3cret" not in out
    assert main(["-c", str(path), "config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == str(path.resolve()) and data["config"]["hub"]["kind"] == "local"
    assert parse_config(shown) == parse_config(data["config"])  # what is shown loads back the same


def test_config_check_validates_without_a_working_default_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[hub]\nunits = 0\n")
    monkeypatch.setenv("FLEET_TUI_CONFIG", str(broken))  # the default config is broken: check still runs
    good = tmp_path / "good.toml"
    good.write_text(f'[sim]\nimage = "{PINNED}"\n[sim.groups.vans]\ndevices = 5\n[sim.groups.depot]\n')
    assert main(["config", "check", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["config", "check", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fleet-tui: error: config: hub.units = 0 is invalid") and err.count("\n") == 1
    assert main(["config", "check", str(broken), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["valid"] is False
    assert main(["config", "check", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "file": str(good.resolve()), "valid": True, "hub": "local", "waves": ["1", "10%", "50%", "100%"],
        "sim_devices": 6, "sim_groups": 2}


def test_policy_and_sim_defaults_come_from_the_models() -> None:
    from fleet_tui.devices.simconfig import SimSpec, parse_sim
    from fleet_tui.rollout.policy import Policy

    assert Policy.from_config({}) == Policy()
    spec = parse_sim({"image": PINNED, "groups": {"a": {}}})
    defaults = SimSpec(PINNED, spec.groups)
    assert (spec.seed, spec.speed, spec.poll_seconds, spec.chunk_bytes, spec.connections) == (
        defaults.seed, defaults.speed, defaults.poll_seconds, defaults.chunk_bytes, defaults.connections)
    assert Config() == parse_config({})
