"""What IoT Hub accepts in a deployment, checked before the PUT so a refusal is one line that
names the limit — not a half-created rollout or the hub's 400 mid-wave.

Limits (learn.microsoft.com/azure/iot-edge/iot-edge-limits-and-restrictions and
iot-hub-devguide-module-twins "Module twin size"):

- 50 modules per deployment (IoT Edge automatic deployments, layered included);
- a module twin's desired properties at most 32 KB, which is what a deployment writes into
  `$edgeAgent`/`$edgeHub` — measured as the service measures twins: the UTF-8 length of every
  key and string value (control characters not counted), 8 bytes per number, 4 per boolean,
  nested objects as the sum of what they hold;
- a string value at most 4 KB ("Property or Tag value should be maximum 4096 bytes",
  ArgumentInvalid: Azure/iotedge#5921), a key at most 1 KB, objects nested 10 deep
  (Azure/iotedge#1932, which aligned edgeHub with the hub's twin limits).

Invariant: `check_content` raises UsageError (one line) or returns None; it never changes the
content it checks.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from fleet_tui.errors import UsageError

MAX_MODULES = 50
MAX_DESIRED = 32 * 1024
MAX_VALUE = 4096
MAX_KEY = 1024
MAX_DEPTH = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode C0 and C1: not counted
LAYER_MODULE = "properties.desired.modules."


def text_size(text: str) -> int:
    return len(_CONTROL.sub("", text).encode("utf-8"))


def twin_size(value: Any) -> int:
    """The size of a twin section's value as IoT Hub computes it (keys + values)."""
    if isinstance(value, Mapping):
        return sum(text_size(str(k)) + twin_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(twin_size(v) for v in value)
    if isinstance(value, bool):
        return 4
    if isinstance(value, (int, float)):
        return 8
    return 0 if value is None else text_size(str(value))


def _shape_error(value: Any, depth: int = 0) -> str:
    """The document's root is depth 0; an object deeper than MAX_DEPTH is refused (edgeHub's
    ReportedPropertiesValidator, whose limits are the hub's)."""
    if isinstance(value, Mapping):
        if depth > MAX_DEPTH:
            return f"objects nested more than {MAX_DEPTH} deep"
        for k, v in value.items():
            if text_size(str(k)) > MAX_KEY:
                return f"a key of {text_size(str(k)):,} bytes (at most {MAX_KEY:,})"
            inner = _shape_error(v, depth + 1)
            if inner:
                return inner
    elif isinstance(value, list):
        return next((e for e in (_shape_error(v, depth) for v in value) if e), "")
    elif isinstance(value, str) and text_size(value) > MAX_VALUE:
        return f"a value of {text_size(value):,} bytes (at most {MAX_VALUE:,} per value)"
    return ""


def module_count(content: Mapping[str, Any]) -> int:
    """Modules the deployment sets: a base's `modules` plus a layer's `properties.desired.modules.X`."""
    agent = content.get("$edgeAgent") or {}
    base = (agent.get("properties.desired") or {}).get("modules") or {}
    layered = [k for k in agent if k.startswith(LAYER_MODULE) and "." not in k[len(LAYER_MODULE):]]
    return len(base) + len(layered)


def desired_document(section: Mapping[str, Any]) -> dict[str, Any]:
    """A modulesContent entry (`properties.desired` or layered `properties.desired.a.b` keys) as
    the desired properties document it writes into the module twin."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        rest = key[len("properties.desired"):].lstrip(".") if key.startswith("properties.desired") else key
        if not rest:
            out.update(value if isinstance(value, Mapping) else {})
            continue
        *parents, leaf = rest.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def check_content(deployment_id: str, content: Mapping[str, Any]) -> None:
    """UsageError naming the limit when IoT Hub would refuse `content.modulesContent`."""
    modules = module_count(content)
    if modules > MAX_MODULES:
        raise UsageError(f"deployment {deployment_id} sets {modules} modules; IoT Hub takes at most {MAX_MODULES} "
                         "per deployment — split the manifest into layered deployments")
    for twin, section in content.items():
        desired = desired_document(section if isinstance(section, Mapping) else {})
        size = twin_size(desired)
        if size > MAX_DESIRED:
            raise UsageError(f"deployment {deployment_id}: the desired properties of {twin} are {size:,} bytes as "
                             f"IoT Hub measures them; a module twin takes at most {MAX_DESIRED:,} — shorten "
                             "createOptions or env, or move modules to another deployment")
        shape = _shape_error(desired)
        if shape:
            raise UsageError(f"deployment {deployment_id}: {twin} has {shape}; IoT Hub refuses it (ArgumentInvalid)")
