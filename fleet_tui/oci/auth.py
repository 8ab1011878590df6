"""Registry credentials and auth challenges (anonymous, Basic, Bearer token with scopes).

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
from typing import Callable

import docker.auth

from fleet_tui.config import Config
from fleet_tui.secrets import Secret, remember

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


class TokenCache:
    """Bearer tokens per scope, fetched on demand from the challenge's realm."""

    def __init__(self, fetch: Callable[[Challenge, str], str]) -> None:
        self._fetch = fetch
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, challenge: Challenge, scope: str, refresh: bool = False) -> str:
        with self._lock:
            if not refresh and scope in self._tokens:
                return self._tokens[scope]
        token = self._fetch(challenge, scope)
        remember(token)
        with self._lock:
            self._tokens[scope] = token
        return token


def scope_for(repository: str, push: bool = False) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"
