"""Engine agents on two real dockerd devices pull a rebased v2 from the real registry.

Telling devices apart in the registry's access log: each device's agent talks to its
dockerd through a docker client with its own User-Agent; dockerd forwards it to the
registry as `UpstreamClient(<agent>)` in every pull request's User-Agent, so the access
log attributes each GET to the device that made it.
"""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import docker
import pytest

from fleet_tui.config import Config
from fleet_tui.devices.engine import EngineAgent
from fleet_tui.hub.local import LocalHub
from fleet_tui.hub.protocol import Deployment, ModuleSpec
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import Entry, files_layer, write_layer
from fleet_tui.oci.registry import RegistryClient
from tests.support.dockerd import DockerDaemon

BUSYBOX = Path("/bin/busybox")  # static (Debian busybox-static): a real process in a tiny image


def busybox_layer():
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox is missing: apt-get install -y busybox-static (bash .ci/run does it)")
    return write_layer([Entry("bin", kind="dir", mode=0o755), Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)])


def image(base, model: bytes, cmd: list[str]) -> ImageBuilder:
    b = ImageBuilder()
    b.add_layer(base, "ADD busybox /bin/busybox")
    b.add_layer(files_layer({"var/azureml-app/model.pkl": model}), "COPY model /var/azureml-app")
    b.container["Cmd"] = cmd
    return b


@pytest.fixture(scope="module")
def images(registry):
    client = RegistryClient(registry.host, Config())
    base = busybox_layer()
    repo = "test/engine-agent"
    sleep = ["/bin/busybox", "sleep", "3600"]
    built = {
        "v1": image(base, b"model-1" * 100, sleep),
        "v2": image(base, b"model-2" * 120, sleep),  # rebased: same base blob, new app layer
        "crash": image(base, b"model-3" * 90, ["/bin/busybox", "sh", "-c", "echo boom; exit 3"]),
    }
    out = {}
    for name, b in built.items():
        digest = b.push(client, repo, name)
        out[name] = (f"{registry.host}/{repo}@{digest}", b)
    client.close()
    return out


@pytest.fixture(scope="module")
def devices(registry, tmp_path_factory):
    daemons = []
    try:
        for name in ("dev-a", "dev-b"):
            daemons.append(DockerDaemon(tmp_path_factory.mktemp(name), insecure=[registry.host]).start())
        yield daemons
    finally:
        for d in daemons:
            d.stop()


def deploy(hub: LocalHub, dep_id: str, ref: str, priority: int) -> None:
    hub.create_deployment(Deployment(dep_id, "tags.fleetGroup = 'edge'", priority, {"scoring": ModuleSpec("scoring", ref)}))


def converge(agents: list[EngineAgent]) -> list[str]:
    """Step all agents in parallel (each its own device) until done; returns their states."""
    states: list[str] = [""] * len(agents)

    def go(i: int) -> None:
        states[i] = agents[i].step()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(agents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return states


def layer_bytes_served(registry, since: int, agent: str, layers: set[str]) -> int:
    return sum(a.bytes for a in registry.accesses(since)
               if a.method == "GET" and a.status in (200, 206) and agent in a.agent
               and a.path.rsplit("/", 1)[-1] in layers)


def test_two_devices_pull_rebased_v2_and_bytes_match_registry_log(registry, images, devices, tmp_path):
    hub = LocalHub(tmp_path / "hub.sqlite")
    ids = ["dev-a", "dev-b"]
    hub.register_devices((d, {"fleetGroup": "edge"}) for d in ids)
    clients = [docker.DockerClient(base_url=d.base_url, timeout=120, user_agent=f"fleet-agent/{i}")
               for d, i in zip(devices, ids)]
    agents = [EngineAgent(i, hub, c, settle=1.0) for i, c in zip(ids, clients)]

    v1, b1 = images["v1"]
    deploy(hub, "release-1", v1, 10)
    mark = registry.mark()
    assert converge(agents) == ["running", "running"]
    v1_layers = {l.digest for l, _ in b1.layers}
    for i in ids:
        twin = hub.get_device(i)
        assert twin.reported["scoring"].digest == v1.split("@")[1]
        machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        assert twin.platform("scoring") == f"linux/{machine}"  # the engine's own, from docker info
        served = layer_bytes_served(registry, mark, f"fleet-agent/{i}", v1_layers)
        assert served == sum(l.size for l, _ in b1.layers)
        assert twin.reported["scoring"].bytes_downloaded == served

    v2, b2 = images["v2"]
    deploy(hub, "release-2", v2, 20)
    mark = registry.mark()
    assert converge(agents) == ["running", "running"]
    new_layer = b2.layers[1][0]
    manifest, config = b2.manifest()
    for i, dev in zip(ids, devices):
        twin = hub.get_device(i)
        report = twin.reported["scoring"]
        assert (report.state, report.digest, report.error) == ("running", v2.split("@")[1], "")
        agent = f"fleet-agent/{i}"
        served_layers = layer_bytes_served(registry, mark, agent, {l.digest for l, _ in b2.layers})
        assert served_layers == new_layer.size  # only the rebased layer: the base blob is reused
        assert report.bytes_downloaded == served_layers
        # everything else this device fetched is manifest + config, nothing more
        others = registry.served_bytes(mark, agent=agent) - served_layers
        assert others <= len(manifest.to_bytes()) * 2 + len(config)
        running = dev.client.containers.list()
        assert [c.name for c in running] == ["scoring"]
        assert running[0].labels["fleet.image"] == v2
    for c in clients:
        c.close()
    hub.close()


def test_crashing_image_reports_failed_and_old_container_keeps_running(registry, images, devices, tmp_path):
    hub = LocalHub(tmp_path / "hub.sqlite")
    hub.register_devices([("dev-a", {"fleetGroup": "edge"})])
    client = docker.DockerClient(base_url=devices[0].base_url, timeout=120)
    agent = EngineAgent("dev-a", hub, client, settle=1.0)
    v1, _ = images["v1"]
    deploy(hub, "release-1", v1, 10)
    assert agent.step() == "running"
    old_id = client.containers.get("scoring").id

    crash, _ = images["crash"]
    deploy(hub, "release-crash", crash, 30)
    assert agent.step() == "failed"
    report = hub.get_device("dev-a").reported["scoring"]
    assert report.digest == v1.split("@")[1]  # what still runs
    assert "exit code 3" in report.error and crash in report.error
    still = client.containers.get("scoring")
    assert still.id == old_id and still.status == "running"
    assert [c.name for c in client.containers.list(all=True)] == ["scoring"]
    assert agent.step() == "failed"  # not retried until the desired image changes
    client.close()
    hub.close()


def test_going_back_to_the_image_a_device_ran_fetches_nothing(registry, images, tmp_path):
    """v1 → v2 → v1 on a fresh real dockerd: the agent reports v1 as still held, the preview
    plans the way back as 0 bytes, and the registry serves exactly what was planned both ways."""
    from fleet_tui.fleet.groupplan import plan_group
    from fleet_tui.oci.image import load_image
    from fleet_tui.planning.pullplan import plan_pull

    config = Config(registry={"insecure": [registry.host]})
    daemon = DockerDaemon(tmp_path / "dev-c", insecure=[registry.host]).start()
    hub = LocalHub(tmp_path / "hub.sqlite")
    hub.register_devices([("dev-c", {"fleetGroup": "edge"})])
    client = docker.DockerClient(base_url=daemon.base_url, timeout=120, user_agent="fleet-agent/back")
    agent = EngineAgent("dev-c", hub, client, settle=1.0)
    try:
        (v1, _), (v2, _) = images["v1"], images["v2"]
        img1, img2 = load_image(v1, config), load_image(v2, config)
        deploy(hub, "release-1", v1, 10)
        assert agent.step() == "running"
        deploy(hub, "release-2", v2, 20)
        mark = registry.mark()
        assert agent.step() == "running"
        there = plan_pull(img2, [img1])  # what the preview says for v1 → v2 ...
        assert there.layer_bytes > 0 and registry.served_bytes(mark, agent="fleet-agent/back") == there.total_bytes
        twin = hub.get_device("dev-c")
        assert twin.digest("scoring") == img2.digest and v1 in twin.cached("scoring")

        plan = plan_group(img1, [twin], "scoring", config)  # the preview of going back
        [cohort] = plan.cohorts
        assert not any(layer.needed for layer in cohort.plan.layers) and cohort.bytes_per_device == 0
        assert plan_group(img2, [twin], "scoring", config).cohorts[0].bytes_per_device == 0  # runs it
        deploy(hub, "rollback-1", v1, 30)
        mark = registry.mark()
        assert agent.step() == "running"
        assert hub.get_device("dev-c").digest("scoring") == img1.digest
        assert registry.served_bytes(mark, agent="fleet-agent/back") == cohort.bytes_per_device == 0
    finally:
        client.close()
        hub.close()
        daemon.stop()
