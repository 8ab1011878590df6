"""Commands that mean nothing in a rollout's state say so instead of acting (issue 25.7):
`approve` approves only the wave that waits (or, with --ahead / the console's pre-approval,
the next one, on purpose); `continue` and `retry` only a halted rollout; `rollback` refuses a
rollout already rolled back. Checked before anything is written."""

from __future__ import annotations

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.rollout.control import check_approve, send_command
from fleet_tui.rollout.journal import Assignment, Journal
from fleet_tui.rollout.policy import Policy


def _rollout(open_journal, approve_each: bool = True) -> Journal:
    journal = open_journal()
    spec = {"group": "vans", "policy": Policy(approve_each=approve_each).to_dict()}
    journal.create("r1", spec, [1, 2, 3], [Assignment(d, w, "full", "", "", 10)
                                          for d, w in (("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 2), ("f", 2))])
    journal.record("r1", "deploy", "done", state="running")
    return journal


def test_approve_when_no_wave_waits_is_refused_unless_asked_ahead(open_journal):
    journal = _rollout(open_journal)
    journal.record("r1", "wave", "done", 0, wave_set={"state": "running", "started": 1.0})
    with pytest.raises(UsageError, match=r"no wave waits for approval yet \(wave 1 is not done\).*approve --ahead r1"):
        check_approve(journal, "r1", "running", ahead=False)
    check_approve(journal, "r1", "running", ahead=True)  # on purpose: approves wave 2 before its turn
    journal.record("r1", "judge", "done", 0, wave_set={"state": "passed"})
    check_approve(journal, "r1", "running", ahead=False)  # wave 2 waits: approve it
    journal.record("r1", "approve", "done", 1, wave_set={"approved": 1})
    with pytest.raises(UsageError, match="wave 2 is approved already"):
        check_approve(journal, "r1", "running", ahead=False)
    with pytest.raises(UsageError, match="approve applies to a running or paused rollout"):
        check_approve(journal, "r1", "halted", ahead=True)


def test_approve_on_a_rollout_that_needs_none_and_continue_or_retry_when_not_halted(tmp_path, open_journal):
    journal = _rollout(open_journal, approve_each=False)
    with pytest.raises(UsageError, match="starts every wave itself"):
        send_command(None, journal, None, "r1", "approve")
    for kind in ("continue", "retry"):
        with pytest.raises(UsageError, match=f"r1 is running; {kind} applies only to a halted rollout"):
            send_command(None, journal, None, "r1", kind)
    assert journal.pending_commands("r1") == []  # nothing was queued
    journal.record("r1", "rollback", "done", state="rolled_back")
    with pytest.raises(UsageError, match="already rolled back"):
        send_command(None, journal, None, "r1", "rollback")
