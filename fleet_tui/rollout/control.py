"""Controlling rollouts from any process: detached engines, commands, liveness.

- `spawn_engine` starts `fleet-tui rollout run ID` as a background process in its own
  session (so a dropped SSH session's SIGHUP never reaches it), stdin from /dev/null,
  output appended to `<state>/rollouts/<id>.log`; it returns once the engine has recorded
  itself in the journal (or fails with the log's last line).
- `send_command` writes a command row. If no engine holds the rollout's lock, the command
  is applied right here under that lock (an engine that died must not leave an operator's
  pause, abort or rollback unapplied); `resume` then restarts the engine detached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fleet_tui.errors import Conflict, RemoteError, UsageError
from fleet_tui.rollout.journal import COMMANDS, TERMINAL, EngineLock, Journal

START_TIMEOUT_S = 20.0


def log_path(journal: Journal, rollout_id: str) -> Path:
    return journal.path.parent / "rollouts" / f"{rollout_id}.log"


def engine_alive(journal: Journal, rollout_id: str) -> bool:
    return EngineLock(journal.path, rollout_id).held_elsewhere()


def engine_argv(config: Any, rollout_id: str) -> list[str]:
    argv = [sys.executable, "-m", "fleet_tui.cli"]
    if config.source:
        argv += ["-c", config.source]
    for host in config.registry.insecure:
        argv += ["--insecure-registry", host]
    return argv + ["rollout", "run", rollout_id]


def spawn_engine(config: Any, journal: Journal, rollout_id: str) -> int:
    """Start a detached engine for the rollout; returns its pid once it runs."""
    log = log_path(journal, rollout_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    after = max((e.seq for e in journal.events(rollout_id)), default=0)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            engine_argv(config, rollout_id), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd="/",
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(e.data.get("pid") == proc.pid for e in journal.events(rollout_id, "engine", after)):
            return proc.pid
        if proc.poll() is not None:
            if any(e.data.get("pid") == proc.pid for e in journal.events(rollout_id, "engine", after)):
                return proc.pid  # ran and already finished
            raise RemoteError(f"rollout engine exited at once ({_last_line(log)}); see {log}")
        time.sleep(0.05)
    raise RemoteError(f"rollout engine did not start within {START_TIMEOUT_S:g}s; see {log}")


def _last_line(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "empty log"


def send_command(config: Any, journal: Journal, hub: Any, rollout_id: str, kind: str) -> str:
    """Queue `kind` for the rollout; returns a one-line outcome for the operator."""
    from fleet_tui.rollout.engine import Engine

    if kind not in COMMANDS:
        raise UsageError(f"unknown rollout command {kind!r}; use one of {', '.join(COMMANDS)}")
    row = journal.rollout(rollout_id)
    if kind == "resume" and row.state in TERMINAL and not _open_intents(journal, rollout_id):
        raise UsageError(f"rollout {rollout_id} is {row.state}; there is nothing to resume")
    if kind == "resume" and row.state == "halted" and not _open_intents(journal, rollout_id):
        raise UsageError(f"rollout {rollout_id} halted ({row.reason}); roll it back or abort it")
    if kind != "resume" and row.state in ("aborted", "rolled_back"):
        raise UsageError(f"rollout {rollout_id} is already {row.state}")
    journal.add_command(rollout_id, kind)
    lock = EngineLock(journal.path, rollout_id)
    try:
        lock.acquire(wait=1.0)
    except Conflict:  # an engine runs: it will consume the command within one poll
        return f"{kind} sent to the running engine of rollout {rollout_id}"
    try:
        engine = Engine(journal, hub, rollout_id, log=lambda line: None)
        engine.finish_intents()
        engine.apply_commands()
    finally:
        lock.release()
    state = journal.rollout(rollout_id).state
    if kind == "resume" or (state == "running" and kind == "approve"):
        if state not in TERMINAL and state != "halted":
            pid = spawn_engine(config, journal, rollout_id)
            return f"rollout {rollout_id} is {state}; engine restarted (pid {pid})"
    return f"rollout {rollout_id} is {state}"


def _open_intents(journal: Journal, rollout_id: str) -> bool:
    events = journal.events(rollout_id)
    done = {e.data.get("intent") for e in events if e.phase == "done"}
    return any(e.phase == "intent" and e.seq not in done for e in events)


def engine_pid(journal: Journal, rollout_id: str) -> int:
    pid = journal.rollout(rollout_id).pid
    return pid if pid and engine_alive(journal, rollout_id) else 0


def stop_signal_safe() -> None:
    """Detached engines ignore SIGHUP explicitly too (belt and braces with setsid)."""
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.environ.setdefault("FLEET_TUI_ENGINE", "1")
