"""Journal events as lines an operator reads: `wave 1: tagged 5 devices`,
`wave 1 gate passed: 5 of 5 running`, `wave 3 halted: 2 failed (max 1)`,
`rollback: 6 devices pinned to store@ec38bef290c9`.

Invariants: waves are numbered from 1 here, as in every table an operator sees (the
journal counts from 0); an *intent* that has its *done* is not shown (the done line says
it), an intent still open reads as work in progress (`wave 2: tagging 13 devices…`);
an unknown kind still yields a line (`kind wave N phase`), never an error.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from fleet_tui.rollout.journal import Assignment, Event, WaveRow
from fleet_tui.rollout.policy import Policy
from fleet_tui.units import size
from fleet_tui.units import span as span_text


def short_image(ref: str) -> str:
    """`oci:/d/store@sha256:ec38…` → `store@ec38bef290c9`; `host:5000/ml/scoring:1` → `scoring:1`."""
    name, at, digest = ref.partition("@")
    base = name.removeprefix("oci:").rstrip("/").rsplit("/", 1)[-1] or name
    return f"{base}@{digest.split(':', 1)[-1][:12]}" if at else base


def gate_detail(result: dict[str, Any], policy: Policy) -> str:
    """Why a gate failed, in a few words."""
    if str(result.get("reason", "")).startswith("gate timeout"):
        return (f"timed out after {policy.gate_timeout:g}s, {result.get('running', 0)} of {result.get('size', 0)}"
                f" running (needed {result.get('needed', 0)})")
    return f"{result.get('failed', 0)} failed (max {policy.max_failed})"


class EventText:
    def __init__(self, policy: Policy, assignments: Sequence[Assignment]) -> None:
        self.policy = policy
        self.by_wave: dict[int, list[Assignment]] = {}
        for a in assignments:
            self.by_wave.setdefault(a.wave, []).append(a)

    def lines(self, events: Sequence[Event], waves: Iterable[WaveRow]) -> list[tuple[float, str]]:
        results = {w.idx: w.result or {} for w in waves}
        intents = {e.seq: e for e in events if e.phase == "intent"}
        finished = {e.data.get("intent") for e in events if e.phase == "done"}
        out = []
        for e in events:
            if e.phase == "intent" and e.seq in finished:
                continue
            text = self.text(e, intents.get(e.data.get("intent", -1)), results)
            if text:
                out.append((e.ts, text))
        return out

    def text(self, e: Event, intent: Event | None, results: dict[int, dict[str, Any]]) -> str:
        n = "" if e.wave is None else str(e.wave + 1)
        data = (intent.data if intent else {}) or e.data
        open_ = e.phase == "intent"
        if e.kind == "target":
            if e.data.get("complete"):
                return ""
            devices = data.get("devices", len(self.by_wave.get(e.wave or 0, [])))
            size = len(devices) if isinstance(devices, list) else int(devices)
            noun = "device" if size == 1 else "devices"
            return f"wave {n}: tagging {size} {noun}…" if open_ else f"wave {n}: tagged {size} {noun}"
        if e.kind == "retry":
            devices = data.get("devices", [])
            count = len(devices) if isinstance(devices, list) else int(devices)
            noun = "device" if count == 1 else "devices"
            return (f"wave {n}: retrying {count} {noun} ({data.get('why', 'retry')})…" if open_
                    else f"wave {n}: told {count} failed {noun} to try again ({data.get('why', 'retry')})")
        if e.kind == "wait":
            opens = span_text(float(e.data.get("opens_in", 0)))
            if e.data.get("metered"):
                return f"wave {n}: {e.data['metered']} devices on metered links wait for their window (opens in {opens})"
            return f"wave {n}: waiting for window (opens in {opens})"
        if e.kind == "budget":
            return f"wave {n} halted: over budget (spent + plan {e.data.get('spent', 0) + e.data.get('plan', 0):,} B > {e.data.get('budget', 0):,} B)"
        if e.kind == "continue":
            what = ("past the budget" if e.data.get("budget") else "with its held sites warmed again"
                    if e.data.get("sites") else "past its failed gate")
            return f"wave {n}: continued {what} by {e.data.get('by', 'the operator')}"
        if e.kind == "judge":
            r = e.data
            if r.get("passed"):
                return f"wave {n} gate passed: {r.get('running', 0)} of {r.get('size', 0)} running"
            return f"wave {n} gate failed: {gate_detail(r, self.policy)}"
        if e.kind == "halt":
            if e.data.get("sites"):
                return f"halted: {', '.join(e.data['sites'])} held back (every other device updated)"
            return f"wave {n} halted: {gate_detail(results.get(e.wave or 0, {}), self.policy)}"
        if e.kind in ("site", "warm"):
            return self._site(e)
        if e.kind == "rollback":
            return "rolling back…" if open_ else self._rollback(data.get("waves", []))
        if e.kind == "deploy":
            return "creating the release deployment…" if open_ else "release deployment created"
        if e.kind == "baked":
            return f"wave {n} baked {self.policy.bake:g}s: passed"
        who = e.data.get("by") or "the operator"  # the OS user (and SSH client) who sent the command
        if e.kind == "approve":
            return f"wave {n} approved by {who}" if n else f"approved by {who}"
        if e.kind == "created":
            return f"created by {e.data['by']}" if e.data.get("by") else ""
        simple = {
            "engine": f"engine started (pid {e.data.get('pid', '?')})",
            "wave": f"wave {n} started",
            "pause": f"paused by {who}", "resume": f"resumed by {who}",
            "abort": f"aborted by {who}: no more devices will be tagged",
            "finish": "rollout succeeded: every wave passed its gate",
            "abandoned": f"not started: {e.data.get('reason', '?')}",
            "fence": f"not started: rollout {e.data.get('other', '?')} holds this group on the hub",
            "command_ignored": f"{e.data.get('command', 'command')} ignored: rollout is "
                               f"{str(e.data.get('state', '?')).replace('_', ' ')}",
            "fold": ("folding the ended rollout into the group's deployments…" if open_ else
                     "folded into the group's deployments: rollout tags removed"),
        }
        return simple.get(e.kind, f"{e.kind.replace('_', ' ')}{f' (wave {n})' if n else ''}"
                                  + (" begun" if open_ else ""))

    @staticmethod
    def _site(e: Event) -> str:
        site, d = e.data.get("site", "?"), e.data
        if e.kind == "warm" and d.get("simulated"):
            return f"site {site}: the simulated gateway fetched {size(int(d.get('bytes', 0)))} over the uplink"
        if e.kind == "warm":
            what = "already held" if d.get("held") else f"fetched over the uplink ({size(int(d.get('bytes', 0)))})"
            return f"site {site}: {str(d.get('digest', ''))[7:19]} {what}"
        if "halt" in d:
            return f"site {site} halted: {d['halt']}"
        if d.get("ready"):
            return f"site {site}: cache holds every blob ({size(int(d.get('bytes', 0)))} over the uplink); its devices follow"
        if "wait" in d:
            return f"site {site}: waiting for its uplink's window (opens in {span_text(float(d['wait']))})"
        if d.get("retry"):
            return f"site {site}: warmed again, asked by {d.get('by') or 'the operator'}"
        return f"site {site}: warming its cache"

    def _rollback(self, waves: Iterable[int]) -> str:
        devices = [a for w in waves for a in self.by_wave.get(int(w), [])]
        images = {a.prev_image for a in devices}
        noun = "device" if len(devices) == 1 else "devices"
        if len(images) == 1 and (image := next(iter(images))):
            return f"rollback: {len(devices)} {noun} pinned to {short_image(image)}"
        return f"rollback: {len(devices)} {noun} pinned to the images they ran before"
