"""Controlling rollouts from any process: detached engines, commands, liveness.

- `spawn_engine` starts `fleet-tui rollout run ID` detached (fleet_tui.detach), output
  appended to `<state>/rollouts/<id>.log`; it returns once the engine has recorded itself in
  the journal (or fails with the log's last line). `start_detached` does so for a new
  rollout and never leaves one `pending` that no engine will ever run.
- `send_command` writes a command row. If no engine holds the rollout's lock, the command
  is applied right here under that lock (an engine that died must not leave an operator's
  pause, abort or rollback unapplied); `resume` then restarts the engine detached.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fleet_tui.detach import cli_argv, launch
from fleet_tui.errors import Conflict, RemoteError, UsageError
from fleet_tui.rollout.ending import needs_fold
from fleet_tui.rollout.engine import Engine
from fleet_tui.rollout.journal import COMMANDS, TERMINAL, Journal
from fleet_tui.rollout.site_steps import held_sites

START_TIMEOUT_S = 20.0


def log_path(journal: Journal, rollout_id: str) -> Path:
    return journal.path.parent / "rollouts" / f"{rollout_id}.log"


def engine_alive(journal: Journal, rollout_id: str) -> bool:
    return journal.engine_lock(rollout_id).held_elsewhere()


def spawn_engine(config: Any, journal: Journal, rollout_id: str) -> int:
    """Start a detached engine for the rollout; returns its pid once it runs."""
    log = log_path(journal, rollout_id)
    after = max((e.seq for e in journal.events(rollout_id)), default=0)
    proc = launch(cli_argv(config, "rollout", "run", rollout_id), log)
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


def start_detached(config: Any, journal: Journal, rollout_id: str) -> int:
    """`spawn_engine` for a rollout just created: when no engine comes up, a rollout that
    never touched the hub is marked aborted (so it blocks nobody's group) and the error says
    so; one that did gets its id and the ways out in the error."""
    try:
        return spawn_engine(config, journal, rollout_id)
    except RemoteError as exc:
        if not engine_alive(journal, rollout_id) and journal.abandon_untouched(rollout_id, f"engine did not start: {exc}"):
            raise RemoteError(f"rollout {rollout_id} not started, nothing changed on the hub: {exc}") from None
        raise RemoteError(f"rollout {rollout_id}: {exc}; resume it with `fleet-tui rollout resume {rollout_id}` "
                          f"or abort it with `fleet-tui rollout abort {rollout_id}`") from None


def _last_line(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "no log"
    return lines[-1][:200] if lines else "empty log"


def check_approve(journal: Journal, rollout_id: str, state: str, ahead: bool) -> None:
    """`approve` means something only for an approve-each rollout with a wave still to start:
    the wave that waits now, or — `ahead` — the next one, approved before its turn."""
    row = journal.rollout(rollout_id)
    if not row.spec.get("policy", {}).get("approve_each"):
        raise UsageError(f"rollout {rollout_id} starts every wave itself (its policy is not approve-each); "
                         "nothing to approve")
    if state not in ("running", "paused"):
        raise UsageError(f"rollout {rollout_id} is {state}; approve applies to a running or paused rollout")
    waves = journal.waves(rollout_id)
    pending = next((w for w in waves if w.state == "pending"), None)
    if pending is None:
        raise UsageError(f"rollout {rollout_id}: every wave has started; nothing to approve")
    if pending.approved:
        raise UsageError(f"rollout {rollout_id}: wave {pending.idx + 1} is approved already")
    waiting = state == "running" and all(w.state == "passed" for w in waves[:pending.idx])
    if not waiting and not ahead:
        busy = next((w.idx + 1 for w in waves[:pending.idx] if w.state != "passed"), pending.idx)
        raise UsageError(f"rollout {rollout_id}: no wave waits for approval yet (wave {busy} is not done); "
                         f"`fleet-tui rollout approve --ahead {rollout_id}` approves wave {pending.idx + 1} now, so it "
                         "starts without asking")


def send_command(config: Any, journal: Journal, hub: Any, rollout_id: str, kind: str, ahead: bool = False) -> str:
    """Queue `kind` for the rollout; returns a one-line outcome for the operator. `ahead`:
    `approve` may approve the next wave before it waits (the console's pre-approval)."""
    if kind not in COMMANDS:
        raise UsageError(f"unknown rollout command {kind!r}; use one of {', '.join(COMMANDS)}")
    row = journal.rollout(rollout_id)
    if kind == "approve":
        check_approve(journal, rollout_id, row.state, ahead)
    if kind == "resume" and row.state in TERMINAL and not _open_intents(journal, rollout_id):
        raise UsageError(f"rollout {rollout_id} is {row.state}; there is nothing to resume")
    if kind == "resume" and row.state == "halted" and not _open_intents(journal, rollout_id):
        raise UsageError(f"rollout {rollout_id} halted ({row.reason}); roll it back, abort it, or continue it anyway (fleet-tui rollout continue {rollout_id})")
    if kind == "continue" and row.state == "running" and held_sites(journal, rollout_id):
        pass  # a site held back while the rest goes on: continue warms it again
    elif kind in ("continue", "retry") and row.state != "halted":
        raise UsageError(f"rollout {rollout_id} is {row.state}; {kind} applies only to a halted rollout")
    if kind == "rollback" and row.state == "rolled_back":
        raise UsageError(f"rollout {rollout_id} is already rolled back")
    if kind not in ("resume", "rollback") and row.state in ("aborted", "rolled_back"):
        raise UsageError(f"rollout {rollout_id} is {row.state}; only `rollout rollback {rollout_id}` still applies "
                         "(it returns the devices it reached to what they ran)" if row.state == "aborted" else
                         f"rollout {rollout_id} is already {row.state}")
    if kind == "resume" and row.state != "paused" and engine_alive(journal, rollout_id):
        holder = journal.holder(rollout_id)
        if holder:  # a team's journal: the engine may be on another host, or that host may be gone
            until = time.strftime("%H:%M:%S", time.localtime(holder["expires"]))
            return (f"rollout {rollout_id} is {row.state}; already running (engine pid {holder['pid']} on "
                    f"{holder['host']}, lease until {until}); if that host is gone, resume again once its lease lapses")
        return f"rollout {rollout_id} is {row.state}; already running (engine pid {row.pid})"  # idempotent
    journal.add_command(rollout_id, kind)
    lock = journal.engine_lock(rollout_id)
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
    after = journal.rollout(rollout_id)
    state = after.state
    if kind == "retry" and state == "halted":
        raise Conflict(f"retry changed nothing: rollout {rollout_id} is still halted ({after.reason})"
                       "; no device of the failed wave reported a failure — continue it anyway, roll back or abort")
    if kind == "resume" or (state == "running" and kind in ("approve", "continue", "retry")):
        if state not in TERMINAL and state != "halted":
            return _ensure_engine(config, journal, rollout_id, state)
    if state in TERMINAL and needs_fold(journal, rollout_id):  # an engine folds it once the devices are back
        return _ensure_engine(config, journal, rollout_id, state, "an engine folds it once the devices are back")
    return f"rollout {rollout_id} is {state}"


def _ensure_engine(config: Any, journal: Journal, rollout_id: str, state: str, doing: str = "engine restarted") -> str:
    """Start an engine unless one runs; a concurrent resume that started one first is success."""
    if engine_alive(journal, rollout_id):
        return f"rollout {rollout_id} is {state}; already running (engine pid {journal.rollout(rollout_id).pid})"
    try:
        pid = spawn_engine(config, journal, rollout_id)
    except RemoteError:
        if engine_alive(journal, rollout_id):  # ours lost the engine lock to another resume's engine
            return f"rollout {rollout_id} is {state}; already running (engine pid {journal.rollout(rollout_id).pid})"
        raise
    return f"rollout {rollout_id} is {state}; {doing} (pid {pid})"


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
