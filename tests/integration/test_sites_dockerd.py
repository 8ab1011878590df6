"""Two real dockerd devices at one site pull a release through the site's real pull-through
cache (`docker-registry` with `proxy.remoteurl`) behind a counted uplink: the rollout warms the
cache first, the devices are given `<cache>/<repository>@<digest>`, and the uplink carries the
new blobs once for both devices — dockerd never reaches the upstream registry itself.
"""

from __future__ import annotations

import threading
import time

import docker
import pytest

from fleet_tui.config import load_config
from fleet_tui.devices.engine import EngineAgent
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.registry import RegistryClient
from tests.integration.test_engine_agent import busybox_layer, image
from tests.support.dockerd import DockerDaemon
from tests.support.images import noise
from tests.support.registry import RegistryServer
from tests.support.rollout_env import RolloutEnv
from tests.support.uplink import Uplink

pytestmark = [pytest.mark.integration, pytest.mark.sites_e2e]

IDS = ("shed-1", "shed-2")


def test_dockerd_devices_pull_through_the_site_cache(registry, tmp_path, capsys):
    uplink = Uplink(registry.host, rate=2_000_000)
    cache = RegistryServer(tmp_path / "cache", remoteurl=f"http://{uplink.address}").start()
    daemons = [DockerDaemon(tmp_path / d, insecure=[registry.host, cache.host]).start() for d in IDS]
    try:
        client = RegistryClient(registry.host, load_config(None))
        base = busybox_layer()
        sleep = ["/bin/busybox", "sleep", "3600"]
        v1b, v2b = image(base, b"model-1" * 100, sleep), image(base, noise(600_000, 3), sleep)
        repo = "test/site-dockerd"
        v1 = f"{registry.host}/{repo}@{v1b.push(client, repo, '1')}"
        v2 = f"{registry.host}/{repo}@{v2b.push(client, repo, '2')}"
        client.close()
        config_path = tmp_path / "config.toml"
        config_path.write_text(
            f'state_dir = "{tmp_path / "state"}"\n[hub]\npath = "{tmp_path / "hub.sqlite"}"\nmodule = "scoring"\n'
            '[rollout]\npoll = 0.1\ngate_timeout = 120\nwaves = "1,100%"\n'
            f'[sites.shed]\ncache = "distribution"\ncache_address = "{cache.host}"\n[sites.shed.uplink]\nbandwidth = 2000000\n')
        config = load_config(config_path)
        hub = LocalHub(config.hub_path(), module="scoring")
        hub.register_devices((d, {"fleetGroup": "edge", "site": "shed"}) for d in IDS)
        hub.create_deployment(Deployment("base-edge", "tags.fleetGroup = 'edge'", 1, {"scoring": ModuleSpec("scoring", v1)}))
        clients = [docker.DockerClient(base_url=d.base_url, timeout=120, user_agent=f"fleet-agent/{i}")
                   for d, i in zip(daemons, IDS)]
        agents = [EngineAgent(i, hub, c, settle=1.0) for i, c in zip(IDS, clients)]
        for a in agents:
            assert a.step() == "running"  # v1, straight from the registry (before the site had a cache)
        env = RolloutEnv(tmp_path, config_path, config, v1, v2, v1.split("@")[1], v2.split("@")[1], {}, list(IDS))
        before, mark = uplink.down, registry.mark()
        preview = env.cli_json("preview", v2, "--group", "edge")
        [site] = preview["sites"]
        started = env.cli_json("rollout", "start", v2, "--group", "edge", "--detach")
        stop = threading.Event()

        def devices() -> None:
            while not stop.is_set():
                for a in agents:
                    a.step()
                time.sleep(0.2)

        worker = threading.Thread(target=devices, daemon=True)
        worker.start()
        deadline = time.time() + 150
        status = {}
        while time.time() < deadline:
            status = env.cli_json("rollout", "status", started["id"])
            if status["state"] in ("succeeded", "halted", "aborted", "rolled_back"):
                break
            time.sleep(0.5)
        stop.set()
        worker.join(30)
        images = {d: hub.get_device(d).reported["scoring"].image for d in IDS}
        direct = [a for a in registry.accesses(mark) if a.agent.startswith("fleet-agent") or "UpstreamClient" in a.agent]
        hub.close()
    finally:
        for d in daemons:
            d.stop()
        cache.stop()
        uplink.close()
    assert status["state"] == "succeeded", status
    assert set(images.values()) == {f"{cache.host}/{repo}@{v2.split('@')[1]}"}
    assert not direct, "dockerd pulled from the upstream registry itself"
    measured = uplink.down - before
    with capsys.disabled():
        print(f"\n[sites] site=shed devices=2 blob_bytes={site['blob_bytes']} uplink_planned={site['uplink_bytes']} "
              f"uplink_measured={measured} lan={site['lan_bytes']} engine=dockerd")
    assert abs(measured - site["uplink_bytes"]) <= 0.03 * site["uplink_bytes"] + 64 * 1024
    assert site["blob_bytes"] > 600_000 and measured < 1.05 * site["blob_bytes"] + 64 * 1024  # once, not once per device
