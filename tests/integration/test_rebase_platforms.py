"""Multi-platform images (linux/amd64 + linux/arm64, as edge fleets have): the rebase keeps
every platform NEW has, each rebased onto OLD's image for that platform; a dockerd asking
for arm64 gets the arm64 rebase, equal to NEW's arm64 image, and fetches exactly what
`plan --platform linux/arm64` says. OLD lacking a platform is refused in one line unless
`--platform` narrows the rebase."""

from __future__ import annotations

import json

import pytest

from fleet_tui.cli import main
from fleet_tui.errors import FleetError
from fleet_tui.oci.image import load_image
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rebase.multiplatform import platform_entries, prepare_any
from fleet_tui.rebase.verify import verify_refs
from tests.support import oracle
from tests.support.dockerd import DockerDaemon
from tests.support.tricky import PLATFORMS, push_release


@pytest.fixture
def devices(registry, tmp_path):
    """One real dockerd per platform: a device of that platform, which has pulled nothing else."""
    daemons = {p: DockerDaemon(tmp_path / p.replace("/", "-"), insecure=[registry.host]) for p in PLATFORMS}
    try:
        yield {p: d.start() for p, d in daemons.items()}
    finally:
        for daemon in daemons.values():
            daemon.stop()


def test_every_platform_is_rebased_onto_its_own_old(registry, client, config, devices, repo_name, capsys):
    push_release(client, repo_name, "1", 1)
    push_release(client, repo_name, "2", 2)
    host = registry.host
    old, new = f"{host}/{repo_name}:1", f"{host}/{repo_name}:2"
    assert main(["rebase", new, "--onto", old, "--paths", "/app", "--tag", "2-rebased", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pushed"] and not result["fallback"], result
    assert set(result["platforms"]) == set(PLATFORMS) and result["index_bytes"] > 0
    rebased = platform_entries(result["ref"], config)
    assert rebased is not None and set(rebased) == set(PLATFORMS)
    for platform in PLATFORMS:
        arch, dockerd = platform.split("/")[1], devices[platform]
        assert verify_refs(new, result["ref"], config, platform=platform).equal
        old_p = load_image(old, config, platform)
        image_p = load_image(result["ref"], config, platform)
        assert image_p.config.doc["architecture"] == arch  # an arm64 device gets arm64
        kept = result["platforms"][platform]["reused_layers"]  # OLD's bottom layers, as they are (maybe not all)
        assert 1 <= kept <= len(old_p.layers) and len(image_p.layers) == kept + 1
        assert [layer.digest for layer in image_p.layers[:kept]] == [layer.digest for layer in old_p.layers[:kept]]
        # a device of this platform holding OLD fetches exactly what `plan --platform` says
        oracle.pull(dockerd.client, old, platform)
        assert main(["plan", f"{host}/{repo_name}:2-rebased", "--have", old, "--platform", platform, "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)["total_bytes"]
        assert planned == plan_pull(load_image(f"{host}/{repo_name}:2-rebased", config, platform), [old_p]).total_bytes
        mark = registry.mark()
        oracle.pull(dockerd.client, f"{host}/{repo_name}:2-rebased", platform)
        assert registry.served_bytes(mark) == planned
        assert oracle.differences(dockerd.client, f"{host}/{repo_name}:2-{arch}", f"{host}/{repo_name}:2-rebased",
                                  platform) == []
    assert verify_refs(new, result["ref"], config).equal  # every platform at once
    assert main(["layers", f"{host}/{repo_name}:2-rebased", "--platform", "linux/arm64", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["platforms"] == list(PLATFORMS) and shown["platform"] == "linux/arm64"


def test_old_lacking_a_platform_is_refused_unless_narrowed(registry, client, config, repo_name):
    push_release(client, repo_name, "1", 1, platforms=("linux/amd64",))
    push_release(client, repo_name, "2", 2)
    host = registry.host
    with pytest.raises(FleetError, match="has no linux/arm64 image") as err:
        prepare_any(f"{host}/{repo_name}:2", f"{host}/{repo_name}:1", "r", config, paths=["/app"])
    assert "\n" not in str(err.value) and client.head_manifest(repo_name, "r") is None
    with prepare_any(f"{host}/{repo_name}:2", f"{host}/{repo_name}:1", "r", config, paths=["/app"], force=True,
                     platforms=["linux/amd64"]) as plan:
        result = plan.push()
    assert result.pushed and set(result.platforms) == {"linux/amd64"}
    assert set(platform_entries(f"{host}/{repo_name}:r", config) or {}) == {"linux/amd64"}


def test_verify_names_a_missing_platform(registry, client, config, repo_name):
    push_release(client, repo_name, "a", 1)
    push_release(client, repo_name, "b", 1, platforms=("linux/amd64",))
    host = registry.host
    result = verify_refs(f"{host}/{repo_name}:a", f"{host}/{repo_name}:b", config)
    assert not result.equal
    assert {"field": "platforms", "a": ["linux/amd64", "linux/arm64"], "b": ["linux/amd64"]} in result.config_differences
