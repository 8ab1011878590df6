"""Where simulated devices get real blob bytes: the registry (one shared async connection
pool for the whole simulated fleet) or the embedded OCI layout store.

Scaling to 10,000+ devices in one process: every device task awaits the same
`httpx.AsyncClient`; an `asyncio.Semaphore` of the pool's size admits requests, so the
pool never holds thousands of queued waiters (its queue is scanned per release) and
the registry sees at most `connections` concurrent connections. Each request asks for
one byte range (`Range: bytes=a-b`), so a cut wastes at most one range, and carries a
`User-Agent` naming the device, so the registry's access log attributes bytes to devices.
Devices log in exactly like the sync registry client: the config's (or Docker's)
credentials for the host answer a Basic or Bearer challenge through the shared
`RegistryAuth`; one token fetch at a time serves the whole fleet. No credential is logged.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

from fleet_tui.config import Config
from fleet_tui.errors import AuthError, NotFound, RemoteError
from fleet_tui.oci.auth import RegistryAuth, scope_for
from fleet_tui.oci.digest import short
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.oci.transport import RETRY_STATUS, backoff, scheme_for


class BlobSource(Protocol):
    async def fetch(self, repo: str, digest: str, start: int, end: int, device_id: str) -> bytes:
        """Bytes start..end (inclusive) of a blob."""

    async def aclose(self) -> None: ...


class RegistrySource:
    def __init__(self, host: str, config: Config, connections: int = 64) -> None:
        self.host = host
        self.retries = config.registry.retries
        self.client = httpx.AsyncClient(
            base_url=f"{scheme_for(host, config)}://{host}",
            timeout=httpx.Timeout(config.registry.timeout, connect=10.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self.gate = asyncio.Semaphore(connections)
        self.auth = RegistryAuth(host, config)
        self._token_lock = asyncio.Lock()
        self.requests = 0
        self.bytes = 0

    async def _authorization(self, scope: str, rejected: dict[str, str] | None) -> dict[str, str]:
        header = self.auth.header(scope, rejected=rejected)
        if header is not None:
            return header
        async with self._token_lock:  # one token fetch for all the devices waiting on it
            header = self.auth.header(scope, rejected=rejected)
            if header is not None:
                return header
            req = self.auth.token_request(scope)
            try:
                resp = await self.client.get(req.url, params=req.params, headers=req.headers)
            except httpx.HTTPError as exc:
                raise self.auth.token_unreachable(exc) from None
            return self.auth.accept_token(scope, resp)

    async def fetch(self, repo: str, digest: str, start: int, end: int, device_id: str) -> bytes:
        headers = {"Range": f"bytes={start}-{end}", "User-Agent": f"fleet-sim/{device_id}"}
        url, scope = f"/v2/{repo}/blobs/{digest}", scope_for(repo)
        attempt, rejected = 0, None
        while True:
            sent = await self._authorization(scope, rejected)
            async with self.gate:
                try:
                    resp = await self.client.get(url, headers={**headers, **sent})
                except httpx.HTTPError as exc:
                    resp, error = None, exc
            self.requests += 1
            if resp is not None:
                self.bytes += len(resp.content)
                if resp.status_code == 206:
                    return resp.content
                if resp.status_code == 200:  # a server that ignores Range sends it all
                    return resp.content[start : end + 1]
                if resp.status_code == 404:
                    raise NotFound(f"blob {short(digest)} not found in {self.host}/{repo}")
                if resp.status_code == 401 and rejected is None and self.auth.learn(resp.headers.get("www-authenticate", "")):
                    rejected = sent  # answer the challenge once: a fresh token, or the login
                    continue
                if resp.status_code in (401, 403):
                    raise AuthError(f"registry {self.host} denied reading blob {short(digest)} ({resp.status_code}); check [registry.auth] or docker login")
                if resp.status_code not in RETRY_STATUS:
                    raise RemoteError(f"registry {self.host}: reading blob {short(digest)} failed with HTTP {resp.status_code}")
            if attempt >= self.retries:
                what = f"HTTP {resp.status_code}" if resp is not None else type(error).__name__
                raise RemoteError(f"registry {self.host}: blob {short(digest)} kept failing ({what}); is the registry up?")
            await asyncio.sleep(backoff(attempt))
            attempt += 1

    async def aclose(self) -> None:
        await self.client.aclose()


class LayoutSource:
    """The embedded store: ranges read straight from the blob files (small, local)."""

    def __init__(self, store: LayoutStore) -> None:
        self.store = store
        self.requests = 0
        self.bytes = 0

    async def fetch(self, repo: str, digest: str, start: int, end: int, device_id: str) -> bytes:
        size = end - start + 1
        pieces = self.store.iter_blob(repo, digest, offset=start, chunk=size)
        try:
            data = next(pieces, b"")  # the device verifies the whole blob itself
        finally:
            pieces.close()
        self.requests += 1
        self.bytes += len(data)
        return data

    async def aclose(self) -> None:
        pass


class HostSources:
    """The fleet's blob source, and one more per registry host its devices are told to pull
    from (a site's gateway cache: `<cache host>/<repository>@<digest>`), made on first use."""

    def __init__(self, default: BlobSource, default_host: str, config: Config, connections: int) -> None:
        self.default, self.default_host = default, default_host
        self.config, self.connections = config, connections
        self.others: dict[str, RegistrySource] = {}

    @property
    def requests(self) -> int:
        return getattr(self.default, "requests", 0) + sum(s.requests for s in self.others.values())

    @property
    def bytes(self) -> int:
        return getattr(self.default, "bytes", 0) + sum(s.bytes for s in self.others.values())

    async def fetch(self, repo: str, digest: str, start: int, end: int, device_id: str, host: str = "") -> bytes:
        if not host or host == self.default_host:
            return await self.default.fetch(repo, digest, start, end, device_id)
        if host not in self.others:
            self.others[host] = RegistrySource(host, self.config, self.connections)
        return await self.others[host].fetch(repo, digest, start, end, device_id)

    async def aclose(self) -> None:
        await self.default.aclose()
        for source in self.others.values():
            await source.aclose()

