"""Starting fleet-tui's own detached children (rollout engines, the simulated fleet), and
telling whether one still runs.

A detached child runs `python -m fleet_tui.cli` with the caller's config *file by absolute
path*, the caller's `--insecure-registry` hosts, environment (so `FLEET_TUI_*` overrides
apply) and working directory (so a relative path in an override means what it meant to the
caller), in a session of its own (a dropped SSH session's SIGHUP never reaches it), stdin
from /dev/null and output appended to its log file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli_argv(config: Any, *args: str) -> list[str]:
    argv = [sys.executable, "-m", "fleet_tui.cli"]
    if config.source:
        argv += ["-c", str(Path(config.source).expanduser().resolve())]
    for host in config.registry.insecure:
        argv += ["--insecure-registry", host]
    return argv + list(args)


def caller_cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the caller's directory was deleted under it: nothing relative can resolve anyway
        return "/"


def launch(argv: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=caller_cwd())


def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def running_pid(pidfile: Path) -> int | None:
    """The pid in the pidfile if that process is alive and is fleet-tui; else None."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and (b"fleet_tui" in cmdline or b"fleet-tui" in cmdline) else None


def forget(*files: Path) -> None:
    """Remove a stopped child's pidfile (and status files): a later start must not see it."""
    for path in files:
        path.unlink(missing_ok=True)
