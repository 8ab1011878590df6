"""Registry client against the real docker-registry: round trips, paging, indexes, faults."""

from __future__ import annotations

import pytest

from fleet_tui.errors import DigestMismatch, NotFound, RemoteError
from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.build import push_index
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.image import load_image
from fleet_tui.oci.registry import RegistryClient
from tests.support.images import ml_pair, noise
from tests.support.proxy import FaultyProxy


def test_push_pull_round_trip(client, registry, repo_name, config):
    blob = noise(50_000, 3)
    digest = sha256(blob)
    assert client.push_blob(repo_name, digest, blob) is True
    assert client.push_blob(repo_name, digest, blob) is False  # already there: not uploaded again
    assert client.blob_size(repo_name, digest) == len(blob)
    assert client.read_blob(repo_name, digest) == blob
    pair = ml_pair(client, repo_name)
    img = load_image(f"{registry.host}/{repo_name}:2", config)
    assert img.digest == pair.v2
    assert img.layers[1].created_by == "/bin/sh -c pip install -r requirements.txt"
    assert [l.created_by.split()[-1] for l in img.layers][0] == "/"  # empty_layer history skipped
    assert client.head_manifest(repo_name, "2").digest == pair.v2


def test_chunked_push(client, repo_name):
    blob = noise(3 * 100_000 + 17, 4)
    digest = sha256(blob)
    chunks = [blob[i:i + 100_000] for i in range(0, len(blob), 100_000)]
    assert client.push_blob(repo_name, digest, iter(chunks)) is True
    assert client.read_blob(repo_name, digest) == blob


def test_chunked_push_with_wrong_digest_is_rejected(client, repo_name):
    blob = noise(1000, 5)
    with pytest.raises(RemoteError):
        client.push_blob(repo_name, sha256(b"something else"), iter([blob]))
    assert client.blob_size(repo_name, sha256(b"something else")) is None


def test_tag_list_pages(client, repo_name):
    ml_pair(client, repo_name)
    manifest = client.get_manifest(repo_name, "1")
    for i in range(25):
        client.put_manifest(repo_name, f"t{i:02d}", manifest.data, manifest.media_type)
    tags = client.list_tags(repo_name, page_size=7)  # 27 tags over 4 pages through Link headers
    assert sorted(tags) == sorted(["1", "2"] + [f"t{i:02d}" for i in range(25)])


def test_manifest_list_picks_platform(client, registry, repo_name, config):
    pair = ml_pair(client, repo_name)
    m1 = client.get_manifest(repo_name, pair.v1)
    m2 = client.get_manifest(repo_name, pair.v2)
    push_index(client, repo_name, "multi", [
        (pair.v2, len(m2.data), mt.DOCKER_MANIFEST, "linux/arm64"),
        (pair.v1, len(m1.data), mt.DOCKER_MANIFEST, "linux/amd64"),
    ])
    amd = load_image(f"{registry.host}/{repo_name}:multi", config)
    arm = load_image(f"{registry.host}/{repo_name}:multi", config, platform="linux/arm64")
    assert amd.digest == pair.v1 and arm.digest == pair.v2
    assert amd.index_bytes > 0
    with pytest.raises(Exception, match="no linux/s390x variant"):
        load_image(f"{registry.host}/{repo_name}:multi", config, platform="linux/s390x")


def test_unknown_tag_is_a_clear_not_found(client, registry, repo_name, config):
    ml_pair(client, repo_name)
    with pytest.raises(NotFound, match=r"tag 'nope' not found .*fleet-tui tags"):
        load_image(f"{registry.host}/{repo_name}:nope", config)


@pytest.fixture
def proxy(registry):
    """A FaultyProxy in front of the session registry, stopped after the test."""
    p = FaultyProxy(registry.host)
    yield p
    p.stop()


def pushed_blob(client: RegistryClient, repo: str, n: int, seed: int) -> tuple[bytes, str]:
    """Push `n` bytes of noise to `repo`; return the blob and its digest."""
    blob = noise(n, seed)
    digest = sha256(blob)
    client.push_blob(repo, digest, blob)
    return blob, digest


def test_cut_download_resumes_with_range(proxy, repo_name, config, client):
    blob, digest = pushed_blob(client, repo_name, 400_000, 6)
    proxy.cut_after = len(blob) // 2
    via = RegistryClient(proxy.host, config)
    assert via.read_blob(repo_name, digest, len(blob)) == blob
    assert via.resumes == 1
    ranges = [r for m, p, r in proxy.requests if "/blobs/" in p and m == "GET"]
    assert ranges == ["", f"bytes={len(blob) // 2}-"]
    assert proxy.body_bytes == len(blob)  # each byte crossed the wire once


def test_corrupted_blob_is_rejected(proxy, repo_name, config, client):
    _blob, digest = pushed_blob(client, repo_name, 10_000, 7)
    proxy.corrupt = True
    with pytest.raises(DigestMismatch, match="refusing corrupted content"):
        RegistryClient(proxy.host, config).read_blob(repo_name, digest)


def test_503_then_success_is_retried(proxy, repo_name, config, client):
    ml_pair(client, repo_name)
    proxy.fail_first = 2
    tags = RegistryClient(proxy.host, config).list_tags(repo_name)
    assert sorted(tags) == ["1", "2"]
    assert len(proxy.requests) == 3


def test_persistent_503_gives_up_with_one_line(proxy, repo_name, config):
    proxy.fail_first = 100
    with pytest.raises(RemoteError, match="HTTP 503"):
        RegistryClient(proxy.host, config).list_tags(repo_name)
    assert len(proxy.requests) == config.registry.retries + 1


def test_refused_connection(config):
    from tests.support.registry import free_port

    with pytest.raises(RemoteError, match="connection refused"):
        RegistryClient(f"127.0.0.1:{free_port()}", config).list_tags("x/y")


def test_cross_repository_mount(client, registry, repo_name):
    blob, digest = pushed_blob(client, repo_name + "-src", 20_000, 9)
    mark = registry.mark()
    assert client.push_blob(repo_name + "-dst", digest, blob, mount_from=repo_name + "-src") is False
    assert client.blob_size(repo_name + "-dst", digest) == len(blob)
    assert not [a for a in registry.accesses(mark) if a.method in ("PUT", "PATCH")]


def _push_same_image(host: str, config, repo: str, round_: int, failures: list[str]) -> None:
    """What one of several concurrent `rollout start --auto-rebase` does: push the same
    config, layer and manifest to the same repository and tag."""
    import json

    cfg = json.dumps({"architecture": "amd64", "os": "linux", "round": round_}).encode()
    layer = noise(4096, seed=round_)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(cfg), "size": len(cfg)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }).encode()
    c = RegistryClient(host, config)
    try:
        c.push_blob(repo, sha256(cfg), cfg)
        c.push_blob(repo, sha256(layer), layer)
        c.put_manifest(repo, "same", manifest, mt.OCI_MANIFEST)
    except Exception as exc:  # noqa: BLE001 - collected and asserted below
        failures.append(f"round {round_}: {exc}")
    finally:
        c.close()


def test_concurrent_pushes_of_one_image_all_succeed(registry, repo_name, config):
    """distribution 2.x rewrites blob link files in place, so a manifest PUT racing another
    client's push of the same blob can be told MANIFEST_BLOB_UNKNOWN for a blob that exists;
    every pusher must still succeed (the client retries that answer)."""
    import threading

    failures: list[str] = []
    for round_ in range(6):
        threads = [threading.Thread(target=_push_same_image, args=(registry.host, config, repo_name, round_, failures))
                   for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
