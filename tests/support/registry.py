"""Start a real CNCF Distribution registry (`docker-registry serve`) on a free loopback port.

The registry must be installed (`.ci/run` installs Debian's `docker-registry`); if it is
missing or does not come up, the fixture fails loudly — never skips. The access log is
parsed so tests can count the bytes the registry really served.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BINARY = "/usr/bin/docker-registry"
_ACCESS = re.compile(r'^(\S+) \S+ \S+ \[[^\]]+\] "(\w+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Access:
    remote: str
    method: str
    path: str
    status: int
    bytes: int
    agent: str


class RegistryServer:
    def __init__(self, root: Path, htpasswd: Path | None = None, remoteurl: str = "") -> None:
        """`remoteurl`: run as a pull-through cache of that registry (a site's gateway)."""
        self.root = root
        self.remoteurl = remoteurl
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = root / "registry.log"
        self.htpasswd = htpasswd
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RegistryServer":
        binary = shutil.which("docker-registry") or BINARY
        if not os.path.exists(binary):
            raise RuntimeError("docker-registry is not installed: apt-get install -y docker-registry (bash .ci/run does it)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.htpasswd:
            auth = f"auth:\n  htpasswd:\n    realm: fleet-test\n    path: {self.htpasswd}\n"
        if self.remoteurl:
            auth += f"proxy:\n  remoteurl: {self.remoteurl}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"{auth}http:\n  addr: {self.host}\n  secret: fleet-test-secret\n"
        )
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited at start: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not answer on {self.host} within 15 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def mark(self) -> int:
        """A position in the access log; `accesses(since=mark)` reads what came after."""
        time.sleep(0.2)  # let the registry flush lines of requests that just completed
        return self.log_path.stat().st_size

    def accesses(self, since: int = 0) -> list[Access]:
        time.sleep(0.2)
        with open(self.log_path, "rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace")
        out = []
        for line in text.splitlines():
            m = _ACCESS.match(line)
            if m:
                remote, method, path, status, nbytes, agent = m.groups()
                out.append(Access(remote, method, path, int(status), 0 if nbytes == "-" else int(nbytes), agent))
        return out

    def served_bytes(self, since: int = 0, agent: str | None = None) -> int:
        """Body bytes of successful GETs (manifests and blobs) since a mark."""
        return sum(a.bytes for a in self.accesses(since)
                   if a.method == "GET" and a.status in (200, 206) and "/v2/" in a.path and a.path != "/v2/"
                   and (agent is None or agent in a.agent))


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{user}:{hashed}\n")
    return path
