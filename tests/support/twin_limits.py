"""Twin and deployment limits as the fake hub enforces them, written from the service's
documentation and reported errors (not from fleet_tui.hub.azure_limits, so the fake cannot
share its mistakes):

- iot-hub-devguide-device-twins "Device twin size": tags 8 KB, desired and reported 32 KB each,
  computed over every property as the UTF-8 length of its key plus its value — strings by
  their UTF-8 characters excluding Unicode control characters (C0, C1), numbers 8 bytes,
  booleans 4, nested objects as the sum of theirs; read-only `$version`/`$metadata` excluded;
- the same page: keys up to 1 KB, string values up to 4 KB ("ErrorCode:ArgumentInvalid;
  Property or Tag value should be maximum 4096 bytes", Azure/iotedge#5921), depth 10
  (Azure/iotedge#1932 aligned edgeHub's validator with the hub: TwinPropertyMaxDepth = 10);
- a device over the reported limit: "'Properties.Reported' size should be less than 32768
  bytes." (errorCode 403100, Azure/iotedge#7035);
- iot-edge-limits-and-restrictions: 50 modules per deployment.

Each check returns the hub's complaint ("" when it accepts).
"""

from __future__ import annotations

import unicodedata
from typing import Any

TAGS_LIMIT = 8 * 1024
PROPERTIES_LIMIT = 32 * 1024
VALUE_LIMIT, KEY_LIMIT, DEPTH_LIMIT = 4096, 1024, 10
MODULES_PER_DEPLOYMENT = 50
READ_ONLY = ("$version", "$metadata")


def _chars(text: str) -> int:
    return sum(len(c.encode("utf-8")) for c in text if unicodedata.category(c) != "Cc")


def measured(doc: Any) -> int:
    if isinstance(doc, dict):
        return sum(_chars(k) + measured(v) for k, v in doc.items() if k not in READ_ONLY)
    if isinstance(doc, list):
        return sum(measured(v) for v in doc)
    if doc is True or doc is False:
        return 4
    if isinstance(doc, (int, float)):
        return 8
    return _chars(doc) if isinstance(doc, str) else 0


def _walk(doc: Any, depth: int) -> str:
    if isinstance(doc, list):
        for item in doc:
            complaint = _walk(item, depth)
            if complaint:
                return complaint
        return ""
    if isinstance(doc, str):
        return "Property or Tag value should be maximum 4096 bytes." if _chars(doc) > VALUE_LIMIT else ""
    if not isinstance(doc, dict):
        return ""
    if depth > DEPTH_LIMIT:
        return f"Twin depth exceeds the maximum of {DEPTH_LIMIT}."
    for key, value in doc.items():
        if _chars(key) > KEY_LIMIT:
            return "Property or Tag name should be maximum 1024 bytes."
        complaint = _walk(value, depth + 1)
        if complaint:
            return complaint
    return ""


def section_error(doc: dict, limit: int, name: str) -> str:
    shape = _walk(doc, 0)  # the root is depth 0: ten nested objects below it are fine
    if shape:
        return shape
    size = measured(doc)
    return f"'{name}' size should be less than {limit} bytes." if size > limit else ""


def _as_desired(section: dict) -> dict:
    """A configuration's `properties.desired…` keys as the desired document the hub writes."""
    out: dict = {}
    for key, value in section.items():
        path = [p for p in key.split(".")[2:]] if key.startswith("properties.desired") else key.split(".")
        if not path:
            if isinstance(value, dict):
                out.update(value)
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def deployment_error(content: Any) -> str:
    """The complaint about a configuration's `content.modulesContent`, if any."""
    modules_content = (content or {}).get("modulesContent") or {}
    agent = modules_content.get("$edgeAgent") or {}
    base = ((agent.get("properties.desired") or {}).get("modules")) or {}
    layered = [k for k in agent if k.startswith("properties.desired.modules.") and k.count(".") == 3]
    if len(base) + len(layered) > MODULES_PER_DEPLOYMENT:
        return f"A deployment can have at most {MODULES_PER_DEPLOYMENT} modules ({len(base) + len(layered)} given)."
    for module_id, section in modules_content.items():
        complaint = section_error(_as_desired(section or {}), PROPERTIES_LIMIT, f"{module_id} Properties.Desired")
        if complaint:
            return complaint
    return ""
