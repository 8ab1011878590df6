"""One engine per rollout: an flock on `<state>/rollouts/<id>.lock`.

The kernel drops the lock when its process dies, so a crashed engine never blocks a resume;
a liveness probe takes it for an instant only (`held_elsewhere`).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from fleet_tui.errors import Conflict


class EngineLock:
    """flock on `<state>/rollouts/<id>.lock`: held while an engine runs that rollout."""

    def __init__(self, journal_path: Path, rollout_id: str) -> None:
        self.path = journal_path.parent / "rollouts" / f"{rollout_id}.lock"
        self.fd: int | None = None

    def acquire(self, wait: float = 2.0) -> "EngineLock":
        """Take the lock, retrying for `wait` seconds (a liveness probe holds it only for
        an instant, and must not make a starting engine give up)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise Conflict(f"another engine is running rollout {self.path.stem} (lock {self.path})") from None
                time.sleep(0.05)
        self.fd = fd
        return self

    def held_elsewhere(self) -> bool:
        """True while some live process holds the lock (a dead one never does)."""
        try:
            self.acquire(wait=0)
        except Conflict:
            return True
        self.release()
        return False

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
