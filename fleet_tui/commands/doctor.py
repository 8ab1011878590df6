"""`fleet-tui doctor`: is this machine ready to roll out? One line per check.

Checks, in the order an operator would debug them: the config (where it came from), the
state directory (writable, free space), the rollout journal, each registry the config names
(reachable, credentials accepted — a real token round trip for the first repository —
and its clock), the hub (reachable, the rights fleet-tui needs, its clock) and the simulated
fleet (running or not, when `[sim]` is configured).

Invariants: a check that fails says what failed and what to do in one line, never a secret
(messages pass through the same redaction as every error); a failing check never stops the
ones after it; exit status 1 when any check fails, 0 otherwise (`warn` does not fail).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable

from fleet_tui.commands.output import add_json_flag, command, print_json
from fleet_tui.commands.sim import paths
from fleet_tui.detach import running_pid
from fleet_tui.errors import FleetError
from fleet_tui.hub import open_hub
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.rollout.journal import NEEDS_ENGINE, TERMINAL, Journal
from fleet_tui.rollout.journal_db import SCHEMA_VERSION
from fleet_tui.secrets import redact
from fleet_tui.units import plural

SKEW_WARN_S = 30.0  # rollouts fence reports by the hub's clock; windows read ours
FREE_WARN_BYTES = 200 * 10**6


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail
    detail: str


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="check config, state dir, registries, hub and simulated fleet; one line each",
                              description="Check that this machine can roll out: config, state directory, rollout "
                              "journal, every registry the config names (with a credential round trip), the hub (and "
                              "its rights and clock), the simulated fleet. Exit 1 when a check fails.")
    add_json_flag(p)
    p.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace, ctx: Any) -> int:
    config = ctx.config
    checks: list[Check] = []
    for name, probe in (("config", _config), ("state dir", _state_dir), ("journal", _journal)):
        checks.append(_run(name, probe, config))
    for host, repo in _registries(config):
        checks.append(_run(f"registry {host}", lambda c, h=host, r=repo: _registry(c, h, r), config))
    checks.append(_run(f"hub ({config.hub.kind})", _hub, config))
    if config.sim is not None:
        checks.append(_run("sim fleet", _sim, config))
    failed = any(c.status == "fail" for c in checks)
    if args.json:
        print_json({"ok": not failed, "checks": [c.__dict__ for c in checks]})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}")
    return 1 if failed else 0


def _run(name: str, probe: Callable[[Any], tuple[str, str]], config: Any) -> Check:
    try:
        status, detail = probe(config)
    except FleetError as exc:
        status, detail = "fail", str(exc)
    except Exception as exc:  # noqa: BLE001 - a check reports, it never crashes the others
        status, detail = "fail", f"{type(exc).__name__}: {exc}"
    return Check(name, status, redact(" ".join(detail.split()))[:300])


def _config(config: Any) -> tuple[str, str]:
    return "ok", f"{config.source or 'built-in defaults (no config file)'}; hub {config.hub.kind}, waves {','.join(config.rollout.waves)}"


def _state_dir(config: Any) -> tuple[str, str]:
    try:
        path = config.state_path()
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-") as f:
            f.write(b"ok")
            f.flush()
    except OSError as exc:
        return "fail", f"{config.state_dir or 'the default state dir'} is not writable ({exc.strerror}); set state_dir to a writable directory"
    free = shutil.disk_usage(path).free
    if free < FREE_WARN_BYTES:
        return "warn", f"{path}: only {free // 10**6} MB free; the journal and layer index need room"
    return "ok", f"{path}: writable, {free // 10**9} GB free"


def _journal(config: Any) -> tuple[str, str]:
    journal = Journal.for_config(config)  # PostgreSQL: connects and checks the schema version
    try:
        rows = journal.list_rollouts()
        live = [r for r in rows if r.state not in TERMINAL]
        stopped = [r.id for r in live if r.state in NEEDS_ENGINE and not journal.engine_lock(r.id).held_elsewhere()]
        where = f"{journal.where} (PostgreSQL, schema {SCHEMA_VERSION}): " if journal.shared else ""
    finally:
        journal.close()
    text = where + f"{plural(len(rows), 'rollout')}, {len(live)} unfinished" + (
        f" ({', '.join(r.id for r in live[:3])})" if live else "")
    if stopped:  # running or pending with no engine: nothing advances them (a Ctrl-C'd foreground start)
        return "warn", (f"{text}; no engine runs {', '.join(stopped[:3])}{' …' if len(stopped) > 3 else ''}: "
                        f"`{command(config, 'rollout', 'resume', stopped[0])}` continues it")
    return "ok", text


def _registries(config: Any) -> list[tuple[str, str]]:
    """(host, a repository on it) for every registry the config names (oci: layouts skipped)."""
    out: dict[str, str] = {}
    for ref in (config.registry.default, *config.registry.repositories):
        if ref and not ref.startswith("oci:"):
            parsed = parse_reference(ref if "/" in ref else f"{ref}/probe")
            out.setdefault(parsed.registry, parsed.repository if "/" in ref else "")
    for host in config.registry.auth:
        out.setdefault(host, "")
    return sorted(out.items())


def _registry(config: Any, host: str, repo: str) -> tuple[str, str]:
    client = RegistryClient(host, config)
    try:
        resp = client.t.request("GET", "/v2/", "")
        if resp.status_code == 401 and not repo:
            return "warn", "reachable; it asks for credentials but the config names no repository to try them on"
        if resp.status_code not in (200, 401):
            raise client.t.fail(resp, "ping /v2/")
        skew = _skew(resp.headers.get("date"))
        detail = "reachable"
        if repo:
            tags = client.list_tags(repo)
            detail += f", credentials accepted ({repo}: {plural(len(tags), 'tag')})"
    finally:
        client.close()
    if skew is not None and abs(skew) > SKEW_WARN_S:
        return "warn", f"{detail}; its clock is {skew:+.0f}s from ours — sync this machine's clock (NTP)"
    return "ok", detail


def _hub(config: Any) -> tuple[str, str]:
    if config.hub.kind == "local" and not config.hub_path().exists():
        return "warn", f"no local hub yet at {config.hub_path()} (fleet-tui sim up or hub seed creates it)"
    hub = open_hub(config)
    try:
        groups = hub.group_summaries(config.hub.module)
        deployments = hub.list_deployments()
        skew = getattr(getattr(hub, "caller", None), "skew", 0.0)
    finally:
        hub.close()
    devices = sum(g.devices for g in groups)
    detail = (f"{plural(devices, 'device')} in {plural(len([g for g in groups if g.name]), 'group')}, {plural(len(deployments), 'deployment')} "
              "readable")
    if abs(skew) > SKEW_WARN_S:
        return "warn", f"{detail}; its clock is {skew:+.0f}s from ours — sync this machine's clock (NTP)"
    return "ok", detail


def _sim(config: Any) -> tuple[str, str]:
    pid = running_pid(paths(config)[0])
    if pid is None:
        return "warn", "not running (fleet-tui sim up starts it)"
    return "ok", f"running (pid {pid})"


def _skew(date: str | None) -> float | None:
    if not date:
        return None
    try:
        return parsedate_to_datetime(date).timestamp() + 0.5 - time.time()
    except (TypeError, ValueError):
        return None
