"""`$edgeAgent` reported state → ModuleReport rules, the deployment in force, content round
trip, and the call budget (token bucket, tier limits, `[hub]` key checks)."""

from __future__ import annotations

import json
import time

import pytest

from fleet_tui.config import HubConfig, parse_config
from fleet_tui.errors import UsageError
from fleet_tui.hub import azure_agent as agent_state
from fleet_tui.hub import azure_edge as edge
from fleet_tui.hub.azure_query import in_chunks, in_list, literal, path_name
from fleet_tui.hub.azure_retry import HubLimits, TokenBucket, limits_for, limits_from_config
from fleet_tui.hub.protocol import Deployment, ModuleSpec

OLD = "acr.example.io/scoring@sha256:" + "1" * 64
NEW = "acr.example.io/scoring@sha256:" + "2" * 64


def twin(reported_image: str | None, *, version: int = 7, seen: int = 7, code: int = 200, runtime: str = "running",
         exit_code: int = 0, description: str = "why") -> dict:
    modules = {}
    if reported_image is not None:
        modules["scoring"] = {"runtimeStatus": runtime, "exitCode": exit_code, "settings": {"image": reported_image}}
    return {
        "properties": {
            "desired": {"$version": version, "modules": {"scoring": {"status": "running", "settings": {"image": NEW}}}},
            "reported": {"lastDesiredVersion": seen, "lastDesiredStatus": {"code": code, "description": description},
                         "modules": modules, "runtime": {"platform": {"os": "Linux", "architecture": "aarch64"}}},
        }
    }


def reports(agent: dict) -> dict:
    return agent_state.module_reports(agent, edge.desired_modules(agent))


PULL_FAILED = 'One or more errors occurred. (Error calling Create module scoring: registry operation error: pull image "x")'


@pytest.mark.parametrize(
    ("agent", "state"),
    [
        (twin(NEW), "running"),
        (twin(NEW, seen=6), "pending"),  # agent has not caught up with desired $version
        (twin(OLD, code=500, description="The operation was canceled."), "downloading"),  # a slow pull
        (twin(None, code=500, description="Task timed out"), "downloading"),
        (twin(OLD, code=500, description=PULL_FAILED), "failed"),  # unauthorized / manifest unknown look alike
        (twin(OLD, code=500, description=""), "downloading"),
        (twin(OLD), "applying"),
        (twin(NEW, runtime="backoff", exit_code=137), "failed"),
        (twin(NEW, runtime="stopped"), "applying"),
        (twin(OLD, code=400, seen=6), "failed"),  # a rejected desired state leaves lastDesiredVersion behind
        (twin(OLD, code=412, seen=6), "failed"),
        (twin(OLD, code=406), "offline"),
        (twin(OLD, seen=7, code=0), "downloading"),
    ],
)
def test_edge_agent_state_rules(agent: dict, state: str) -> None:
    report = reports(agent)["scoring"]
    assert report.state == state
    if state == "failed":
        assert report.error
    assert report.platform == "linux/arm64" and report.bytes_downloaded == 0


def test_failed_module_reports_exit_code_and_digest() -> None:
    report = reports(twin(NEW, runtime="backoff", exit_code=137))["scoring"]
    assert "137" in report.error and report.digest == "sha256:" + "2" * 64
    assert "image pull failed" in reports(twin(OLD, code=500, description=PULL_FAILED))["scoring"].error


def test_liveness_comes_from_edge_hub_or_a_recent_agent_report() -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30))
    agent = {"connectionState": "Disconnected", "properties": {"reported": {"$metadata": {"$lastUpdated": stamp}}}}
    assert agent_state.is_online({}, {"connectionState": "Connected"}, now, 600)
    assert agent_state.is_online(agent, {"connectionState": "Disconnected"}, now, 600)
    assert not agent_state.is_online(agent, {"connectionState": "Disconnected"}, now, 10)
    assert not agent_state.is_online({"connectionState": "Disconnected"}, None, now, 600)  # $edgeAgent's own state says nothing


def test_layered_content_is_the_managed_module_whole_and_nothing_else() -> None:
    options = json.dumps({"HostConfig": {"Binds": [f"/data/{i}:/mnt/{i}" for i in range(45)]}})  # > 900 characters
    assert len(options) > 900
    definition = {"version": "3.1", "type": "docker", "status": "running", "restartPolicy": "on-failure",
                  "imagePullPolicy": "on-create", "startupOrder": 2, "env": {"MODE": {"value": "edge"}},
                  "settings": {"image": OLD}}
    modules = {"scoring": ModuleSpec("scoring", NEW, options, definition), "sidecar": ModuleSpec("sidecar", "busybox:1")}
    content = edge.modules_content(Deployment("r1", "tags.x = 'y'", 5, modules), "scoring")
    assert list(content["$edgeAgent"]) == ["properties.desired.modules.scoring"]  # no sibling written, unpinned or not
    entry = content["$edgeAgent"]["properties.desired.modules.scoring"]
    assert {k: entry[k] for k in definition if k != "settings"} == {k: v for k, v in definition.items() if k != "settings"}
    chunks = [k for k in entry["settings"] if k.startswith("createOptions")]
    assert chunks == ["createOptions", "createOptions01"] and all(len(entry["settings"][k]) <= 512 for k in chunks)
    back = edge.modules_from_content(content)["scoring"]
    assert back.image == NEW and back.create_options == options and back.definition["startupOrder"] == 2
    with pytest.raises(UsageError, match="at most 4096"):
        edge.chunk_create_options("x" * 5000, "scoring")


def test_unpinned_images_are_refused() -> None:
    with pytest.raises(UsageError, match="digest-pinned"):
        edge.modules_content(Deployment("r1", "", 1, {"m": ModuleSpec("m", "acr.example.io/m:1.0")}), "m")


def test_query_literals_and_in_lists_cannot_change_the_query() -> None:
    assert literal("it's") == "'it\\'s'" and literal(3) == "3"
    assert in_list(["a", "b"]) == "['a', 'b']"
    chunks = list(in_chunks([f"device-{i:05d}" for i in range(2000)], budget=1000))
    assert sum(len(c) for c in chunks) == 2000 and all(len(in_list(c)) <= 1000 for c in chunks)
    with pytest.raises(UsageError):
        path_name("group; DROP", "group tag")


def test_token_bucket_spaces_calls_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=50.0, burst=2)
    start = time.monotonic()
    for _ in range(7):  # 2 free, then 5 at 50/s ≈ 0.1 s
        bucket.take()
    assert 0.08 <= time.monotonic() - start < 1.0


def test_the_applied_configuration_with_the_highest_priority_is_the_deployment() -> None:
    applied = {"configurations": {"hi": {"status": "Applied"}, "tie-new": {"status": "Applied"}, "tie-old": {"status": "Applied"},
                                  "gone": {"status": "Applied"}, "top": {"status": "Targeted"}}}
    ranks = {"hi": (50, 1.0), "tie-new": (50, 3.0), "tie-old": (50, 2.0), "top": (99, 9.0)}
    assert agent_state.applied_configuration(applied, ranks) == "tie-new"  # Targeted-only "top" is not in force
    assert agent_state.applied_configuration(applied, {"hi": (7, 0.0)}) == "hi"  # unknown ids rank last
    assert agent_state.applied_configuration({"configurations": {"only": {"status": "Applied"}}}) == "only"
    assert agent_state.applied_configuration({}) == ""


def test_tier_and_units_scale_the_documented_limits() -> None:
    assert limits_for() == HubLimits() and limits_from_config(HubConfig()) == HubLimits()
    s2 = limits_for("S2", 20)
    assert s2.queries_per_s == 400 / 60 and s2.config_writes_per_s == 400 / 60 and s2.twin_updates_per_s == 100
    assert limits_for("S2", 2).twin_updates_per_s == 50  # "higher of 50/sec or 5/sec/unit"
    s3 = limits_for("S3", 2, max_retries=0, queries_per_minute=30, timeout=5)
    assert s3.queries_per_s == 0.5 and s3.twin_updates_per_s == 500 and s3.max_attempts == 1 and s3.timeout == 5
    assert limits_for("S1", 4).twin_updates_per_s == 50  # S1: flat per hub, not per unit


@pytest.mark.parametrize(
    "hub, key",
    [({"tier": "s4"}, "hub.tier"), ({"units": 0}, "hub.units"), ({"units": 1.5}, "hub.units"),
     ({"max_retries": -1}, "hub.max_retries"), ({"max_retries": True}, "hub.max_retries"),
     ({"queries_per_minute": "fast"}, "hub.queries_per_minute"), ({"request_timeout": 0}, "hub.request_timeout"),
     ({"retries": 3}, "hub.retries")],
)
def test_bad_hub_budget_keys_are_one_line_naming_the_key(hub: dict, key: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_config({"hub": hub})
    assert key in str(err.value) and "\n" not in str(err.value)
