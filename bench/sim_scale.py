"""Simulated fleet at scale: 10,000 devices pull a 5 KB rebased layer from a real registry.

Starts its own docker-registry on loopback (tests/support/registry.py), pushes v1 (base +
deps + app) and v2 rebased onto it (v1's blobs + one new ~5 KB layer), registers N
simulated devices running v1 in a temporary local hub, deploys v2 and times until every
device reports `running` v2 — the whole console-side process: device tasks, one shared
connection pool, batched hub polling and reporting. Links are fast and time is sped up,
so the figures are the console's own cost, not the simulated network's.

Baseline in the same run: the naive way — one HTTP client (and so one connection) per
device, fetching the same blob — on `--baseline` devices, extrapolated linearly to N.
It does no hub work at all, so the ratio understates what sharing saves.

Usage: python bench/sim_scale.py [--devices 10000] [--baseline 500] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from fleet_tui.config import Config  # noqa: E402
from fleet_tui.devices.linkmodel import LinkProfile  # noqa: E402
from fleet_tui.devices.simconfig import GroupSpec, SimSpec  # noqa: E402
from fleet_tui.devices.simfleet import SimFleet  # noqa: E402
from fleet_tui.hub.local import LocalHub  # noqa: E402
from fleet_tui.hub.protocol import Deployment, ModuleSpec  # noqa: E402
from fleet_tui.oci.build import ImageBuilder  # noqa: E402
from fleet_tui.oci.digest import DigestVerifier  # noqa: E402
from fleet_tui.oci.layer import files_layer  # noqa: E402
from fleet_tui.oci.registry import RegistryClient  # noqa: E402
from tests.support.images import noise  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

REPO = "bench/sim-scale"


def push_release(host: str) -> tuple[str, str, tuple[str, int]]:
    client = RegistryClient(host, Config())
    base = files_layer({"etc/os-release": "ID=bench\n"})
    deps = files_layer({"usr/lib/deps.so": noise(60_000, 1)})
    refs = []
    new = None
    for tag, model in (("1", noise(4000, 2)), ("2", noise(5000, 3))):
        app = files_layer({"app/model.pkl": model})
        b = ImageBuilder().add_layer(base, "ADD base").add_layer(deps, "RUN pip install").add_layer(app, "COPY model")
        refs.append(f"{host}/{REPO}@{b.push(client, REPO, tag)}")
        new = (app.digest, app.size)
    client.close()
    return refs[0], refs[1], new  # type: ignore[return-value]


def registry_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks


async def shared_fleet(v1: str, v2: str, devices: int, connections: int, hub: LocalHub) -> dict:
    link = LinkProfile("fast", bandwidth=1e12, latency=0.0)
    spec = SimSpec(v1, (GroupSpec("vans", devices, "fast"),), {"fast": link}, seed=1, speed=1e6,
                   poll_seconds=2.0, report_hz=4.0, apply_seconds=0.0, connections=connections)
    fleet = SimFleet(spec, hub, Config())
    t0, c0 = time.perf_counter(), time.process_time()
    await fleet.start()
    t1, c1 = time.perf_counter(), time.process_time()
    hub.create_deployment(Deployment("release-2", "*", 10, {"scoring": ModuleSpec("scoring", v2)}))
    await fleet.poll()
    done = await fleet.wait(lambda f: f.all_settled(), timeout=900, every=1.0)
    await fleet.flush()
    t2, c2 = time.perf_counter(), time.process_time()
    counts, requests = fleet.counts(), fleet.source.requests
    await fleet.stop()
    return {"start_wall": t1 - t0, "start_cpu": c1 - c0, "wall": t2 - t1, "cpu": c2 - c1,
            "done": done, "counts": counts, "requests": requests}


async def naive_per_device_clients(host: str, digest: str, size: int, devices: int) -> dict:
    """Baseline: each device its own AsyncClient (own connection), fetch + verify, close."""

    async def device(i: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=60) as client:
            resp = await client.get(f"/v2/{REPO}/blobs/{digest}", headers={"User-Agent": f"naive/{i}"})
            verifier = DigestVerifier(digest, size)
            verifier.update(resp.content)
            verifier.finish()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(device(i) for i in range(devices)))
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--baseline", type=int, default=500)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RegistryServer(Path(tmp) / "registry").start()
        try:
            v1, v2, (digest, size) = push_release(server.host)
            hub = LocalHub(Path(tmp) / "hub.sqlite")
            reg0 = registry_cpu(server.proc.pid)  # type: ignore[union-attr]
            mark = server.mark()
            ours = asyncio.run(shared_fleet(v1, v2, args.devices, args.connections, hub))
            reg_cpu = registry_cpu(server.proc.pid) - reg0  # type: ignore[union-attr]
            served = server.served_bytes(mark, agent="fleet-sim/")
            hub.close()
            naive = asyncio.run(naive_per_device_clients(server.host, digest, size, args.baseline))
        finally:
            server.stop()
    n, k = args.devices, args.devices / 1000
    scale = n / args.baseline
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devices: {n:,}   rebased layer: {size:,} B   pool: {args.connections} connections   2 cores")
    print(f"start (register {n:,} devices in the hub, load v1, start tasks): {ours['start_wall']:.2f} s wall, {ours['start_cpu']:.2f} s CPU")
    print(f"rollout to v2 until all report running: {ours['wall']:.2f} s wall, {ours['cpu']:.2f} s CPU"
          f"  → {ours['cpu'] / k:.2f} CPU s per 1,000 devices  (all done: {ours['done']}, {ours['counts']})")
    print(f"  registry: {ours['requests']:,} blob GETs, {served:,} B served to simulated devices "
          f"({served / n:,.0f} B each), registry CPU {reg_cpu:.2f} s")
    print(f"baseline, one client per device, {args.baseline} devices: {naive['wall']:.2f} s wall, {naive['cpu']:.2f} s CPU"
          f"  → extrapolated to {n:,}: {naive['wall'] * scale:.1f} s wall, {naive['cpu'] * scale:.1f} s CPU"
          f" ({naive['cpu'] / args.baseline * 1000:.2f} CPU s per 1,000)")
    print(f"ratio (baseline / shared pool, CPU per device): {naive['cpu'] / args.baseline / (ours['cpu'] / n):.1f}x;"
          f" wall: {naive['wall'] * scale / ours['wall']:.1f}x   peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
