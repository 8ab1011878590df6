"""Start real Docker engines (`dockerd` from Debian's docker.io) side by side on loopback.

Each daemon gets its own data root, exec root, pidfile and unix socket, vfs storage and no
networking (`--bridge=none --iptables=false`), and trusts the test registry as insecure.
Fails loudly if dockerd is missing or does not come up; `stop()` ends it by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker

BINARY = "/usr/sbin/dockerd"


class DockerDaemon:
    def __init__(self, root: Path, insecure: list[str] | None = None) -> None:
        self.root = root
        # unix socket paths are limited to ~108 bytes: keep exec root and socket short
        self.short = Path(tempfile.mkdtemp(prefix="dkd", dir="/tmp"))
        self.socket = self.short / "d.sock"
        self.insecure = insecure or []
        self.proc: subprocess.Popen | None = None
        self.client: docker.DockerClient | None = None
        self.log_path = root / "dockerd.log"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60) -> "DockerDaemon":
        binary = shutil.which("dockerd") or BINARY
        if not os.path.exists(binary):
            raise RuntimeError("dockerd is not installed: apt-get install -y docker.io (bash .ci/run does it)")
        self.root.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "--storage-driver=vfs", "--iptables=false", "--bridge=none", "--ip-masq=false",
            "--data-root", str(self.root / "data"), "--exec-root", str(self.short / "x"),
            "--pidfile", str(self.short / "pid"), "-H", self.base_url,
        ]
        for host in self.insecure:
            args += ["--insecure-registry", host]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited at start: {self.log_path.read_text()[-3000:]}")
            if self.socket.exists():
                try:
                    client = docker.DockerClient(base_url=self.base_url, timeout=120)
                    client.ping()
                    self.client = client
                    return self
                except Exception:  # noqa: BLE001 - not up yet
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not come up within {timeout:g}s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.client is not None:
            try:
                for c in self.client.containers.list(all=True):
                    c.remove(force=True)
            except Exception:  # noqa: BLE001 - best effort before stopping
                pass
            self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
        subprocess.run(["umount", "-R", str(self.short / "x")], capture_output=True)
        shutil.rmtree(self.short, ignore_errors=True)
