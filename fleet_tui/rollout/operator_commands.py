"""Applying operator commands (pause, resume, abort, rollback, approve, continue, retry).

A part of `Engine` (`engine.commands`); a `retry` goes through the engine's retries part.
Commands are rows any process writes (`Journal.add_command`, with who sent it); the engine
applies them at the start of each step, or `control.send_command` applies them under the
rollout's lock when no engine runs. Each one is consumed in the same transaction as the
state change it causes, and journalled with its sender (`by`); a command the rollout's
state gives no meaning is recorded as ignored, never silently dropped.
"""

from __future__ import annotations

from fleet_tui.rollout.context import RolloutContext
from fleet_tui.rollout.gate import read_devices
from fleet_tui.rollout.journal import TERMINAL
from fleet_tui.rollout.retries import DeviceRetries
from fleet_tui.rollout.site_steps import SiteSteps


class OperatorCommands:
    def __init__(self, ctx: RolloutContext, retries: DeviceRetries, sites: SiteSteps) -> None:
        self.ctx = ctx
        self.retries = retries
        self.sites = sites

    def apply_commands(self) -> None:
        ctx = self.ctx
        for seq, kind, who in ctx.journal.pending_commands(ctx.id):
            state = ctx.journal.rollout(ctx.id).state
            by = {"by": who} if who else {}
            ctx.log(f"command {kind} (rollout {state}){' from ' + who if who else ''}")
            if kind == "pause" and state in ("pending", "running"):
                ctx.record("pause", "done", data=by, state="paused", reason="paused by the operator", consume=seq)
            elif kind == "resume" and state == "paused":
                ctx.record("resume", "done", data=by, state="running", reason="", consume=seq)
            elif kind == "abort" and state not in TERMINAL:
                ctx.record("abort", "done", data=by, state="aborted", reason="aborted by the operator", consume=seq)
            elif kind == "rollback" and state != "rolled_back":
                reason = "rolled back by the operator"
                ctx.intend("rollback", None, {"waves": ctx.started_waves(), "reason": reason, **by}, consume=seq)
            elif kind == "approve" and state not in TERMINAL:
                wave = next((w for w in ctx.journal.waves(ctx.id) if w.state == "pending"), None)
                wave_set = {"approved": 1} if wave else None
                ctx.record("approve", "done", wave.idx if wave else None, by, wave_set=wave_set, consume=seq)
            elif kind == "continue" and (state == "halted" or (state == "running" and self.sites.held_devices())):
                self.continue_halted(seq, who)
            elif kind == "retry" and state == "halted" and self.retry_halted(seq, who):
                pass
            else:
                ctx.record("command_ignored", "done", data={"command": kind, "state": state, **by}, consume=seq)

    def retry_halted(self, seq: int, who: str) -> bool:
        """The operator's `retry`: the failed wave's failed devices once more, its gate reopened."""
        ctx = self.ctx
        wave = next((w for w in ctx.journal.waves(ctx.id) if w.state == "failed"), None)
        if wave is None:
            return False
        views = read_devices(ctx.hub, ctx.id, ctx.spec["module"], [a.device_id for a in ctx.by_wave[wave.idx]])
        failed = [v.device_id for v in self.retries.failed_devices(wave, views, self.retries.retries_done()[1])]
        if not failed:
            return False
        self.retries.retry(wave.idx, failed, f"asked by {who or 'the operator'}", data={"reopen": True, "by": who},
                           state="running", reason="", consume=seq,
                           wave_set={"state": "running", "judged": None, "result": None})
        return True

    def continue_halted(self, seq: int, who: str) -> None:
        """The operator's `continue` on a halted rollout: a failed gate counts as passed, or
        the wave the budget stopped is started anyway (recorded; the budget is not raised)."""
        ctx = self.ctx
        waves = ctx.journal.waves(ctx.id)
        failed = next((w for w in waves if w.state == "failed"), None)
        who = who or "the operator"
        held = self.sites.held_devices()
        if held:  # sites held back: warm and check them again; waves that left their devices untold reopen
            self.sites.retry(who)
            told = {d for ids in ctx.told().values() for d in ids}
            reopen = sorted({a.wave for a in ctx.assignments if a.device_id in held and a.device_id not in told})
            for idx in reopen:
                if waves[idx].state == "passed":
                    ctx.record("continue", "done", idx, {"sites": True, "by": who},
                               wave_set={"state": "targeting", "judged": None, "result": None})
            ctx.record("continue", "done", None, {"sites": True, "by": who}, state="running", reason="", consume=seq)
        elif failed is not None:
            ctx.record("continue", "done", failed.idx, {"gate": True, "by": who}, state="running",
                       reason="", wave_set={"state": "passed"}, consume=seq)
        else:
            pending = next((w for w in waves if w.state == "pending"), None)
            ctx.record("continue", "done", pending.idx if pending else None, {"budget": True, "by": who},
                       state="running", reason="", consume=seq)
        ctx.log(f"continued by {who}")
