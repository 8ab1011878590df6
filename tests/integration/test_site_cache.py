"""How a real Distribution pull-through cache fetches (docker-registry in proxy mode, behind a
counted uplink), re-measured: the facts fleet_tui.oci.pullthrough and the site warm-up build on.

- a client that reads a cold blob to the end makes the uplink carry it twice;
- a HEAD of a cold blob does too (it is no harmless question);
- `trigger` (GET, closed at once) makes it carry the blob once, and the cache keeps it;
- `probe` of a held blob costs the uplink nothing and says held; after the cache lost the blob
  (what its TTL expiry does: the blob's files removed) it says not held.
"""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from fleet_tui.config import Config
from fleet_tui.errors import RemoteError
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.pullthrough import PullThrough
from fleet_tui.oci.registry import RegistryClient
from tests.support.images import noise
from tests.support.registry import RegistryServer
from tests.support.uplink import Uplink

pytestmark = pytest.mark.integration

SIZE = 3_000_000
RATE = 6_000_000


@pytest.fixture
def site(registry, tmp_path):
    uplink = Uplink(registry.host, RATE)
    cache = RegistryServer(tmp_path / "cache", remoteurl=f"http://{uplink.address}").start()
    yield uplink, cache
    cache.stop()
    uplink.close()


def blob(registry, seed: int) -> tuple[str, str]:
    data = noise(SIZE, seed)
    digest = sha256(data)
    client = RegistryClient(registry.host, Config())
    client.push_blob("test/site-cache", digest, data)
    client.close()
    return "test/site-cache", digest


def settle(uplink: Uplink, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """The uplink's count once nothing crossed it for `quiet` seconds (the cache's copy ended)."""
    last, since, deadline = uplink.down, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if uplink.down != last:
            last, since = uplink.down, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return last
    raise AssertionError("the uplink never went quiet")


def test_reading_or_heading_a_cold_blob_fetches_it_twice(registry, site):
    uplink, cache = site
    repo, digest = blob(registry, 1)
    r = httpx.get(f"http://{cache.host}/v2/{repo}/blobs/{digest}", timeout=60)
    assert r.status_code == 200 and sha256(r.content) == digest
    assert settle(uplink) >= 1.8 * SIZE
    repo, other = blob(registry, 2)
    before = uplink.down
    assert httpx.head(f"http://{cache.host}/v2/{repo}/blobs/{other}", timeout=60).status_code == 200
    assert settle(uplink) - before >= 1.8 * SIZE


def test_trigger_fetches_once_and_probe_tells_held_from_lost(registry, site):
    uplink, cache = site
    repo, digest = blob(registry, 3)
    pull = PullThrough(f"http://{cache.host}")
    pull.trigger(repo, digest)
    once = settle(uplink)
    assert SIZE <= once <= SIZE * 1.03 + 64 * 1024, once
    assert pull.probe(repo, digest).held
    r = httpx.get(f"http://{cache.host}/v2/{repo}/blobs/{digest}", timeout=60)
    assert sha256(r.content) == digest and "accept-ranges" in r.headers
    assert settle(uplink) - once < 4096  # served from the cache: the uplink carried nothing of it
    stored = cache.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / digest[7:9] / digest[7:]
    assert stored.is_dir()
    shutil.rmtree(stored)  # what the proxy's TTL expiry does to a blob
    assert not pull.probe(repo, digest).held


def test_probe_of_a_cache_that_is_down_names_it(registry, site):
    uplink, cache = site
    cache.stop()
    with pytest.raises(RemoteError, match="unreachable"):
        PullThrough(f"http://{cache.host}").probe("test/site-cache", "sha256:" + "0" * 64)
