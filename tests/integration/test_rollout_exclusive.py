"""One live rollout per group whatever the timing, and detached starts that never strand one.

- 20 concurrent `rollout start --auto-rebase --detach` processes for one group: exactly one
  rollout exists afterwards; the 19 others exit with one line naming the winner.
- A rollout from another journal (another operator's state dir) on the same hub is seen by
  the engine before it deploys anything: the newcomer ends `aborted`, devices untouched.
- An engine that cannot start leaves no `pending` rollout blocking the group.
- Detached children work from a relative `-c` and relative `FLEET_TUI_*` paths (they get the
  caller's working directory and the config by absolute path).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from fleet_tui.config import load_config
from fleet_tui.errors import RemoteError
from fleet_tui.hub.local import LocalHub
from fleet_tui.rollout.control import start_detached
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.engine import Engine
from fleet_tui.rollout.journal import TERMINAL, Journal
from fleet_tui.rollout.policy import Policy
from tests.support.rollout_env import GROUP, SLOW_SPEED, make_env, pid_alive, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("journal_backend")]  # both journals: SQLite and PostgreSQL (tests/conftest.py)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kill(pid: int) -> None:
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_twenty_concurrent_starts_make_exactly_one_rollout(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 12, repo_name)
    fleet = env.fleet(speed=SLOW_SPEED)
    journal = env.journal()
    try:
        wait_for(lambda: len(list(env.hub().iter_devices())) == 12, 30, "devices to register")
        argv = [sys.executable, "-m", "fleet_tui.cli", "-c", str(env.config_path), "rollout", "start", env.v2,
                "--group", GROUP, "--auto-rebase", "--detach", "--json"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
                 for _ in range(20)]
        results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
        winners = [json.loads(out) for code, out, _ in results if code == 0]
        assert len(winners) == 1, results
        winner = winners[0]["id"]
        losers = [err for code, _, err in results if code != 0]
        assert len(losers) == 19
        for err in losers:
            assert err.count("\n") == 1 and err.startswith("fleet-tui: error: rollout ") and winner in err, err
            assert "Traceback" not in err
        rollouts = journal.list_rollouts()
        assert [r.id for r in rollouts] == [winner]
        assert len({d.id for d in env.hub().list_deployments() if d.labels.get("rollout")}) >= 1
        assert {d.labels.get("rollout") for d in env.hub().list_deployments() if d.labels.get("rollout")} == {winner}
    finally:
        for r in journal.list_rollouts():
            kill(r.pid)
        fleet.stop()


def test_a_rollout_from_another_journal_fences_the_group_on_the_hub(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 6, repo_name)
    fleet = env.fleet(speed=SLOW_SPEED)  # devices stay mid-pull: the first rollout stays live
    mine, theirs = env.journal(), Journal(tmp_path / "other-operator" / "rollouts.sqlite")
    hub = env.hub()
    try:
        wait_for(lambda: len(list(hub.iter_devices())) == 6, 30, "devices to register")
        policy = Policy(waves=("1", "100%"), poll=0.05, gate_timeout=60)
        first = create_rollout(env.config, hub, theirs, env.v2, GROUP, policy)
        other_engine = Engine(theirs, hub, first, log=lambda line: None)
        other_engine.step()  # deployments created
        other_engine.step()  # canary tagged
        assert theirs.rollout(first).state == "running"
        before = {t.device_id: dict(t.tags) for t in hub.iter_devices()}

        second = create_rollout(env.config, hub, mine, env.v2, GROUP, policy)
        lines: list[str] = []
        engine = Engine(mine, hub, second, log=lines.append)
        assert engine.step() is False  # begin: sees the rival, aborts instead of deploying
        row = mine.rollout(second)
        assert row.state == "aborted" and first in row.reason and "--prune --foreign" in row.reason
        assert not [d for d in hub.list_deployments() if d.labels.get("rollout") == second]
        assert {t.device_id: dict(t.tags) for t in hub.iter_devices()} == before
        assert any(first in line for line in lines)
    finally:
        hub.close()
        fleet.stop()


def test_an_engine_that_cannot_start_leaves_nothing_pending(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 4, repo_name)
    fleet = env.fleet()
    journal, hub = env.journal(), env.hub()
    try:
        wait_for(lambda: len(list(hub.iter_devices())) == 4, 30, "devices to register")
        rid = create_rollout(env.config, hub, journal, env.v2, GROUP, Policy(waves=("100%",), poll=0.05))
        env.config_path.rename(tmp_path / "moved.toml")  # the detached engine cannot load its config
        with pytest.raises(RemoteError, match=f"rollout {rid} not started, nothing changed on the hub") as err:
            start_detached(env.config, journal, rid)
        assert "\n" not in str(err.value)
        row = journal.rollout(rid)
        assert row.state == "aborted" and "engine did not start" in row.reason
        assert not hub.list_deployments() or all(d.labels.get("rollout") != rid for d in hub.list_deployments())
        again = create_rollout(env.config, hub, journal, env.v2, GROUP, Policy(waves=("100%",), poll=0.05))
        assert journal.rollout(again).state == "pending"  # the group is free
    finally:
        hub.close()
        fleet.stop()


def _run(argv: list[str], cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    pythonpath = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "fleet_tui.cli", *argv], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**env, "PYTHONPATH": pythonpath})


@pytest.mark.parametrize("how", ["relative -c", "relative FLEET_TUI_ paths"])
def test_detached_engines_start_from_relative_paths(tmp_path, registry, repo_name, how):
    env = make_env(tmp_path, registry, 4, repo_name)
    fleet = env.fleet()
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_TUI_")}
    try:
        wait_for(lambda: len(list(env.hub().iter_devices())) == 4, 30, "devices to register")
        if how == "relative -c":
            argv, extra, journal_path = ["-c", "config.toml"], {}, env.config.state_path() / "rollouts.sqlite"
        else:  # no file at all: every path comes relative from the environment
            hub_rel = os.path.relpath(env.config.hub_path(), tmp_path)
            argv = []
            extra = {"XDG_CONFIG_HOME": str(tmp_path / "no-config"), "FLEET_TUI_STATE_DIR": "rel-state",
                     "FLEET_TUI_HUB__PATH": hub_rel, "FLEET_TUI_HUB__MODULE": "scoring"}
            journal_path = tmp_path / "rel-state" / "rollouts.sqlite"
        proc = _run([*argv, "rollout", "start", env.v2, "--group", GROUP, "--detach", "--json"], tmp_path,
                    {**base, **extra})
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        journal = Journal(journal_path)
        wait_for(lambda: journal.rollout(out["id"]).state in TERMINAL, 60, "the detached rollout to end")
        assert journal.rollout(out["id"]).state == "succeeded"
        kill(out["pid"])
    finally:
        fleet.stop()


def test_config_paths_given_relative_resolve_against_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "fleet.toml").write_text('state_dir = "state"\n[hub]\npath = "hub.sqlite"\n')
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        config = load_config("sub/fleet.toml", environ={})
    finally:
        os.chdir(cwd)
    assert os.path.isabs(config.source) and config.state_path() == tmp_path / "sub" / "state"
    assert config.hub_path() == tmp_path / "sub" / "hub.sqlite"
    LocalHub(config.hub_path()).close()
