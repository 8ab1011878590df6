"""Simulated devices against the real registry and a local hub: rebased updates fetch only
the new layer, a cut blob resumes with Range, seeds reproduce, failures are rehearsable,
and a whole fleet shares one small connection pool."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from fleet_tui.config import Config
from fleet_tui.devices.blobsource import RegistrySource
from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.devices.simconfig import FailureRule, GroupSpec, SimSpec
from fleet_tui.devices.simfleet import SimFleet
from fleet_tui.devices.simulated import FailureModel
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import files_layer
from fleet_tui.oci.registry import RegistryClient
from tests.support.images import noise
from tests.support.tcpproxy import CountingProxy

FAST = LinkProfile("fast", bandwidth=50_000_000, latency=0.001)


@pytest.fixture(scope="module")
def release(registry):
    """v1 (base + 200 KB deps + app) and v2 rebased onto it (same blobs + a new 5 KB app layer)."""
    client = RegistryClient(registry.host, Config())
    repo = "test/sim-fleet"
    base = files_layer({"etc/os-release": "ID=sim\n"})
    deps = files_layer({"usr/lib/deps.so": noise(200_000, 3)})
    out = {}
    for tag, model in (("1", noise(3000, 1)), ("2", noise(5000, 2)), ("3", noise(4000, 4))):
        b = ImageBuilder()
        for layer, step in ((base, "ADD base"), (deps, "RUN pip install"), (files_layer({"app/model.pkl": model}), "COPY model")):
            b.add_layer(layer, step)
        out[tag] = (f"{registry.host}/{repo}@{b.push(client, repo, tag)}", b)
    client.close()
    return out


def spec_for(image: str, devices: int, link: LinkProfile = FAST, **kw) -> SimSpec:
    base = dict(links={link.name: link}, seed=11, speed=1000.0, poll_seconds=0.05, report_hz=20.0,
                apply_seconds=0.5, chunk_bytes=64 * 1024, connections=8, prefix=kw.pop("prefix", "sim-"))
    base.update(kw)
    return SimSpec(image, (GroupSpec("vans", devices, link.name),), **base)


def deploy(hub: LocalHub, image: str, dep_id: str = "release-2", priority: int = 10) -> None:
    hub.create_deployment(Deployment(dep_id, "tags.fleetGroup = 'vans'", priority, {"scoring": ModuleSpec("scoring", image)}))


async def roll(spec: SimSpec, hub: LocalHub, target: str, source=None, trace: bool = False, timeout: float = 60) -> SimFleet:
    fleet = SimFleet(spec, hub, Config(), source=source, trace=trace)
    await fleet.start()
    deploy(hub, target)
    try:
        await fleet.poll()
        assert await fleet.wait(lambda f: f.all_settled(), timeout), fleet.counts()
        await fleet.flush()
    finally:
        await fleet.stop()
    return fleet


def test_rebased_update_fetches_only_the_new_layer(registry, release, tmp_path):
    (v1, _), (v2, b2) = release["1"], release["2"]
    hub = LocalHub(tmp_path / "hub.sqlite")
    mark = registry.mark()
    fleet = asyncio.run(roll(spec_for(v1, 20), hub, v2))
    new_layer = b2.layers[2][0]
    manifest, config = b2.manifest()
    expected = new_layer.size + len(manifest.to_bytes()) + len(config)
    for twin in hub.iter_devices():
        r = twin.reported["scoring"]
        assert (r.state, r.digest, r.bytes_downloaded) == ("running", v2.split("@")[1], expected)
        assert twin.connected is False  # the fleet stopped and said so
    served = registry.served_bytes(mark, agent="fleet-sim/")
    assert served == 20 * new_layer.size  # per device only the 5 KB layer; metadata once per fleet
    assert fleet.source.requests == 20
    hub.close()


def test_device_cut_off_mid_blob_resumes_and_fetches_each_byte_at_most_once_more(registry, release, tmp_path):
    """Holding only the base, a device needs the 200 KB deps layer; its link (100 KB/s)
    drops after 1 s of link time — mid-blob — for 5 s, then it resumes with Range."""
    (v1, b1), (v2, b2) = release["1"], release["2"]
    tunnel = LinkProfile("tunnel", bandwidth=100_000, latency=0.01, outages=((1.0, 5.0),))
    spec = spec_for(v1, 1, tunnel, speed=50.0)
    hub = LocalHub(tmp_path / "hub.sqlite")
    deps, base = b2.layers[1][0], b2.layers[0][0]

    async def scenario() -> SimFleet:
        fleet = SimFleet(spec, hub, Config(), trace=True)
        await fleet.start()
        device = next(iter(fleet.devices.values()))
        device.store.blobs = {base.digest}  # a fresh device: only the base layer
        mark = registry.mark()
        deploy(hub, v2)
        await fleet.poll()
        assert await fleet.wait(lambda f: f.all_settled(), 60)
        await fleet.stop()
        fleet.mark = mark  # type: ignore[attr-defined]
        return fleet

    fleet = asyncio.run(scenario())
    device = next(iter(fleet.devices.values()))
    assert device.state == "running" and device.digest == v2.split("@")[1]
    assert device.resumes == 1
    offline = [t for t in device.trace if t[0] == "offline"]
    assert len(offline) == 1 and 0 < offline[0][2] < deps.size  # cut mid-blob
    served = [a for a in registry.accesses(fleet.mark) if "fleet-sim/" in a.agent]
    deps_bytes = sum(a.bytes for a in served if a.path.endswith(deps.digest))
    assert all(a.status == 206 for a in served)
    assert deps.size < deps_bytes <= deps.size + spec.chunk_bytes
    assert device.fetched == sum(a.bytes for a in served)
    new_layer = b2.layers[2][0]
    manifest, config = b2.manifest()
    assert device.bytes == deps.size + new_layer.size + len(manifest.to_bytes()) + len(config)
    hub.close()


def test_same_seed_same_run_and_another_seed_differs(registry, release, tmp_path):
    (v1, _), (v2, b2) = release["1"], release["2"]
    flaky = LinkProfile("flaky", bandwidth=50_000, latency=0.05, offline_per_hour=1800.0, offline_seconds=2.0)
    base = release["2"][1].layers[0][0].digest

    def run(seed: int, name: str) -> dict:
        hub = LocalHub(tmp_path / f"{name}.sqlite")
        spec = spec_for(v1, 6, flaky, seed=seed, speed=200.0, chunk_bytes=16 * 1024)

        async def scenario() -> SimFleet:
            fleet = SimFleet(spec, hub, Config(), trace=True)
            await fleet.start()
            for d in fleet.devices.values():
                d.store.blobs = {base}  # each needs the 200 KB deps layer too
            deploy(hub, v2)
            await fleet.poll()
            assert await fleet.wait(lambda f: f.all_settled(), 60)
            await fleet.stop()
            return fleet

        fleet = asyncio.run(scenario())
        hub.close()
        # idle outages fall wherever fleet time is when the rollout arrives; the download is exact
        return {d.id: ([t for t in d.trace if t[0] != "idle-offline"], d.bytes, d.fetched, d.resumes)
                for d in fleet.devices.values()}

    first, again, other = run(5, "a"), run(5, "b"), run(6, "c")
    assert first == again
    assert any(resumes for _, _, _, resumes in first.values())  # the links really were cut
    assert first != other


def test_failure_model_rehearses_a_crashing_release(registry, release, tmp_path):
    (v1, _), (v3, _) = release["1"], release["3"]
    digest3 = v3.split("@")[1]
    rules = (FailureRule(image=digest3, fraction=0.25), FailureRule(image=digest3, devices=("sim-vans-00007",)))
    spec = spec_for(v1, 40, failures=rules)
    hub = LocalHub(tmp_path / "hub.sqlite")
    asyncio.run(roll(spec, hub, v3))
    model = FailureModel(rules, spec.seed)
    expected = {d for d, _ in spec.device_ids() if model.crashes(d, v3)}
    failed = {t.device_id for t in hub.iter_devices() if t.reported["scoring"].state == "failed"}
    assert failed == expected and "sim-vans-00007" in failed
    assert 5 <= len(failed) <= 18
    for twin in hub.iter_devices():
        r = twin.reported["scoring"]
        if twin.device_id in failed:
            assert r.digest == v1.split("@")[1] and "exited on start" in r.error and digest3 in r.error
        else:
            assert (r.state, r.digest) == ("running", digest3)
    other = FailureModel(rules, spec.seed + 1)
    assert {d for d, _ in spec.device_ids() if other.crashes(d, v3)} != expected
    hub.close()


def test_many_devices_share_one_small_pool(registry, release, tmp_path):
    (v1, _), (v2, b2) = release["1"], release["2"]
    hub = LocalHub(tmp_path / "hub.sqlite")
    host, port = registry.host.split(":")

    async def scenario() -> tuple[SimFleet, CountingProxy]:
        proxy = await CountingProxy(host, int(port)).start()
        source = RegistrySource(proxy.host, Config(), connections=4)
        fleet = await roll(spec_for(v1, 300, connections=4), hub, v2, source=source)
        await proxy.stop()
        return fleet, proxy

    fleet, proxy = asyncio.run(scenario())
    assert fleet.counts() == {"running": 300}
    assert fleet.source.requests == 300
    assert 1 <= proxy.connections <= 4 and proxy.peak <= 4  # 300 devices, at most 4 connections
    hub.close()


def test_scaled_spec_keeps_group_proportions():
    spec = SimSpec("r@sha256:" + "0" * 64, (GroupSpec("a", 30), GroupSpec("b", 10)))
    scaled = spec.scaled(9)
    assert [g.devices for g in scaled.groups] == [7, 2] and scaled.total == 9
    assert dataclasses.replace(spec, seed=2).device_ids()[0][0] == "sim-a-00000"


def test_fleet_pulls_from_the_embedded_oci_layout_store(tmp_path):
    from fleet_tui.devices.blobsource import LayoutSource
    from fleet_tui.oci.layout import LayoutStore

    layout = LayoutStore(tmp_path / "oci", create=True)
    base = files_layer({"etc/os-release": "ID=sim\n"})
    refs, new = [], None
    for tag, model in (("1", noise(3000, 1)), ("2", noise(5000, 2))):
        new = files_layer({"app/model.pkl": model})
        b = ImageBuilder().add_layer(base, "ADD base").add_layer(new, "COPY model")
        refs.append(f"oci:{tmp_path / 'oci'}@{b.push(layout, '', tag)}")
    hub = LocalHub(tmp_path / "hub.sqlite")
    fleet = asyncio.run(roll(spec_for(refs[0], 5), hub, refs[1]))
    assert isinstance(fleet.source.default, LayoutSource)
    assert fleet.counts() == {"running": 5}
    assert fleet.source.bytes == 5 * new.size  # only the new layer, per device
    hub.close()
