"""One line for a config that does not validate: the key, the value, the accepted form.

`describe_errors` turns each of pydantic's errors into `config: hub.units = 500 is invalid;
expected a whole number from 1 to 200`; `form_of` says what a field accepts, from its
type and constraints — the same words docs/configuration.md prints (`reference.py`).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal, Mapping

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from fleet_tui.config.model import Config
from fleet_tui.config.units import Form

ENV_PREFIX = "FLEET_TUI_"


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _bounds(metadata: list[Any]) -> str:
    low = next((_num(m.ge) for m in metadata if isinstance(m, Ge)), None)
    high = next((_num(m.le) for m in metadata if isinstance(m, Le)), None)
    parts = [f"from {low} to {high}"] if low is not None and high is not None else []
    for m in metadata:
        if isinstance(m, Ge) and not parts:
            parts.append(f"≥ {_num(m.ge)}")
        elif isinstance(m, Le) and not parts:
            parts.append(f"≤ {_num(m.le)}")
        elif isinstance(m, Gt):
            parts.append(f"> {_num(m.gt)}")
        elif isinstance(m, Lt):
            parts.append(f"< {_num(m.lt)}")
        elif isinstance(m, MinLen) and m.min_length:
            parts.append("not empty")
        elif isinstance(m, MaxLen):
            parts.append(f"of at most {m.max_length} characters")
    return ", ".join(parts)


def _type_form(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _type_form(args[0])
    if origin is dict and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return "tables, one per name"
    if origin is tuple and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return "an array of tables"
    if origin is tuple:
        return "a list of pairs of numbers" if typing.get_origin(args[0]) is tuple else "a list of strings"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a table"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(annotation, "a value")


def form_of(field: FieldInfo) -> str:
    """What `field` accepts, e.g. `a whole number ≥ 1 and ≤ 200`."""
    marked = next((m.text for m in field.metadata if isinstance(m, Form)), None)
    form = marked or _type_form(field.annotation)
    bounds = _bounds(field.metadata)
    return f"{form}, {bounds}" if marked and bounds else f"{form} {bounds}".strip()


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The FieldInfo an error location points at (through sections, tables and arrays)."""
    field: FieldInfo | None = None
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if _is_model(current) and isinstance(part, str) and part in current.model_fields:
            field = current.model_fields[part]
            current = field.annotation
        elif typing.get_origin(current) in (dict, tuple):
            args = typing.get_args(current)  # dict[str, X] → X; tuple[X, ...] → X
            current = args[1] if typing.get_origin(current) is dict else args[0]
        else:
            return None
    return field


def key_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and not re.fullmatch(r"[A-Za-z0-9_-]+", part):
            part = '"' + part.replace('"', '\\"') + '"'  # a TOML quoted key, e.g. a registry host
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    return "a list" if isinstance(value, (list, tuple)) else repr(value)


def describe_errors(exc: ValidationError, overrides: Mapping[tuple[str, ...], Any] | None = None) -> list[str]:
    """One line per problem pydantic found (every bad key, in the order of the config's sections)."""
    return list(dict.fromkeys(describe_one(err, overrides) for err in exc.errors(include_url=False)))


def describe_one(err: Any, overrides: Mapping[tuple[str, ...], Any] | None = None) -> str:
    loc = tuple(err["loc"])
    key = key_name(loc)
    origin = ""
    for path in overrides or {}:
        if tuple(str(p) for p in loc[: len(path)]) == path:
            origin = f" (from ${ENV_PREFIX}{'__'.join(path).upper()})"
    field = field_at(Config, loc)
    if err["type"] == "extra_forbidden":
        parent = _unwrap(field_at(Config, loc[:-1]).annotation) if len(loc) > 1 and field_at(Config, loc[:-1]) else Config
        while not _is_model(parent) and typing.get_args(parent):
            parent = _unwrap(typing.get_args(parent)[-1 if typing.get_origin(parent) is dict else 0])
        known = ", ".join(sorted(k for k, f in parent.model_fields.items() if not f.exclude)) if _is_model(parent) else ""
        return f"config: unknown key {key}{origin}; known keys: {known}"
    if err["type"] == "missing":
        return f"config: {key}{origin} is required; give {form_of(field) if field else 'a value'}"
    message = str(err.get("msg", "")).removeprefix("Value error, ")
    if err["type"] in ("model_type", "dict_type"):
        return f"config: {key}{origin} = {_shown(err.get('input'))} is invalid; expected a table ([{key}])"
    if field is None or _is_model(_unwrap(field.annotation)) or typing.get_origin(_unwrap(field.annotation)) is dict:
        return f"config: {message}" if not key or key in message else f"config: [{key}]: {message}"
    shown = _shown(err.get("input"))
    if err["type"] == "value_error" and not any(isinstance(m, Form) for m in field.metadata):
        return f"config: {key}{origin} {message}" if message.startswith("must") else f"config: {key}{origin} = {shown} is invalid: {message}"
    return f"config: {key}{origin} = {shown} is invalid; expected {form_of(field)}"
