"""Text that hub users and devices choose never reaches the operator's terminal raw.

A group named with an OSC "set title" sequence, a device that reports an error text with
OSC 52 (clipboard), a bidi override and Rich markup, and a reported image string with a
CSI "clear screen": every CLI command that shows them (as a real subprocess, bytes
captured) and the console (a real `fleet-tui console` on a pseudo-terminal, every byte it
writes captured while the operator walks Fleet → Devices → Device) show them escaped
(`\\x1b`), never as the sequence itself. `--json` keeps the exact strings.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from fleet_tui.hub.protocol import ModuleReport
from fleet_tui.rollout.create import create_rollout
from fleet_tui.rollout.engine import Engine
from fleet_tui.rollout.policy import Policy
from tests.support.rollout_env import make_env

pytestmark = pytest.mark.integration

GROUP = "\x1b]2;pwned\x07vans"
ERROR = "pull failed \x1b]52;c;cm0gLXJmIC8=\x07 \u202eexe.txt [red]boom[/] [/]"
IMAGE = "evil\x1b[2J\x1b[Hregistry/app:1"
RAW = ("\x1b]2;pwned", "\x1b]52;", "\x1b[2J", "\u202e")  # what must never be written as is
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def hostile(tmp_path, registry, repo_name):
    env = make_env(tmp_path, registry, 0, repo_name)
    hub = env.hub()
    ids = [f"h-{i:02d}" for i in range(4)]
    hub.register_devices((d, {"fleetGroup": GROUP}) for d in ids)
    digest = env.v1_digest
    hub.report_many((d, {"scoring": ModuleReport("scoring", env.v1, digest, "running")}, True) for d in ids)
    journal = env.journal()
    rid = create_rollout(env.config, hub, journal, env.v2, GROUP, Policy(waves=("1", "100%"), poll=0.05))
    engine = Engine(journal, hub, rid, log=lambda line: None)
    engine.step()  # deployments
    engine.step()  # the canary is tagged
    canary = next(a.device_id for a in journal.assignments(rid) if a.wave == 0)
    hub.report(canary, {"scoring": ModuleReport("scoring", IMAGE, env.v2_digest, "failed", 7, ERROR)})
    hub.close()
    journal.close()
    return env, rid, canary


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleet_tui.cli", "-c", str(env.config_path), *args],
                          capture_output=True, timeout=120, cwd=ROOT)


def assert_no_raw(data: bytes, where: str) -> None:
    text = data.decode("utf-8", "replace")
    for seq in RAW:
        assert seq not in text, f"{where} wrote {seq!r} raw"


def test_cli_shows_hostile_hub_text_escaped_and_json_keeps_it(hostile):
    env, rid, canary = hostile
    commands = [["groups"], ["devices"], ["devices", "--group", GROUP], ["devices", "--state", "failed"],
                ["rollout", "list"], ["rollout", "status", rid, "--devices"], ["deployments"],
                ["preview", env.v2, "--group", GROUP], ["devices", "--group", GROUP + "-missing"]]
    for argv in commands:
        proc = run(env, *argv)
        assert proc.returncode in (0, 1, 3, 4), (argv, proc.stderr)
        assert_no_raw(proc.stdout + proc.stderr, " ".join(argv))
        assert b"Traceback" not in proc.stderr
    shown = run(env, "groups").stdout.decode()
    assert "\\x1b]2;pwned\\x07vans" in shown  # visible, not dropped: the operator sees what is there
    missing = run(env, "devices", "--group", GROUP + "-missing").stderr.decode()
    assert missing.count("\n") == 1 and "\\x1b]2;pwned" in missing
    groups = json.loads(run(env, "groups", "--json").stdout)
    assert GROUP in [g["name"] for g in groups["groups"]]
    devices = json.loads(run(env, "devices", "--group", GROUP, "--json").stdout)
    assert {d["image"] for d in devices["devices"] if d["id"] == canary} == {IMAGE}


def _read(fd: int, seconds: float) -> bytes:
    out, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_console_draws_hostile_hub_text_escaped(hostile):
    env, rid, canary = hostile
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real console on this pseudo-terminal
        os.chdir(ROOT)
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "36"})
        os.execv(sys.executable, [sys.executable, "-m", "fleet_tui.cli", "-c", str(env.config_path), "console"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    written = b""
    try:
        written += _read(fd, 8.0)  # Fleet screen: the hostile group is the only group
        steps = ((b"\r", 4.0), (b"/h-0\r", 2.0), (b"\r", 4.0), (b"\x1b", 1.5), (b"\x1b", 1.5), (b"\x1b", 1.5),
                 (b"r", 4.0))  # Fleet → Devices → filter → Device → back to Fleet → the group's Rollout
        for keys, wait in steps:
            os.write(fd, keys)
            written += _read(fd, wait)
        os.write(fd, b"q")
        written += _read(fd, 3.0)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    assert_no_raw(written, "the console")
    text = written.decode("utf-8", "replace")
    assert "\\x1b]2;pwned" in text  # the group, drawn visibly on the Fleet screen
    assert "\\x1b]52;" in text or "\\x1b[2J" in text  # the device's error or image, on the Devices/Device screens
    assert "Rollout" in text and rid in text  # the Rollout screen was drawn too (its title names the group)
