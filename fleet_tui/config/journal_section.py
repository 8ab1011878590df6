"""The `[journal]` table: where rollouts are journalled — the embedded SQLite file in the state
directory (the default), or a PostgreSQL database a team shares (docs/team.md).

The URL names the server and database, never the password: the password comes from the
environment variable `password_env` (libpq's own `PGPASSWORD` by default) or the file
`password_file` (`~/.pgpass` works too). A URL that carries a password is refused, so it can never be shown.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator

from fleet_tui.config.sections import Section
from fleet_tui.config.units import Duration
from fleet_tui.secrets import remember


class JournalSection(Section):
    url: str = Field("", description="`postgresql://USER@HOST:PORT/DB`: the team's shared journal (docs/team.md); "
                     "empty: the SQLite file `rollouts.sqlite` in the state directory")
    password_env: str = Field("PGPASSWORD", description="environment variable holding the database "
                              "password (default libpq's own; unset: ~/.pgpass, or no password)")
    password_file: str = Field("", description="a file holding the database password (instead of `password_env`)")
    lease: Duration = Field(30.0, ge=2, le=3600, description="PostgreSQL: how long an engine's hold on a rollout lasts "
                            "unless renewed; after it lapses another host may take the rollout over")
    host: str = Field("", description="PostgreSQL: the name this host gives itself in leases (who holds which "
                      "rollout); empty: its hostname")
    connect_timeout: Duration = Field(10.0, gt=0, le=300, description="PostgreSQL: seconds to wait for the server")

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, url: str) -> str:
        if not url:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("is not a URL; give postgresql://USER@HOST:PORT/DATABASE") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not postgresql; give "
                             "postgresql://USER@HOST:PORT/DATABASE (or leave url empty for the SQLite journal)")
        if parts.password is not None:
            remember(parts.password)  # the error below quotes the value: masked wherever it is shown
            raise ValueError("carries a password; remove it from the URL and put it in the environment variable "
                             "named by password_env (or password_file)")
        if "password" in parse_qs(parts.query):
            remember(parse_qs(parts.query)["password"][0])
            raise ValueError("carries a password (?password=); remove it and put it in the environment variable "
                             "named by password_env (or password_file)")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("needs a host and a database: postgresql://USER@HOST:PORT/DATABASE")
        return url

    def shown(self) -> str:
        """The URL as it may be shown (it never holds a password)."""
        return self.url
