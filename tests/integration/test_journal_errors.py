"""Every way a team journal can be wrong is one line naming what to do, never a traceback, and
never the password: a URL that is not PostgreSQL's or carries a password, a server that does
not answer, a wrong password, a database that does not exist, no schema yet, a schema older or
newer than this fleet-tui. `journal init` creates, migrates and is idempotent; `doctor` says
which journal it checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import PASSWORD, USER
from tests.support.registry import free_port

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, url: str, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[journal]\nurl = "{url}"\nconnect_timeout = 3\n')
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("FLEET_TUI_", "PG"))}
    env["PGPASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(cfg), *args], capture_output=True,
                          text=True, timeout=60, cwd=str(ROOT), env=env)


def one_line(out: subprocess.CompletedProcess, *words: str) -> str:
    text = out.stderr.strip()
    assert out.returncode != 0 and len(text.splitlines()) == 1 and "Traceback" not in text, out
    assert all(w in text for w in words), text
    assert PASSWORD not in out.stdout + out.stderr
    return text


def set_version(url: str, version: int) -> None:
    with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (version,))


def test_init_creates_then_is_idempotent_and_rollouts_work(tmp_path, postgres):
    url = postgres.create_database()
    one_line(run(tmp_path, url, "rollout", "list"), "no fleet-tui schema", "fleet-tui journal init")
    first = run(tmp_path, url, "journal", "init")
    assert first.returncode == 0 and "created" in first.stdout, first
    again = run(tmp_path, url, "journal", "init")
    assert again.returncode == 0 and "already current" in again.stdout, again
    listed = run(tmp_path, url, "rollout", "list")
    assert listed.returncode == 0 and "no rollouts yet" in listed.stdout, listed
    doctor = run(tmp_path, url, "doctor")
    assert "PostgreSQL, schema 1" in doctor.stdout and url in doctor.stdout and PASSWORD not in doctor.stdout


def test_a_schema_older_or_newer_says_what_to_do(tmp_path, postgres):
    url = postgres.create_database()
    assert run(tmp_path, url, "journal", "init").returncode == 0
    set_version(url, 0)
    one_line(run(tmp_path, url, "rollout", "list"), "older", "fleet-tui journal init")
    migrated = run(tmp_path, url, "journal", "init")
    assert migrated.returncode == 0 and "migrated from version 0" in migrated.stdout, migrated
    set_version(url, 99)
    one_line(run(tmp_path, url, "rollout", "list"), "newer", "upgrade fleet-tui")
    one_line(run(tmp_path, url, "journal", "init"), "newer", "upgrade fleet-tui")


def test_wrong_password_missing_database_and_no_server_are_one_line_each(tmp_path, postgres):
    url = postgres.create_database()
    one_line(run(tmp_path, url, "rollout", "list", password="not-the-password"), "password authentication failed",
             "password_env")
    one_line(run(tmp_path, postgres.url("no_such_db"), "rollout", "list"), "no_such_db", "does not exist")
    one_line(run(tmp_path, f"postgresql://{USER}@127.0.0.1:{free_port()}/x", "rollout", "list"), "unreachable")


@pytest.mark.parametrize("url, words", [
    ("mysql://u@h/db", ("scheme 'mysql'",)),
    (f"postgresql://u:{PASSWORD}@h/db", ("carries a password", "password_env")),
    ("postgresql://h", ("needs a host and a database",)),
    (f"postgresql://u@h/db?password={PASSWORD}", ("carries a password",)),
])
def test_a_bad_url_is_one_line_and_never_shows_a_password(tmp_path, url, words):
    one_line(run(tmp_path, url, "rollout", "list"), *words)


def test_config_show_names_the_password_variable_never_the_password(tmp_path, postgres):
    out = run(tmp_path, postgres.create_database(), "config", "show", "--json")
    assert out.returncode == 0 and "PGPASSWORD" in out.stdout and PASSWORD not in out.stdout, out

