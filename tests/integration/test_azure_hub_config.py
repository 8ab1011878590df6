"""AzureHub against the loopback HTTPS IoT Hub (real azure-iot-hub SDK): the `[hub]` budget
keys reach `from_config`, the deployment in force is the applied configuration of highest
priority, and a group name with a quote (and a backslash) is written with IoT Hub's escapes
in every request — and selects the same devices on the local hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.config import Config, HubConfig, load_config
from fleet_tui.errors import RemoteError
from fleet_tui.hub.azure import AzureHub
from fleet_tui.hub.azure_retry import HubLimits
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleReport, ModuleSpec
from fleet_tui.rollout.create import target_condition
from fleet_tui.secrets import Secret
from fleet_tui.ui.live_data import LiveConsoleData
from tests.support.edge_twins import deploy, module
from tests.support.fake_iothub import FakeIotHub

OLD = "myacr.azurecr.io/scoring@sha256:" + "a" * 64
NEW = "myacr.azurecr.io/scoring@sha256:" + "b" * 64
QUOTED = "o'brien \\ co"  # a quote and a backslash: both must be escaped, neither doubled
FAST = HubLimits(queries_per_s=1000, config_writes_per_s=1000, twin_updates_per_s=1000, other_per_s=1000, backoff_base=0.01)


@pytest.fixture
def fake(tmp_path):
    hub = FakeIotHub(tmp_path, tier="S3").start()  # S3's rates: the tests' calls in seconds, still throttled
    for device_id, group in (("van-0", "vans"), ("van-1", "vans"), ("obr-0", QUOTED), ("obr-1", "o'brien")):  # obr-1: a near miss
        hub.add_device(device_id, {"fleetGroup": group})
    deploy(hub, "base", "tags.fleetGroup = 'vans'", 10, {"scoring": module(OLD)})
    yield hub
    hub.stop()


@pytest.fixture
def azure(fake):
    hub = AzureHub(Secret(fake.connection_string), limits=FAST, ca_bundle=str(fake.cert))
    yield hub
    hub.close()


def azure_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(f'[hub]\nkind = "azure"\nconnection_string_env = "MY_HUB"\n{extra}')
    return path


def test_hub_keys_set_the_budget_and_retries_that_from_config_uses(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_HUB", fake.connection_string)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.cert))
    plain = AzureHub.from_config(load_config(azure_config(tmp_path)))
    assert plain.limits == HubLimits()  # no keys: today's one-S1-unit budget
    plain.close()
    cfg = load_config(azure_config(tmp_path, 'tier = "S3"\nunits = 2\nmax_retries = 1\nrequest_timeout = 5.0\n'))
    hub = AzureHub.from_config(cfg)
    try:
        assert hub.caller.buckets["query"].rate == 2000 / 60 and hub.caller.buckets["twin_update"].rate == 500
        assert hub.caller.buckets["config_write"].rate == 40 / 60 and hub.registry.protocol.config.connection.timeout == 5.0
        fake.fail_next("GET", "/twins/van-1", 429, {"Retry-After": "0.01"})
        assert hub.get_device("van-1").device_id == "van-1"  # one retry is allowed
        fake.fail_next("GET", "/twins/van-0", 429, {"Retry-After": "0.01"}, times=5)
        with pytest.raises(RemoteError, match="HTTP 429"):
            hub.get_device("van-0")
        assert len(fake.of("GET", "/twins/van-0")) == 2  # 1 try + max_retries
    finally:
        hub.close()


def test_a_bad_hub_key_is_one_line_from_the_cli_naming_it(fake, tmp_path):
    config = azure_config(tmp_path, 'tier = "S9"\n')
    env = {**os.environ, "MY_HUB": fake.connection_string}
    done = subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(config), "groups"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "hub.tier" in done.stderr and "S9" in done.stderr
    assert not fake.requests  # refused before any call


def test_deployment_in_force_is_the_applied_configuration_of_highest_priority(fake, azure):
    azure.create_deployment(Deployment("release-41", "tags.fleetGroup = 'vans'", 41, {"scoring": ModuleSpec("scoring", NEW)}))
    fake.requests.clear()
    page = azure.query_devices("tags.fleetGroup = 'vans'")
    assert [d.deployment_id for d in page.items] == ["release-41"] * 2 and set(page.items[0].applied) == {"base", "release-41"}
    assert len(fake.of("GET", "/configurations")) == 1  # priorities read once (two applied), then reused
    azure.create_deployment(Deployment("release-42", "tags.fleetGroup = 'vans'", 42, {"scoring": ModuleSpec("scoring", NEW)}))
    assert [d.deployment_id for d in azure.query_devices("tags.fleetGroup = 'vans'").items] == ["release-42"] * 2
    assert azure.get_device("van-0").deployment_id == "release-42"
    # a tie on priority goes to the later creation; a deployment write drops the cached ranks
    fake.configurations["release-41"]["createdTimeUtc"] = "2099-06-01T10:00:00Z"
    azure.update_deployment("release-41", priority=42)
    assert azure.get_device("van-0").deployment_id == "release-41"
    fake.configurations["release-41"]["createdTimeUtc"] = "2024-04-01T10:00:00Z"
    azure.update_deployment("release-41", priority=42, labels={"touched": "1"})
    assert azure.get_device("van-1").deployment_id == "release-42"


def test_a_quoted_group_name_goes_to_iot_hub_backslash_escaped(fake, tmp_path):
    env = {**os.environ, "MY_HUB": fake.connection_string, "REQUESTS_CA_BUNDLE": str(fake.cert)}
    done = subprocess.run(
        [sys.executable, "-m", "fleet_tui.cli", "-c", str(azure_config(tmp_path)), "devices", "--group", QUOTED, "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [d["id"] for d in json.loads(done.stdout)["devices"]] == ["obr-0"]
    queries = [r.body["query"] for r in fake.of("POST", "/devices/query")]
    assert "SELECT * FROM devices WHERE capabilities.iotEdge = true AND (tags.fleetGroup = 'o\\'brien \\\\ co')" in queries
    assert not any("''" in q for q in queries)


def test_a_rollout_condition_for_a_quoted_group_is_escaped_in_the_configuration(fake, azure):
    spec = {"group_tag": "fleetGroup", "group": QUOTED, "tag": "rollout_r1"}
    azure.create_deployment(Deployment("rollout-r1-full", target_condition(spec, "full"), 100, {"scoring": ModuleSpec("scoring", NEW)}))
    (put,) = fake.of("PUT", "/configurations/rollout-r1-full")
    assert put.body["targetCondition"] == "tags.fleetGroup = 'o\\'brien \\\\ co' AND tags.rollout_r1 = 'full'"


def test_a_quoted_group_name_selects_the_same_devices_on_the_local_hub(tmp_path, capsys):
    db = tmp_path / "hub.sqlite"
    hub = LocalHub(db)
    groups = {"obr-0": QUOTED, "obr-1": "o'brien", "obr-2": "o'brien \\\\ co", "van-0": "vans"}
    hub.register_devices((d, {"fleetGroup": g, "rollout_r1": "full"}) for d, g in groups.items())
    digest = "sha256:" + "a" * 64
    hub.report_many((d, {"scoring": ModuleReport("scoring", OLD, digest, "running")}, True) for d in groups)
    spec = {"group_tag": "fleetGroup", "group": QUOTED, "tag": "rollout_r1"}
    hub.create_deployment(Deployment("rollout-r1-full", target_condition(spec, "full"), 100, {"scoring": ModuleSpec("scoring", NEW)}))
    assert {d: hub.desired_for(d)[0] for d in groups} == {"obr-0": "rollout-r1-full", "obr-1": "", "obr-2": "", "van-0": ""}
    hub.close()
    config = tmp_path / "fleet.toml"
    config.write_text(f'[hub]\npath = "{db}"\n')
    assert main(["-c", str(config), "devices", "--group", QUOTED, "--json"]) == 0
    assert [d["id"] for d in json.loads(capsys.readouterr().out)["devices"]] == ["obr-0"]
    data = LiveConsoleData(Config(hub=HubConfig(path=str(db)), state_dir=str(tmp_path / "state")), read_only=True)
    assert [row.id for row in data.devices(QUOTED)] == ["obr-0"]
