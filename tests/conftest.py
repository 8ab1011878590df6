"""Session fixtures: one real registry per test session (and helpers to start more)."""

from __future__ import annotations

import pytest

from fleet_tui.config import Config
from fleet_tui.oci.registry import RegistryClient
from tests.support.registry import RegistryServer


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Keep tests off the user's config and state (platformdirs reads the XDG variables):
    no ~/.config/fleet-tui/config.toml leaks in, no layer index or hub lands in ~/.local."""
    import os

    root = tmp_path_factory.mktemp("xdg")
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    for key in saved:
        os.environ[key] = str(root / key.lower())
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A real docker-registry on loopback, shared by the session. Fails if it cannot start."""
    server = RegistryServer(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


@pytest.fixture
def config() -> Config:
    return Config()


@pytest.fixture
def client(registry: RegistryServer, config: Config) -> RegistryClient:
    c = RegistryClient(registry.host, config)
    yield c
    c.close()


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test."""
    name = request.node.name.lower()
    return "test/" + "".join(ch if ch.isalnum() else "-" for ch in name)[:60].strip("-")


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (tests/support/postgres.py); fails if it cannot start."""
    from tests.support.postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def journal_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a journal-facing test on both journals: SQLite in the state dir, and a fresh database
    of the session's PostgreSQL server — set through the environment (`FLEET_TUI_JOURNAL__URL`), so
    every config this test loads, in-process or in a subprocess (detached engines), uses it."""
    if request.param == "postgres":
        from fleet_tui.rollout.journal_db import PgConnection
        from fleet_tui.secrets import Secret
        from tests.support.postgres import PASSWORD

        server = request.getfixturevalue("postgres")
        url = server.create_database()
        pg = PgConnection(url, Secret(PASSWORD), 10.0)
        pg.create_schema()
        pg.close()
        monkeypatch.setenv("FLEET_TUI_JOURNAL__URL", url)
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return request.param


@pytest.fixture
def open_journal(journal_backend: str, tmp_path):
    """A function opening the test's journal (`path`: the SQLite file, ignored on PostgreSQL)."""
    import os

    from fleet_tui.config.load import parse_config
    from fleet_tui.rollout.journal import Journal

    opened = []

    def open_(path=None):
        if journal_backend == "sqlite":
            journal = Journal(path or tmp_path / "rollouts.sqlite")
        else:
            journal = Journal.for_config(parse_config({"state_dir": str(tmp_path / "state")}, environ=os.environ))
        opened.append(journal)
        return journal

    yield open_
    for journal in opened:
        try:
            journal.close()
        except Exception:  # noqa: BLE001 - closed by the test already
            pass
