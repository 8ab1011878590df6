"""Azure IoT Hub at fleet scale: hub calls fleet-tui makes, and what they cost in time at the
tier's documented throttles (S1 × 1 unit by default).

The real azure-iot-hub SDK talks to the loopback fake hub (tests/support/fake_iothub.py) holding
`--devices` IoT Edge devices in one group; the fake's own throttling is off so the run is
quick, and every request is recorded and classed as the hub classes it. Devices are emulated
in-process (their agents "report" straight into the fake's state, costing no hub call of
fleet-tui's). Measured: (1) the groups view (`group_summaries`); (2) a 4-wave rollout
(`1,10%,50%,100%`) created and run to the end by the engine, fold included.
Modelled time = Σ calls of a class / the class's rate, plus the twin-update jobs' device
operations at the tier's rate (S1: 10/s) — the hub's, not the client's, pace.

Run: python bench/azure_calls.py [--devices 100000] [--tier S1] [--units 1]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any  # noqa: E402

from fleet_tui.config import Config  # noqa: E402
from fleet_tui.hub.azure import AzureHub  # noqa: E402
from fleet_tui.hub.azure_retry import HubLimits  # noqa: E402
from fleet_tui.hub.shards import shard_of  # noqa: E402
from fleet_tui.oci.registry import RegistryClient  # noqa: E402
from fleet_tui.rollout.create import create_rollout  # noqa: E402
from fleet_tui.rollout.engine import Engine  # noqa: E402
from fleet_tui.rollout.journal import Journal  # noqa: E402
from fleet_tui.rollout.policy import Policy  # noqa: E402
from fleet_tui.secrets import Secret  # noqa: E402
from tests.support.edge_twins import deploy, module  # noqa: E402
from tests.support.fake_edge import now_utc  # noqa: E402
from tests.support.fake_iothub import FakeIotHub, throttle_class  # noqa: E402
from tests.support.fake_throttle import PER_MINUTE, rates  # noqa: E402
from tests.support.images import Entry, push_layers  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402


def images(work: Path) -> tuple[Any, str, str]:
    """A real registry holding two tiny releases; their pinned refs."""
    registry = RegistryServer(work / "registry").start()
    client = RegistryClient(registry.host, Config())
    refs = []
    for release in (1, 2):
        digest = push_layers(client, "bench/scoring", str(release), [[Entry("app", data=b"model %d" % release)]])
        refs.append(f"{registry.host}/bench/scoring@{digest}")
    client.close()
    return registry, refs[0], refs[1]


def populate(fake: FakeIotHub, n: int, v1: str, shards: bool = False) -> None:
    """`shards`: enrolled with their stable shard tag (fleet_tui.hub.shards), as condition waves need."""
    with fake.lock:
        for i in range(n):
            device_id = f"van-{i:07d}"
            tags = {"fleetGroup": "vans", **({"fleetShard": shard_of(device_id)} if shards else {})}
            fake.devices[device_id] = {"deviceId": device_id, "etag": "e", "version": 2, "tags": tags,
                                       "capabilities": {"iotEdge": True}, "connectionState": "Disconnected",
                                       "properties": {"desired": {}, "reported": {}}}
            for module_id in ("$edgeAgent", "$edgeHub"):
                fake.modules[(device_id, module_id)] = {"deviceId": device_id, "moduleId": module_id, "etag": "e",
                                                        "connectionState": "Connected" if module_id == "$edgeHub" else "Disconnected",
                                                        "properties": {"desired": {"$version": 1}, "reported": {}}}
            fake.online.add(device_id)
    deploy(fake, "base", "tags.fleetGroup = 'vans'", 1, {"scoring": module(v1)})


def emulate_agents(fake: FakeIotHub, stop: threading.Event) -> None:
    """Every agent runs what its desired state says, at once (no hub call)."""
    while not stop.wait(0.2):
        with fake.lock:
            for (device_id, module_id), twin in fake.modules.items():
                if module_id != "$edgeAgent":
                    continue
                desired = twin["properties"].get("desired") or {}
                reported = twin["properties"].setdefault("reported", {})
                if reported.get("lastDesiredVersion") == desired.get("$version"):
                    continue
                image = ((desired.get("modules") or {}).get("scoring") or {}).get("settings", {}).get("image", "")
                reported.update({"lastDesiredVersion": desired.get("$version"), "lastDesiredStatus": {"code": 200},
                                 "modules": {"scoring": {"runtimeStatus": "running", "settings": {"image": image}}},
                                 "$metadata": {"$lastUpdated": now_utc()}})


def classes(fake: FakeIotHub, since: int) -> collections.Counter:
    """Calls per throttle class; polls of a running job are counted apart (`job_polls`): they
    wait *while* the hub works through the job, so they add no time of their own."""
    out: collections.Counter = collections.Counter()
    for r in fake.requests[since:]:
        kind = throttle_class(r.method, r.path) or "other"
        out["job_polls" if kind == "jobs" and r.method == "GET" else kind] += 1
    return out


def modelled(counts: collections.Counter, device_ops: int, tier: str, units: int) -> float:
    r = rates(tier, units)
    seconds = sum(n / (r[k] / 60 if k in PER_MINUTE else r[k]) for k, n in counts.items() if k in r)
    return seconds + device_ops / r["job_device"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--tier", default="S1")
    ap.add_argument("--units", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-azure-bench-"))
    registry, v1, v2 = images(work)
    fake = FakeIotHub(work, throttle=False).start()
    fake.evaluation_delay = 0.0
    fake.metrics_interval = 300.0  # the real hub's schedule; the fake's 1 s default costs minutes at 100k
    fake.throttle.rates["job_device"] = 10**9  # jobs finish at once here; their S1 pace is modelled below
    t0 = time.monotonic()
    populate(fake, args.devices, v1)
    print(f"fake hub with {args.devices:,} IoT Edge devices ready in {time.monotonic() - t0:.0f}s")
    fast = HubLimits(queries_per_s=1e6, config_writes_per_s=1e6, twin_updates_per_s=1e6, other_per_s=1e6,
                     burst=1e6, job_poll_interval=0.05)
    hub = AzureHub(Secret(fake.connection_string), limits=fast, ca_bundle=str(fake.cert))
    stop = threading.Event()
    threading.Thread(target=emulate_agents, args=(fake, stop), daemon=True).start()

    mark = len(fake.requests)
    t0 = time.monotonic()
    groups = hub.group_summaries("scoring")
    view = classes(fake, mark)
    print(f"groups view of {sum(g.devices for g in groups):,} devices: {view['query']} query calls, "
          f"{view['config']} configuration calls, {sum(view.values())} calls in all "
          f"({time.monotonic() - t0:.1f}s here) → modelled {modelled(view, 0, args.tier, args.units):.0f}s "
          f"at {args.tier}×{args.units} (target ≤ 5 queries, < 60 s)")

    journal = Journal(work / "rollouts.sqlite")
    config = Config(state_dir=str(work / "state"))
    mark = len(fake.requests)
    t0 = time.monotonic()
    policy = Policy(waves=("1", "10%", "50%", "100%"), poll=0.5, gate_timeout=3600, min_finished=1)
    rid = create_rollout(config, hub, journal, v2, "vans", policy)
    engine = Engine(journal, hub, rid, log=lambda line: None)
    while not engine.step():
        time.sleep(policy.poll)
    stop.set()
    counts = classes(fake, mark)
    device_ops = sum(len(j["_targets"]) for j in fake.jobs.values())
    print(f"4-wave rollout of {args.devices:,} devices ({journal.rollout(rid).state}, {time.monotonic() - t0:.0f}s here): "
          f"{counts['query']} queries, {counts['config']} configuration calls, {counts['jobs']} jobs "
          f"(+{counts['job_polls']} polls), "
          f"{counts['twin_read'] + counts['twin_update']} twin calls, {device_ops:,} job device operations "
          f"→ modelled {modelled(counts, device_ops, args.tier, args.units) / 3600:.1f} h at {args.tier}×{args.units} "
          f"(of which tagging jobs {device_ops / rates(args.tier, args.units)['job_device'] / 3600:.1f} h)")
    hub.close()
    fake.stop()
    registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
