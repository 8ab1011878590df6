"""Hub faults during a rollout on the real simulated fleet and the real local hub (SQLite):

- another process holds the hub's write lock for 65 s (beyond the 30 s busy timeout) while
  wave 2 updates, and the hub's disk is full for 35 s while wave 3 updates: no device report
  is lost (the fleet's outbox keeps them until the hub accepts them), the engine retries its
  own failed steps, and the rollout succeeds without a false gate timeout;
- an idle fleet stays online: devices heartbeat well inside the hub's offline window
  (scaled: heartbeat 1 s, window 5 s, watched for 30 s — the ratio of 60 s and 300 s);
- read-only commands open the hub and the journal without taking their write lock.

The disk-full fault needs a small tmpfs (`mount -t tmpfs`, root): the test fails loudly
without it rather than skipping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fleet_tui.cli import main
from fleet_tui.hub.local import LocalHub
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.engine import Engine
from fleet_tui.rollout.policy import Policy
from tests.support.rollout_env import GROUP, make_env, wait_for
from tests.support.sim_thread import SimFleetThread

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"the disk-full test needs a tmpfs (run as root): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(str(path), timeout=5, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
    return filler


def test_reports_survive_a_locked_hub_and_a_full_disk(small_disk, registry, repo_name):
    env = make_env(small_disk, registry, 20, repo_name)
    fleet = env.fleet(speed=50.0)  # an update takes ~1 real second
    journal, hub = env.journal(), env.hub()
    lines: list[str] = []
    try:
        wait_for(lambda: len(list(hub.iter_devices())) == 20, 30, "devices to register")
        policy = Policy(waves=("1", "30%", "100%"), poll=0.2, gate_timeout=240, success="100%", min_finished=1)
        rid = create_rollout(env.config, hub, journal, env.v2, GROUP, policy)
        engine = Engine(journal, env.hub(), rid, log=lines.append)
        runner = threading.Thread(target=engine.run, daemon=True)
        runner.start()

        wait_for(lambda: journal.waves(rid)[1].state == "running", 60, "wave 2 to be tagged")
        held = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(env.config.hub_path(), 65.0, held))
        locker.start()
        held.wait(10)
        locker.join()  # 65 s: the wave's devices update meanwhile; their reports cannot be written
        wait_for(lambda: journal.waves(rid)[1].state == "passed", 90, "wave 2 to pass after the lock")

        wait_for(lambda: journal.waves(rid)[2].state == "running", 60, "wave 3 to be tagged")
        filler = fill(small_disk)
        probe = LocalHub(env.config.hub_path(), module="scoring")
        with pytest.raises(sqlite3.OperationalError, match="full"):  # the fault is real: hub writes fail
            probe.register_devices([("probe", {"fleetGroup": "none"})])
        time.sleep(35)
        filler.unlink()
        probe.close()
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 120, "the rollout to succeed after the disk fills")
        runner.join(60)
    finally:
        fleet.stop()
    waves = journal.waves(rid)
    assert [w.state for w in waves] == ["passed"] * 3
    assert all(not str((w.result or {}).get("reason", "")).startswith("gate timeout") for w in waves)
    assert {t.digest("scoring") for t in hub.iter_devices()} == {env.v2_digest}


def test_an_idle_fleet_stays_online(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 10, repo_name)
    base = env.fleet()
    spec = dataclasses.replace(base.spec, heartbeat_seconds=1.0)
    base.stop()
    fleet = SimFleetThread(spec, env.config.hub_path(), env.config).start()
    watcher = LocalHub(env.config.hub_path(), module="scoring", stale_after=5.0)  # 300 s / 60 s, scaled
    try:
        wait_for(lambda: len(list(watcher.iter_devices())) == 10, 30, "devices to register")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            offline = [t.device_id for t in watcher.iter_devices() if not t.connected]
            assert not offline, f"idle devices went offline: {offline}"
            time.sleep(1.0)
    finally:
        fleet.stop()
        watcher.close()


def test_read_commands_do_not_wait_for_a_writer(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 3, repo_name)
    fleet = env.fleet()
    try:
        wait_for(lambda: len(list(env.hub().iter_devices())) == 3, 30, "devices to register")
    finally:
        fleet.stop()
    env.journal().close()
    held, stop = threading.Event(), threading.Event()

    def hold(path: Path) -> None:
        conn = sqlite3.connect(str(path), timeout=5, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        stop.wait(120)
        conn.execute("ROLLBACK")
        conn.close()

    lockers = [threading.Thread(target=hold, args=(p,), daemon=True)
               for p in (env.config.hub_path(), env.config.state_path() / "rollouts.sqlite")]
    for t in lockers:
        held.clear()
        t.start()
        held.wait(10)
    try:
        for argv in (["groups", "--json"], ["devices", "--group", GROUP, "--json"], ["rollout", "list", "--json"],
                     ["deployments", "--json"]):
            start = time.monotonic()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["-c", str(env.config_path), *argv])
            # a write would wait the 30 s busy timeout and then fail: both are caught here
            assert code == 0 and time.monotonic() - start < 15, (argv, out.getvalue())
    finally:
        stop.set()
