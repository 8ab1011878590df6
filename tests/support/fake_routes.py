"""Routes of the fake IoT Hub: the REST resources `azure-iot-hub` 2.7.0 calls, answering
like the service does (status codes, etags, continuation header, error bodies).

`route(hub, method, path, headers, body)` → (status, JSON body or None, extra headers);
the caller holds `hub.lock`.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from tests.support.fake_query import run_query

Result = tuple[int, Any, dict[str, str]]


def _err(status: int, code: str, text: str) -> Result:
    return status, {"Message": f"ErrorCode:{code};{text}", "ExceptionMessage": "Tracking ID:fake"}, {}


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _etag_ok(current: str, if_match: str | None) -> bool:
    return if_match is None or if_match in ("*", "\"*\"") or if_match == f'"{current}"'


def _query(hub: Any, headers: dict[str, str], body: Any) -> Result:
    try:
        rows = run_query(str((body or {}).get("query", "")), list(hub.devices.values()), list(hub.modules.values()))
    except ValueError as exc:
        return _err(400, "BadRequest", f"Invalid query: {exc}")
    size = int(headers.get("x-ms-max-item-count") or 100)
    token = headers.get("x-ms-continuation")
    start = int(base64.b64decode(token).decode().split(":")[1]) if token else 0
    page = rows[start : start + size]
    extra = {"x-ms-item-type": "twin" if body and "*" in body.get("query", "") else "raw"}
    if start + size < len(rows):
        extra["x-ms-continuation"] = base64.b64encode(f"offset:{start + size}".encode()).decode()
    return 200, page, extra


def _twins(hub: Any, method: str, parts: list[str], headers: dict[str, str], body: Any) -> Result:
    device = hub.devices.get(parts[1])
    if len(parts) == 4 and parts[2] == "modules":
        module = hub.modules.get((parts[1], parts[3]))
        return (200, module, {}) if module else _err(404, "ModuleNotFound", f"module {parts[3]} not found")
    if device is None:
        return _err(404, "DeviceNotFound", f"device {parts[1]} not found")
    if method == "GET":
        return 200, device, {}
    if method == "PATCH":
        if not _etag_ok(device["etag"], headers.get("if-match")):
            return _err(412, "PreconditionFailed", "Precondition failed: etag mismatch")
        _merge(device.setdefault("tags", {}), (body or {}).get("tags") or {})
        device["etag"] = hub.next_etag()
        device["version"] += 1
        return 200, device, {}
    return _err(405, "MethodNotAllowed", method)


def _configurations(hub: Any, method: str, parts: list[str], headers: dict[str, str], body: Any) -> Result:
    if len(parts) == 1:
        return 200, list(hub.configurations.values()), {}
    cid = parts[1]
    current = hub.configurations.get(cid)
    if method == "GET":
        return (200, current, {}) if current else _err(404, "ConfigurationNotFound", cid)
    if method == "DELETE":
        if current is None:
            return _err(404, "ConfigurationNotFound", cid)
        del hub.configurations[cid]
        return 204, None, {}
    if method != "PUT":
        return _err(405, "MethodNotAllowed", method)
    if_match = headers.get("if-match")
    if current is None:
        created = dict(body, etag=hub.next_etag(), createdTimeUtc="2024-05-01T10:00:00Z", lastUpdatedTimeUtc="2024-05-01T10:00:00Z")
        created.setdefault("labels", {})
        hub.configurations[cid] = created
        return 200, created, {}
    if if_match is None:
        return _err(409, "ConfigurationAlreadyExists", f"configuration {cid} exists")
    if not if_match.startswith('"'):
        return _err(409, "Conflict", "If-Match must be a quoted etag")  # azure-iot-hub-python#2
    if not _etag_ok(current["etag"], if_match):
        return _err(412, "PreconditionFailed", "Precondition failed: etag mismatch")
    if body.get("content") != current.get("content"):
        return _err(400, "BadRequest", "configuration content cannot be changed")
    for key in ("targetCondition", "priority", "labels"):
        current[key] = body.get(key)
    current["etag"] = hub.next_etag()
    return 200, current, {}


def _jobs(hub: Any, method: str, parts: list[str], body: Any) -> Result:
    job_id = parts[2]
    if method == "PUT":
        if job_id in hub.jobs:
            return _err(409, "JobAlreadyExists", job_id)
        targets = run_query(f"SELECT * FROM devices WHERE {body['queryCondition']}", list(hub.devices.values()), [])
        for twin in targets:
            _merge(twin.setdefault("tags", {}), (body.get("updateTwin") or {}).get("tags") or {})
            twin["etag"] = hub.next_etag()
        job = dict(body, status="queued", createdTime="2024-05-01T10:00:00Z")
        hub.jobs[job_id] = dict(job, status="completed", deviceJobStatistics={"deviceCount": len(targets), "succeededCount": len(targets), "failedCount": 0})
        return 200, job, {}
    job = hub.jobs.get(job_id)
    return (200, job, {}) if job else _err(404, "JobNotFound", job_id)


def route(hub: Any, method: str, path: str, headers: dict[str, str], body: Any) -> Result:
    parts = path.strip("/").split("/")
    if path == "/devices/query" and method == "POST":
        return _query(hub, headers, body)
    if parts[0] == "twins" and len(parts) >= 2:
        return _twins(hub, method, parts, headers, body)
    if parts[0] == "configurations":
        return _configurations(hub, method, parts, headers, body)
    if parts[:2] == ["jobs", "v2"] and len(parts) == 3:
        return _jobs(hub, method, parts, body)
    if parts[0] == "devices" and len(parts) == 3 and parts[2] == "applyConfigurationContent" and method == "POST":
        return (204, None, {}) if parts[1] in hub.devices else _err(404, "DeviceNotFound", parts[1])
    return _err(404, "NotFound", f"no route {method} {path}")
