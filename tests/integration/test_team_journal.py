"""Team mode on a real PostgreSQL server: two "hosts" (two state dirs, two host names, one shared
journal database, one hub) running real engine processes.

- kill -9 of the holding engine at several points, then takeover from the other host once its
  lease lapsed → the rollout completes, every device told once, every wave judged once;
- 20 concurrent `rollout start` from the two hosts → exactly one rollout; the others get one line
  naming it;
- a superseded engine's write is refused by the fencing token; an engine cut off from the
  database for longer than its lease stops writing, the other host takes over, and the old one
  exits with a clear message when the link comes back;
- the database restarting mid-wave: the engine waits and carries on, nothing lost.
Each prints a `[team] …` line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet_tui.config import load_config
from fleet_tui.errors import RemoteError
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.lease import Superseded
from tests.support.postgres import PASSWORD
from tests.support.rollout_env import FAST_SPEED, GROUP, SLOW_SPEED, make_env, pid_alive, wait_for
from tests.support.uplink import Uplink

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

LEASE = 6.0  # long enough that a loaded CI machine still sees it held right after the kill
ROOT = Path(__file__).resolve().parents[2]


class Host:
    def __init__(self, name: str, config_path: Path) -> None:
        self.name, self.config_path = name, config_path

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(self.config_path), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))

    def journal(self) -> Journal:
        return Journal.for_config(load_config(self.config_path))


def two_hosts(tmp_path, registry, postgres, monkeypatch, repo, n=40, url_a: str = ""):
    """Host A's env (make_env) and host B: its own state dir and host name, the same hub and journal."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres.create_database()
    subprocess.run([sys.executable, "-m", "fleet_tui.cli", "journal", "init"], check=True, cwd=str(ROOT),
                   env={**os.environ, "FLEET_TUI_JOURNAL__URL": url}, capture_output=True)
    journal = f'[journal]\nurl = "{url_a or url}"\nlease = {LEASE}\nhost = "host-a"\n'
    (tmp_path / "a").mkdir(exist_ok=True)
    env = make_env(tmp_path / "a", registry, n, repo, rollout='waves = "1,10%,50%,100%"', extra=journal)
    text = env.config_path.read_text().replace(str(tmp_path / "a" / "state"), str(tmp_path / "b" / "state"))
    text = text.replace('host = "host-a"', 'host = "host-b"').replace(url_a or url, url)
    (tmp_path / "b").mkdir(exist_ok=True)
    path_b = tmp_path / "b" / "config.toml"
    path_b.write_text(text)
    return env, Host("host-a", env.config_path), Host("host-b", path_b)


def told_once(journal: Journal, rid: str) -> None:
    events = journal.events(rid)
    for wave in range(len(journal.waves(rid))):
        told = [d for e in events if e.kind == "target" and e.phase == "intent" and e.wave == wave
                for d in (e.data.get("devices") or [])]
        assert len(told) == len(set(told)) == journal.waves(rid)[wave].size, f"wave {wave + 1}: {told}"
        assert [e.kind for e in events if e.wave == wave].count("judge") == 1


def holder_pid(journal: Journal, rid: str, host: str) -> int:
    h = journal.holder(rid)
    return h["pid"] if h and h["host"] == host else 0


def test_kill_the_holder_then_the_other_host_takes_over(tmp_path, registry, postgres, monkeypatch, repo_name, capsys):
    env, a, b = two_hosts(tmp_path, registry, postgres, monkeypatch, repo_name)
    fleet = env.fleet(speed=SLOW_SPEED)
    journal = a.journal()
    seen_by = {"host-a": journal, "host-b": b.journal()}  # each host judges a lease as that host
    takeovers = []
    try:
        out = a.cli("rollout", "start", env.v2, "--group", GROUP, "--detach", "--json")
        assert out.returncode == 0, out.stderr
        rid = json.loads(out.stdout)["id"]
        points = [lambda: journal.waves(rid)[0].started, lambda: journal.waves(rid)[1].started,
                  lambda: journal.waves(rid)[2].started]
        holder, other = a, b
        for i, point in enumerate(points):
            wait_for(point, 60, f"kill point {i + 1}")
            pid = wait_for(lambda: holder_pid(journal, rid, holder.name), 20, f"{holder.name}'s engine")
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(pid), 10, "the engine to die")
            early = other.cli("rollout", "resume", rid)  # the lease has not lapsed: it says who holds it
            assert early.returncode == 0 and holder.name in early.stdout and "lease" in early.stdout, early
            t0 = time.monotonic()
            wait_for(lambda: seen_by[other.name].holder(rid) is None, LEASE + 5, "the lease to lapse")
            resumed = other.cli("rollout", "resume", rid)
            assert resumed.returncode == 0, resumed.stderr
            wait_for(lambda: holder_pid(journal, rid, other.name), 20, f"{other.name} to hold it ({resumed.stdout})")
            takeovers.append(round(time.monotonic() - t0, 1))
            holder, other = other, holder
        fleet.set_speed(FAST_SPEED)
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 90, "the rollout to succeed")
        status = json.loads(b.cli("rollout", "status", rid, "--json").stdout)
    finally:
        fleet.stop()
        env.kill_engines()
    told_once(journal, rid)
    assert {d["state"] for d in status["devices"].values()} == {"running"}
    # the database password: never in a log, a state file, the journal's rows or the status
    for f in [*(tmp_path / "a").rglob("*"), *(tmp_path / "b").rglob("*")]:
        if f.is_file() and f.suffix in (".log", ".toml", ".json", ""):
            assert PASSWORD not in f.read_text(errors="replace"), f
    rows = journal.conn.execute("SELECT string_agg(data, ' ') FROM events").fetchone()[0]
    specs = journal.conn.execute("SELECT string_agg(spec, ' ') FROM rollouts").fetchone()[0]
    assert PASSWORD not in rows + specs + json.dumps(status)
    engines = [e.data.get("pid") for e in journal.events(rid, "engine")]  # one engine start per kill, plus the first
    assert len(engines) == 1 + len(points)
    journal.close()
    seen_by["host-b"].close()
    with capsys.disabled():
        print(f"\n[team] takeover: {len(points)} kill -9 of the holder, taken over by the other host after "
              f"{takeovers} s; every device told once, each wave judged once")


def test_twenty_concurrent_starts_from_two_hosts_make_one_rollout(tmp_path, registry, postgres, monkeypatch,
                                                                   repo_name, capsys):
    env, a, b = two_hosts(tmp_path, registry, postgres, monkeypatch, repo_name, n=10)
    fleet = env.fleet()
    try:
        wait_for(lambda: len(list(env.hub().iter_devices())) == 10, what="the fleet registered")
        procs = [subprocess.Popen([sys.executable, "-m", "fleet_tui.cli", "-c", str(h.config_path), "rollout", "start",
                                   env.v2, "--group", GROUP, "--detach", "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=str(ROOT)) for h in [a, b] * 10]
        results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
        journal = a.journal()
        rollouts = journal.list_rollouts()
        journal.close()
    finally:
        fleet.stop()
        env.kill_engines()
    won = [r for r in results if r[0] == 0]
    assert len(rollouts) == 1 and len(won) == 1, results
    rid = rollouts[0].id
    refused = [r[2].strip() for r in results if r[0] != 0]
    assert all(rid in line and "already" in line and len(line.splitlines()) == 1 for line in refused), refused
    with capsys.disabled():
        print(f"\n[team] concurrent starts: 20 from 2 hosts → 1 rollout ({rid}), {len(refused)} refused naming it")


def test_a_superseded_engine_cannot_write(tmp_path, registry, postgres, monkeypatch, repo_name, capsys):
    env, a, b = two_hosts(tmp_path, registry, postgres, monkeypatch, repo_name, n=5)
    ja, jb = a.journal(), b.journal()
    rid = "r-fence"
    ja.create(rid, {"group": "fenced", "target": env.v2}, [1], [])
    lease_a = ja.engine_lock(rid).acquire()
    ja.record(rid, "note", "done", data={"by_engine": "a"})
    lease_a._stop.set()  # host A freezes: no renewal
    wait_for(lambda: jb.holder(rid) is None, LEASE + 5, "A's lease to lapse")
    lease_b = jb.engine_lock(rid).acquire()
    assert lease_b.token == lease_a.token + 1
    with pytest.raises(Superseded, match="taken over by the engine on host-b"):
        ja.record(rid, "note", "done", data={"by_engine": "a, after the takeover"})
    with pytest.raises(Superseded):
        ja.set_pid(rid, 1)
    jb.record(rid, "note", "done", data={"by_engine": "b"})
    notes = [e.data["by_engine"] for e in jb.events(rid, "note")]
    tokens = (lease_a.token, lease_b.token)
    lease_b.release()
    lease_a.release()
    ja.close()
    jb.close()
    assert notes == ["a", "b"]
    with capsys.disabled():
        print(f"\n[team] fencing: token {tokens[0]} → {tokens[1]}; the superseded engine's writes refused")


def test_cut_off_longer_than_its_lease_the_engine_stops_and_the_other_host_finishes(tmp_path, registry, postgres,
                                                                                     monkeypatch, repo_name, capsys):
    link = Uplink(f"{postgres.host}:{postgres.port}")  # host A reaches the database through a link we can cut
    db = postgres.create_database()
    via = db.replace(f"{postgres.host}:{postgres.port}", link.address)
    monkeypatch.setattr(postgres, "create_database", lambda: db)
    env, a, b = two_hosts(tmp_path, registry, postgres, monkeypatch, repo_name, url_a=via)
    assert load_config(a.config_path).journal.url == via and load_config(b.config_path).journal.url == db
    fleet = env.fleet(speed=SLOW_SPEED)
    journal = b.journal()
    try:
        out = a.cli("rollout", "start", env.v2, "--group", GROUP, "--detach", "--json")
        assert out.returncode == 0, out.stderr
        rid = json.loads(out.stdout)["id"]
        wait_for(lambda: journal.waves(rid)[1].started, 60, "wave 2")
        pid_a = holder_pid(journal, rid, "host-a")
        assert pid_a
        link.cut()
        wait_for(lambda: journal.holder(rid) is None, LEASE + 10, "A's lease to lapse")
        assert b.cli("rollout", "resume", rid).returncode == 0
        wait_for(lambda: holder_pid(journal, rid, "host-b"), 20, "host-b to hold it")
        link.restore()
        wait_for(lambda: not pid_alive(pid_a), 60, "host A's engine to exit")
        fleet.set_speed(FAST_SPEED)
        wait_for(lambda: journal.rollout(rid).state == "succeeded", 90, "the rollout to succeed")
    finally:
        fleet.stop()
        env.kill_engines()
        link.close()
    log = (tmp_path / "a" / "state" / "rollouts" / f"{rid}.log").read_text()
    assert "taken over by the engine on host-b" in log, log[-2000:]
    told_once(journal, rid)
    journal.close()
    with capsys.disabled():
        print("\n[team] network cut longer than the lease: host A stopped writing, host B took over and finished, "
              "host A exited saying so")


def test_the_database_restarting_mid_wave_loses_nothing(tmp_path, registry, postgres, monkeypatch, repo_name, capsys):
    env, a, b = two_hosts(tmp_path, registry, postgres, monkeypatch, repo_name)
    fleet = env.fleet(speed=SLOW_SPEED)
    journal = a.journal()
    try:
        out = a.cli("rollout", "start", env.v2, "--group", GROUP, "--detach", "--json")
        rid = json.loads(out.stdout)["id"]
        wait_for(lambda: journal.waves(rid)[2].started, 60, "wave 3")
        t0 = time.monotonic()
        postgres.restart()
        down = round(time.monotonic() - t0, 1)
        fleet.set_speed(FAST_SPEED)

        def succeeded() -> bool:
            try:
                return journal.rollout(rid).state == "succeeded"
            except RemoteError:  # this test's own connection was cut by the restart: the next call reconnects
                return False

        wait_for(succeeded, 120, "the rollout to succeed")
    finally:
        fleet.stop()
        env.kill_engines()
    told_once(journal, rid)
    assert len(journal.events(rid, "engine")) == 1, "the same engine carried on"
    log = (tmp_path / "a" / "state" / "rollouts" / f"{rid}.log").read_text()
    assert "retrying" in log, "the engine met the restart"
    journal.close()
    with capsys.disabled():
        print(f"\n[team] database restart mid-wave ({down} s down): the engine waited and carried on")
