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
from fleet_tui.oci.auth import Challenge, Credentials, TokenCache, credentials_for
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
        self._challenge: Challenge | None = None
        self._creds: Credentials | None | bool = False  # False: not looked up yet
        self._tokens = TokenCache(self._fetch_token)

    # --- auth --------------------------------------------------------------------------
    def _credentials(self) -> Credentials | None:
        if self._creds is False:
            self._creds = credentials_for(self.host, self.config)
        return self._creds  # type: ignore[return-value]

    def _auth_header(self, scope: str, refresh: bool = False) -> dict[str, str]:
        ch = self._challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            creds = self._credentials()
            if creds is None:
                raise AuthError(f"registry {self.host} needs a login: add [registry.auth.\"{self.host}\"] to the config or run docker login")
            return {"Authorization": creds.basic_header()}
        if ch.scheme == "bearer":
            return {"Authorization": "Bearer " + self._tokens.get(ch, scope, refresh)}
        return {}

    def _fetch_token(self, ch: Challenge, scope: str) -> str:
        realm = ch.params.get("realm")
        if not realm:
            raise AuthError(f"registry {self.host} sent a bearer challenge without a realm")
        params: list[tuple[str, str]] = [("service", ch.params.get("service", ""))]
        params += [("scope", s) for s in scope.split(" ") if s]
        headers = {}
        creds = self._credentials()
        if creds is not None:
            headers["Authorization"] = creds.basic_header()
        try:
            resp = self.http.get(realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteError(f"token service of {self.host} unreachable: {redact(str(exc))}") from None
        if resp.status_code in (401, 403):
            raise AuthError(f"registry {self.host} refused the credentials ({resp.status_code}); check [registry.auth] or docker login")
        if resp.status_code != 200:
            raise RemoteError(f"token service of {self.host} answered {resp.status_code}")
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError(f"token service of {self.host} returned no token")
        return token

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
                if resp.status_code == 401 and not authed:
                    challenge = Challenge.parse(resp.headers.get("www-authenticate", ""))
                    if challenge is not None and challenge.scheme in ("basic", "bearer"):
                        resp.close()
                        self._challenge, authed = challenge, True
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
