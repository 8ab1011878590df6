"""HTTP transport for registries: scheme choice, auth challenges, retries, error mapping.

Invariants:
- plain HTTP only for loopback hosts and hosts named insecure; TLS everywhere else;
- 429 / 5xx / connection errors are retried with exponential backoff (honouring
  `Retry-After`), a bounded number of times; request bodies are bytes so they can be resent;
- every failure becomes a one-line `FleetError` naming the host and what to do; no
  credential ever appears in one.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import httpx

from fleet_tui.config import Config
from fleet_tui.errors import AuthError, RemoteError
from fleet_tui.oci.auth import RegistryAuth
from fleet_tui.secrets import redact

RETRY_STATUS = {429, 500, 502, 503, 504}
_LOOPBACK = ("127.", "localhost", "[::1]")


def scheme_for(host: str, config: Config) -> str:
    bare = host.split(":")[0] if not host.startswith("[") else host
    if host.startswith(_LOOPBACK) or bare.startswith(_LOOPBACK) or host in config.registry.insecure:
        return "http"
    return "https"


def backoff(attempt: int, retry_after: str | None = None, base: float = 0.25, cap: float = 8.0) -> float:
    if retry_after:
        try:
            return min(float(retry_after), 30.0)
        except ValueError:
            pass
    return min(cap, base * (2**attempt))


class Transport:
    """One registry host: a pooled httpx client plus auth state. Thread-safe."""

    def __init__(self, host: str, config: Config, client: httpx.Client | None = None) -> None:
        self.host = host
        self.config = config
        self.base = f"{scheme_for(host, config)}://{host}"
        self.retries = config.registry.retries
        self.http = client or httpx.Client(
            timeout=httpx.Timeout(config.registry.timeout, connect=10.0),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.auth = RegistryAuth(host, config)

    def _auth_header(self, scope: str, refresh: bool = False) -> dict[str, str]:
        header = self.auth.header(scope, refresh)
        if header is None:
            req = self.auth.token_request(scope)
            try:
                resp = self.http.get(req.url, params=req.params, headers=req.headers)
            except httpx.HTTPError as exc:
                raise self.auth.token_unreachable(exc) from None
            header = self.auth.accept_token(scope, resp)
        return header

    # --- requests ----------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith("http") else self.base + path_or_url

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with auth and retries; returns the response of the last attempt (any status)."""
        attempt, authed = 0, False
        while True:
            hdrs = {**(headers or {}), **self._auth_header(scope, refresh=authed)}
            try:
                req = self.http.build_request(method, self.url(path), headers=hdrs, content=content, params=params)
                resp = self.http.send(req, stream=stream)
            except httpx.TimeoutException:
                err: Exception = RemoteError(f"registry {self.host} timed out after {self.config.registry.timeout:g}s")
            except httpx.ConnectError as exc:
                err = RemoteError(self._connect_message(exc))
            except httpx.HTTPError as exc:
                err = RemoteError(f"registry {self.host}: {type(exc).__name__}: {redact(str(exc))}")
            else:
                if resp.status_code == 401 and not authed and self.auth.learn(resp.headers.get("www-authenticate", "")):
                    resp.close()
                    authed = True
                    continue
                if resp.status_code not in RETRY_STATUS or attempt >= self.retries:
                    return resp
                delay = backoff(attempt, resp.headers.get("retry-after"))
                resp.close()
                attempt += 1
                time.sleep(delay)
                continue
            if attempt >= self.retries:
                raise err
            time.sleep(backoff(attempt))
            attempt += 1

    def _connect_message(self, exc: Exception) -> str:
        text = str(exc)
        if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text.lower():
            return f"registry host {self.host.split(':')[0]} not found (DNS lookup failed); check the image reference"
        if "refused" in text.lower():
            return f"cannot connect to registry {self.host}: connection refused; is it running on that port?"
        if "SSL" in text or "TLS" in text or "certificate" in text:
            return f"TLS handshake with registry {self.host} failed ({redact(text)}); for a plain-HTTP registry pass --insecure-registry {self.host}"
        return f"cannot connect to registry {self.host}: {redact(text)}"

    def fail(self, resp: httpx.Response, what: str) -> RemoteError:
        """An error for an unexpected status, with the registry's own error code if any."""
        detail = ""
        try:
            errors: Iterable[dict[str, Any]] = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except Exception:  # noqa: BLE001 - body may be anything
            pass
        if resp.status_code in (401, 403):
            return AuthError(f"registry {self.host} denied {what} ({resp.status_code}); check [registry.auth] or docker login")
        return RemoteError(f"registry {self.host}: {what} failed with HTTP {resp.status_code}{' (' + detail + ')' if detail else ''}")

    def close(self) -> None:
        self.http.close()
