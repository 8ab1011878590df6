"""A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` on a free
loopback port, password (scram-sha-256) authentication for user `fleet`.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as the
Debian package's `postgres` user (or a `fleetpg` user made for it) via `runuser`. The binaries
come from Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`; `.ci/run` installs it).
If anything is missing or the server does not come up, the fixture fails loudly — never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.registry import free_port

USER, PASSWORD = "fleet", "fleet-test-pw-7f3a"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: apt-get install -y postgresql (bash .ci/run does it)")
    return found[-1]


def _runner() -> tuple[list[str], int | None, int | None]:
    """How to run the server's commands: as ourselves, or (as root) as an unprivileged user."""
    if os.getuid() != 0:
        return [], None, None
    for name in ("postgres", "fleetpg"):
        try:
            entry = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], entry.pw_uid, entry.pw_gid
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "fleetpg"], check=True)
    entry = pwd.getpwnam("fleetpg")
    return ["runuser", "-u", "fleetpg", "--"], entry.pw_uid, entry.pw_gid


class PostgresServer:
    def __init__(self) -> None:
        # outside pytest's tmp dirs: the server's user must reach it (they can be root-only)
        self.root = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        self.data, self.port = self.root / "data", free_port()
        self.log = self.root / "server.log"
        self.prefix, uid, gid = _runner()
        os.chmod(self.root, 0o755)
        if uid is not None:
            os.chown(self.root, uid, gid or -1)
        self.host = "127.0.0.1"

    def _run(self, *args: str) -> None:
        out = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {(out.stderr or out.stdout)[-1500:]}")

    def start(self) -> "PostgresServer":
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.prefix:
            shutil.chown(pwfile, pwd.getpwnam(self.prefix[2]).pw_uid)
        self._run(_bin("initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "--auth", "scram-sha-256",
                  "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        return self.restart(first=True)

    def restart(self, first: bool = False) -> "PostgresServer":
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=200"
        if not first:
            self.stop()
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.prefix, _bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                           capture_output=True, timeout=60)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url(), password=PASSWORD, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                return self.url(name)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
