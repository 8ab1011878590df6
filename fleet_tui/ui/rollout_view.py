"""How a rollout snapshot reads on the Rollout screen: pure functions, no Textual.

Display only — the snapshot keeps the docs/cli.md device states. After an abort or rollback the
devices of waves that never started are `untouched` (nothing was ever sent to them), not
`pending`; a rolled-back device's progress is not a download in progress; a wave whose
gate is open says what it waits for and when it times out.
"""

from __future__ import annotations

from fleet_tui.rollout.snapshot import RolloutDevice, RolloutSnapshot, Wave
from fleet_tui.ui.formatting import bar, duration
from fleet_tui.units import plural

ENDED_EARLY = ("aborted", "rolled_back")
ROLLED_BACK, UNTOUCHED = -1.0, -2.0  # progress sentinels (sort below every real fraction)
COUNTED = ("running", "downloading", "applying", "pending", "failed", "offline", "rolled_back", "untouched")


def untouched_waves(s: RolloutSnapshot) -> frozenset[int]:
    """Waves that will never start: the rollout ended (abort/rollback) before them."""
    if s.state not in ENDED_EARLY:
        return frozenset()
    return frozenset(w.index for w in s.waves if w.state == "pending")


def device_state(d: RolloutDevice, untouched: frozenset[int]) -> str:
    return "untouched" if d.state == "pending" and d.wave in untouched else d.state


def wave_state(w: Wave, s: RolloutSnapshot, untouched: frozenset[int]) -> str:
    if w.index in untouched:
        return "untouched"
    if s.state in ENDED_EARLY and w.state in ("targeting", "running", "baking"):
        return s.state  # its gate will never be judged now
    return w.state


def progress(d: RolloutDevice, untouched: frozenset[int]) -> float:
    if d.state == "rolled_back":
        return ROLLED_BACK
    if d.wave in untouched and d.state == "pending":
        return UNTOUCHED
    if not d.total:  # nothing to pull: done once it runs the new image
        return 1.0 if d.state == "running" else 0.0
    return d.bytes / d.total


def progress_text(frac: float) -> str:
    if frac == ROLLED_BACK:
        return "↺ rolled back"
    if frac == UNTOUCHED:
        return "—"
    return bar(int(frac * 1000), 1000, 10)


def gate_open(w: Wave, s: RolloutSnapshot) -> bool:
    return w.deadline is not None and w.needed > 0 and s.state in ("running", "paused")


def timeout_in(w: Wave, now: float) -> str:
    left = (w.deadline or 0.0) - now
    return f"timeout in {duration(left)}" if left > 0 else "timing out"


def gate_cell(w: Wave, s: RolloutSnapshot) -> str:
    """The GATE column: the policy, or for an open gate what it still needs (DONE shows the count)."""
    if not gate_open(w, s):
        return w.verdict
    return f"need {w.needed:,} of {w.size:,} · {timeout_in(w, s.taken)}"


def gate_wait(w: Wave, now: float) -> str:
    """`wave 2 waiting: 21/24 running, need 23 · timeout in 2m10s`."""
    return (f"wave {w.index + 1} waiting: {w.done:,}/{w.size:,} running, need {w.needed:,}"
            f" · {timeout_in(w, now)}")


def status_hint(s: RolloutSnapshot, untouched: frozenset[int]) -> tuple[str, str]:
    """What the status line's second line adds after the cost: (text, style)."""
    if s.engine == "stopped":
        return "engine stopped: u resumes the rollout (its journal kept every step)", "bold yellow"
    if s.awaiting_approval:
        return "canary done: a approves the next wave", "bold yellow"
    if s.state == "paused" and s.approvable:
        nxt = next((w.index + 1 for w in s.waves if w.state == "pending" and w.index > 0), None)
        return (f"paused: a pre-approves wave {nxt}" if nxt else "paused: a pre-approves the next wave"), "yellow"
    if untouched:
        n = sum(1 for d in s.devices if device_state(d, untouched) == "untouched")
        return f"{plural(n, 'device')} untouched (waves never started) · e report", "dim"
    if s.state in ("succeeded", "aborted", "rolled_back", "halted"):
        return "e shows the report", "dim"
    waiting = next((w for w in s.waves if gate_open(w, s) and w.state not in ("succeeded", "passed")), None)
    if waiting is not None:
        soon = (waiting.deadline or 0.0) - s.taken < 60 and waiting.done < waiting.needed
        return gate_wait(waiting, s.taken), "bold yellow" if soon else ""
    return "", ""


def words(state: str) -> str:
    """A state as the screen writes it: `rolled_back` → `rolled back` (JSON keeps the name)."""
    return state.replace("_", " ")


def counts_text(s: RolloutSnapshot, untouched: frozenset[int]) -> str:
    counts: dict[str, int] = {}
    for d in s.devices:
        st = device_state(d, untouched)
        counts[st] = counts.get(st, 0) + 1
    return ", ".join(f"{counts[st]:,} {words(st)}" for st in COUNTED if counts.get(st))


FINISHED = ("succeeded", "aborted", "rolled_back")


def offered(action: str, s: RolloutSnapshot) -> bool:
    """Whether the rollout's state gives `action` any meaning (the footer shows only those;
    the engine would ignore the others)."""
    if action == "pause":
        return s.state in ("pending", "running")
    if action == "resume":  # also a rollout whose engine stopped (Ctrl-C on a foreground start)
        return s.state == "paused" or s.engine == "stopped"
    if action == "approve":  # also ahead of time while paused: the engine records it for the next wave
        return s.awaiting_approval or (s.state == "paused" and s.approvable)
    if action == "abort":
        return s.state not in FINISHED
    if action == "continue":
        return s.state == "halted"
    if action == "retry":
        return s.state == "halted" and any(d.state == "failed" or (d.state == "offline" and d.reason not in ("", "offline"))
                                           for d in s.devices)  # offline after failing: the retry waits for it
    return s.state != "rolled_back"  # rollback: also after an abort or a halt (the way back stays open)


def why_not(action: str, s: RolloutSnapshot) -> str:
    """Why `action` means nothing now, in one line (the console says it when its key is pressed)."""
    state = s.state.replace("_", " ")
    if action == "retry" and s.state == "halted":
        return "nothing to retry: no device of the halted wave failed; C continues, B rolls back, A aborts"
    return {
        "pause": f"pause applies while a rollout runs; this one is {state}",
        "resume": f"nothing to resume: the rollout is {state} and its engine runs",
        "approve": "no wave waits for approval" + ("" if s.state in ("running", "paused") else f": the rollout is {state}"),
        "abort": f"the rollout ended already ({state})",
        "continue": f"continue applies to a halted rollout; this one is {state}",
        "retry": f"retry applies to the failed devices of a halted rollout; this one is {state}",
        "rollback": "the rollout is rolled back already",
    }.get(action, f"{action} means nothing now")
