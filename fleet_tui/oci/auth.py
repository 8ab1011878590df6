"""Registry credentials and auth challenges (anonymous, Basic, Bearer token with scopes),
as I/O-free state (`RegistryAuth`) shared by the sync registry client and the async
blob source of simulated devices.

Credentials come from the config (`[registry.auth."HOST"]` with a password *reference*)
or from the Docker credential store (`~/.docker/config.json` and its helpers, read through
`docker.auth`), never from the command line. Passwords live in `Secret`s and are
registered for redaction the moment they are resolved.
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass

import docker.auth
import httpx

from fleet_tui.config import Config
from fleet_tui.errors import AuthError, RemoteError
from fleet_tui.secrets import Secret, redact, remember

_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: Secret

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        value = "Basic " + base64.b64encode(raw).decode()
        remember(value.split(" ", 1)[1])
        return value


def credentials_for(host: str, config: Config) -> Credentials | None:
    """Config first, then the Docker credential store; None means anonymous."""
    entry = config.registry.auth.get(host)
    if entry is not None:
        return Credentials(entry.username, entry.password_ref().resolve(f"registry {host}"))
    try:
        store = docker.auth.load_config()
        found = store.resolve_authconfig(host) or {}
    except Exception:  # noqa: BLE001 - an unreadable docker config means "no credentials"
        return None
    username, password = found.get("Username") or found.get("username"), found.get("Password") or found.get("password")
    if username and password:
        return Credentials(username, Secret(password))
    if found.get("IdentityToken"):
        return Credentials("<token>", Secret(found["IdentityToken"]))
    return None


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> "Challenge | None":
        if not header:
            return None
        scheme, _, rest = header.partition(" ")
        return cls(scheme.lower(), dict(_PARAM.findall(rest)))


@dataclass(frozen=True)
class TokenRequest:
    """A GET to a bearer challenge's realm, sent by whichever HTTP client the caller has."""

    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]


class RegistryAuth:
    """Auth state of one registry host, free of I/O so the sync client (`Transport`) and the
    simulated devices' async client share one logic: learn the challenge from a 401, answer
    Basic with the credentials, fetch Bearer tokens per scope from the realm. Thread-safe.

    Tokens and basic headers are registered for redaction before anyone can print them.
    """

    def __init__(self, host: str, config: Config) -> None:
        self.host, self.config = host, config
        self.challenge: Challenge | None = None
        self._creds: Credentials | None | bool = False  # False: not looked up yet
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def credentials(self) -> Credentials | None:
        if self._creds is False:
            self._creds = credentials_for(self.host, self.config)
        return self._creds  # type: ignore[return-value]

    def learn(self, www_authenticate: str) -> bool:
        """Adopt the challenge of a 401; False when it is none we can answer."""
        challenge = Challenge.parse(www_authenticate)
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            return False
        self.challenge = challenge
        return True

    def header(self, scope: str, refresh: bool = False, rejected: dict[str, str] | None = None) -> dict[str, str] | None:
        """Headers authorising `scope`; None when a bearer token must be fetched first
        (`token_request`, then `accept_token`): none cached yet, `refresh`, or the cached
        one is the `rejected` header a registry just answered 401 to."""
        ch = self.challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            creds = self.credentials()
            if creds is None:
                raise AuthError(f"registry {self.host} needs a login: add [registry.auth.\"{self.host}\"] to the config or run docker login")
            return {"Authorization": creds.basic_header()}
        with self._lock:  # bearer: `learn` adopts no other scheme
            token = None if refresh else self._tokens.get(scope)
        header = None if token is None else {"Authorization": "Bearer " + token}
        return None if header == rejected else header

    def token_request(self, scope: str) -> TokenRequest:
        ch = self.challenge
        realm = ch.params.get("realm") if ch is not None else None
        if ch is None or not realm:
            raise AuthError(f"registry {self.host} sent a bearer challenge without a realm")
        params: list[tuple[str, str]] = [("service", ch.params.get("service", ""))]
        params += [("scope", s) for s in scope.split(" ") if s]
        creds = self.credentials()
        headers = {"Authorization": creds.basic_header()} if creds is not None else {}
        return TokenRequest(realm, params, headers)

    def token_unreachable(self, exc: Exception) -> RemoteError:
        return RemoteError(f"token service of {self.host} unreachable: {redact(str(exc))}")

    def accept_token(self, scope: str, resp: httpx.Response) -> dict[str, str]:
        """Read the token service's answer (already received), cache it, return the header."""
        if resp.status_code in (401, 403):
            raise AuthError(f"registry {self.host} refused the credentials ({resp.status_code}); check [registry.auth] or docker login")
        if resp.status_code != 200:
            raise RemoteError(f"token service of {self.host} answered {resp.status_code}")
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError(f"token service of {self.host} returned no token")
        remember(token)
        with self._lock:
            self._tokens[scope] = token
        return {"Authorization": "Bearer " + token}


def scope_for(repository: str, push: bool = False, delete: bool = False) -> str:
    """The token scope a request needs (distribution's token auth: `delete` is an action of its own)."""
    actions = "pull,push" + (",delete" if delete else "") if push or delete else "pull"
    return f"repository:{repository}:{actions}"
