"""Image reference parsing: Docker Hub defaults, hosts, digests, layouts, malformed input."""

from __future__ import annotations

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.oci.reference import parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repo, tag, digest", [
    ("alpine", "docker.io", "library/alpine", "latest", None),
    ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("127.0.0.1:5000/ml/scoring:2", "127.0.0.1:5000", "ml/scoring", "2", None),
    ("localhost/a/b", "localhost", "a/b", "latest", None),
    (f"myreg.azurecr.io/ml/scoring@{D}", "myreg.azurecr.io", "ml/scoring", None, D),
    (f"myreg.azurecr.io/ml/scoring:2@{D}", "myreg.azurecr.io", "ml/scoring", "2", D),
])
def test_parse(text, registry, repo, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)
    assert ref.reference == (digest or tag)


def test_layout_refs():
    ref = parse_reference("oci:/var/lib/fleet/store:v2")
    assert ref.layout and ref.repository == "/var/lib/fleet/store" and ref.tag == "v2"
    assert str(ref) == "oci:/var/lib/fleet/store:v2"
    assert parse_reference(f"oci:./store@{D}").digest == D


def test_pinned():
    ref = parse_reference("127.0.0.1:5000/ml/scoring:2")
    assert ref.pinned(D) == f"127.0.0.1:5000/ml/scoring@{D}"


@pytest.mark.parametrize("text, needle", [
    ("", "empty"),
    ("Ml/Scoring", "malformed repository"),
    ("host.io/app:bad tag", "malformed tag"),
    ("host.io/app@sha256:123", "malformed digest"),
    ("oci::v1", "names no directory"),
    ("host.io/a//b", "malformed repository"),
])
def test_malformed(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_reference(text)


@pytest.mark.parametrize("ref", ["host:99999/x", "host:0/x", "[::1]:65536/x"])
def test_a_registry_port_out_of_range_is_refused(ref):
    with pytest.raises(UsageError, match="is not a port: use 1-65535"):
        parse_reference(ref)


def test_ports_in_range_parse():
    assert parse_reference("host:65535/x:1").registry == "host:65535"
    assert parse_reference("[::1]:5000/x").registry == "[::1]:5000"
