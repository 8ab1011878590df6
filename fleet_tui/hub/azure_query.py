"""IoT Hub query helpers: raw paged queries, literals, and `IN [...]` lists that fit.

Why raw: `IoTHubRegistryManager.query_iot_hub` deserializes every row as a `Twin`, so
projections (`SELECT deviceId, tags.x AS grp`) and aggregates (`COUNT()`) end up in
`additional_properties`. `protocol.query.get_twins(..., raw=True)` keeps the HTTP response,
whose JSON we read ourselves; the continuation token comes from the `x-ms-continuation`
response header and goes back in the request header of the same name.

Invariant: every literal placed in a query passes `literal()`, and names placed in paths
pass `path_name()`, so no device id or tag can change the shape of a query.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Sequence

from azure.iot.hub.models import QuerySpecification

from fleet_tui.errors import UsageError
from fleet_tui.hub.azure_retry import HubCaller
from fleet_tui.hub.query_literal import quote

MAX_QUERY_CHARS = 7000  # IoT Hub rejects long queries; keep IN lists well below the limit
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def literal(value: str | int | float) -> str:
    """A query literal: numbers as they are, text through the shared `query.quote`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return quote(str(value))


def path_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{what} {name!r} cannot be used in an IoT Hub query; use letters, digits, _ and -")
    return name


def in_chunks(ids: Sequence[str], budget: int = MAX_QUERY_CHARS) -> Iterator[list[str]]:
    """Split ids so that `deviceId IN [...]` for each chunk stays under `budget` characters."""
    chunk: list[str] = []
    size = 0
    for device_id in ids:
        cost = len(literal(device_id)) + 2
        if chunk and size + cost > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append(device_id)
        size += cost
    if chunk:
        yield chunk


def in_list(ids: Sequence[str]) -> str:
    return "[" + ", ".join(literal(i) for i in ids) + "]"


class RawQuery:
    """Paged queries through `registry.protocol.query.get_twins(..., raw=True)`."""

    def __init__(self, registry: Any, caller: HubCaller) -> None:
        self.registry, self.caller = registry, caller

    def page(self, sql: str, page_size: int = 1000, continuation: str | None = None) -> tuple[list[dict], str | None]:
        """One page of rows (plain JSON dicts) and the token for the next (None at the end)."""
        spec = QuerySpecification(query=sql)

        def send() -> Any:
            return self.registry.protocol.query.get_twins(spec, continuation or None, str(page_size), None, True)

        raw = self.caller.call("query", "query", send)
        self.caller.observe_date(raw.response.headers.get("Date"))
        rows = raw.response.json() if raw.response.content else []
        if not isinstance(rows, list):
            rows = []
        token = raw.response.headers.get("x-ms-continuation") or None
        return rows, token

    def all(self, sql: str, page_size: int = 1000) -> Iterator[dict]:
        token: str | None = None
        while True:
            rows, token = self.page(sql, page_size, token)
            yield from rows
            if not token:
                return
