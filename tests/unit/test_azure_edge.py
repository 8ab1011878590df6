"""`$edgeAgent` reported state → ModuleReport rules, content round trip, and the call budget."""

from __future__ import annotations

import time

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.hub import azure_edge as edge
from fleet_tui.hub.azure_query import in_chunks, in_list, literal, path_name
from fleet_tui.hub.azure_retry import TokenBucket
from fleet_tui.hub.protocol import Deployment, ModuleSpec

OLD = "acr.example.io/scoring@sha256:" + "1" * 64
NEW = "acr.example.io/scoring@sha256:" + "2" * 64


def twin(reported_image: str | None, *, version: int = 7, seen: int = 7, code: int = 200, runtime: str = "running", exit_code: int = 0) -> dict:
    modules = {}
    if reported_image is not None:
        modules["scoring"] = {"runtimeStatus": runtime, "exitCode": exit_code, "settings": {"image": reported_image}}
    return {
        "properties": {
            "desired": {"$version": version, "modules": {"scoring": {"status": "running", "settings": {"image": NEW}}}},
            "reported": {"lastDesiredVersion": seen, "lastDesiredStatus": {"code": code, "description": "why"}, "modules": modules},
        }
    }


@pytest.mark.parametrize(
    ("agent", "state"),
    [
        (twin(NEW), "running"),
        (twin(NEW, seen=6), "pending"),  # agent has not caught up with desired $version
        (twin(OLD, code=500), "downloading"),  # slow pull: 500 with the old image is not a failure
        (twin(None, code=500), "downloading"),
        (twin(OLD), "applying"),
        (twin(NEW, runtime="backoff", exit_code=137), "failed"),
        (twin(NEW, runtime="stopped"), "applying"),
        (twin(OLD, code=400), "failed"),
        (twin(OLD, code=406), "offline"),
    ],
)
def test_edge_agent_state_rules(agent: dict, state: str) -> None:
    report = edge.module_reports(agent)["scoring"]
    assert report.state == state
    if state == "failed":
        assert report.error


def test_failed_module_reports_exit_code_and_digest() -> None:
    report = edge.module_reports(twin(NEW, runtime="backoff", exit_code=137))["scoring"]
    assert "137" in report.error and report.digest == "sha256:" + "2" * 64 and report.bytes_downloaded == 0


def test_layered_content_round_trips_and_never_carries_credentials() -> None:
    deployment = Deployment("r1", "tags.x = 'y'", 5, {"scoring": ModuleSpec("scoring", NEW)})
    content = edge.modules_content(deployment, {})
    assert list(content) == ["$edgeAgent"] and list(content["$edgeAgent"]) == ["properties.desired.modules.scoring"]
    assert edge.modules_from_content(content) == {"scoring": ModuleSpec("scoring", NEW)}


def test_unpinned_images_are_refused() -> None:
    with pytest.raises(UsageError, match="digest-pinned"):
        edge.modules_content(Deployment("r1", "", 1, {"m": ModuleSpec("m", "acr.example.io/m:1.0")}), {})


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
