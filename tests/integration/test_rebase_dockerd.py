"""A real dockerd as a device: it holds OLD, pulls the rebased image by digest, fetches
exactly `bytes_for_old_holders` from the registry, and runs NEW's entry point on NEW's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_tui.oci.layer import Entry
from fleet_tui.rebase import rebase
from tests.support.dockerd import DockerDaemon
from tests.support.images import MODEL_DIR, SCORE, noise, push_layers

BUSYBOX = Path("/bin/busybox")  # Debian busybox-static: a static binary, so the image needs no libc


@pytest.fixture
def dockerd(registry, tmp_path):
    daemon = DockerDaemon(tmp_path / "dockerd", insecure=[registry.host]).start()
    yield daemon
    daemon.stop()


def _base() -> list[Entry]:
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox is missing: apt-get install -y busybox-static (the dockerd test runs it)")
    return [Entry("bin", kind="dir", mode=0o755), Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
            Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=fleet-test\n")]


def _deps() -> list[Entry]:
    return [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
            Entry("usr/lib/libdeps.so", data=noise(400_000, 5), mode=0o755)]


def _app(model: str, score: str) -> list[Entry]:
    return [Entry("var", kind="dir", mode=0o755), Entry("var/azureml-app", kind="dir", mode=0o755),
            Entry(MODEL_DIR, kind="dir", mode=0o755), Entry(f"{MODEL_DIR}/model.txt", data=model.encode()),
            Entry(SCORE, data=score.encode())]


def test_device_holding_old_pulls_only_the_new_layer_and_runs_new_files(registry, client, config, repo_name, dockerd):
    base = _base()
    cat = ["/bin/busybox", "cat", f"/{MODEL_DIR}/model.txt", f"/{SCORE}"]
    push_layers(client, repo_name, "1", [base, _deps(), _app("model v1\n", "score v1\n")],
                cmd=["/bin/busybox", "echo", "old entry point"], mtime=1_700_000_000)
    push_layers(client, repo_name, "2", [base, _deps(), _app("model v2\n", "score v2\n")], cmd=cat, mtime=1_800_000_000)
    docker = dockerd.client
    docker.images.pull(f"{registry.host}/{repo_name}", tag="1")  # the device runs OLD

    result = rebase(f"{registry.host}/{repo_name}:2", f"{registry.host}/{repo_name}:1", "2-rebased", config,
                    paths=[f"/{MODEL_DIR},/{SCORE}"])
    assert result.pushed

    mark = registry.mark()
    docker.images.pull(result.ref)
    fetched = registry.served_bytes(mark)
    assert fetched == result.bytes_for_old_holders, (fetched, result.to_json())
    assert result.bytes_for_old_holders * 50 < result.bytes_naive

    output = docker.containers.run(result.ref, network_mode="none", remove=True)
    assert output == b"model v2\nscore v2\n"  # NEW's entry point, NEW's files, OLD's layers
    old_files = docker.containers.run(result.ref, ["/bin/busybox", "cat", "/etc/os-release"], network_mode="none", remove=True)
    assert old_files == b"ID=fleet-test\n"
