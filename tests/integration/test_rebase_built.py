"""Images built the ways users build them — `docker build` on a real dockerd (pushed by
dockerd, or copied to OCI by skopeo), GNU tar with real xattrs, hard links and fifos, zstd
layers — rebased and checked against the dockerd oracle (tests/support/oracle.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.image import load_image
from fleet_tui.rebase import rebase
from fleet_tui.rebase.multiplatform import prepare_any
from fleet_tui.rebase.verify import verify_refs
from tests.support import oracle
from tests.support.dockerd import DockerDaemon
from tests.support.images import noise
from tests.support.tricky import CAP_NET_RAW, end, entry, gnu_tar, image, raw_layer

BUSYBOX = Path("/bin/busybox")
BB = '["/bin/busybox", "sh", "-c", "{}"]'


@pytest.fixture(scope="module")
def dockerd(registry, tmp_path_factory):
    daemon = DockerDaemon(tmp_path_factory.mktemp("dockerd-built"), insecure=[registry.host]).start()
    yield daemon
    daemon.stop()


def _context(root: Path, release: int) -> Path:
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox is missing: apt-get install -y busybox-static (.ci/run does it)")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, root / "busybox")
    (root / "deps.so").write_bytes(noise(300_000, 9))
    (root / "model.bin").write_bytes(f"model {release}\n".encode() * 100)
    steps = [
        "FROM scratch", "COPY busybox /bin/busybox", "COPY deps.so /usr/lib/deps.so",
        f"RUN {BB.format('/bin/busybox mkdir -p /var/cache/junk /srv && echo junk > /var/cache/junk/x')}",
        "COPY model.bin /app/model.bin",
    ]
    if release == 2:  # what a release brings: users, links, fifos, deletions, runtime settings
        script = ("/bin/busybox ln /app/model.bin /app/model.link && /bin/busybox mkfifo /srv/pipe"
                  " && /bin/busybox chmod 4750 /app/model.bin && /bin/busybox chown 1000:1000 /srv"
                  " && /bin/busybox rm -rf /var/cache/junk && /bin/busybox ln -s ../app /srv/app")
        steps += [
            f"RUN {BB.format(script)}",
            "USER 1000:1000", "WORKDIR /app", "STOPSIGNAL SIGINT", "VOLUME /data",
            'HEALTHCHECK --interval=30s CMD ["/bin/busybox", "true"]',
        ]
    steps.append('CMD ["/bin/busybox", "cat", "/app/model.bin"]')
    (root / "Dockerfile").write_text("\n".join(steps) + "\n")
    return root


def _build_and_push(dockerd, registry, repo: str, tag: str, context: Path) -> str:
    ref = f"{registry.host}/{repo}:{tag}"
    dockerd.client.images.build(path=str(context), tag=ref, rm=True, network_mode="none")
    for message in dockerd.client.api.push(f"{registry.host}/{repo}", tag=tag, stream=True, decode=True):
        assert "error" not in message, message
    return ref


def test_docker_built_release_rebases_exactly(registry, config, dockerd, repo_name, tmp_path):
    old = _build_and_push(dockerd, registry, repo_name, "1", _context(tmp_path / "v1", 1))
    new = _build_and_push(dockerd, registry, repo_name, "2", _context(tmp_path / "v2", 2))
    assert oracle.differences(dockerd.client, old, new)
    assert not verify_refs(old, new, config).equal
    result = rebase(new, old, "2-rebased", config, auto=True, force=True)
    assert result.pushed and result.refused is None, result.to_json()
    assert oracle.differences(dockerd.client, new, result.ref) == []
    assert verify_refs(new, result.ref, config).equal


def test_skopeo_copied_oci_images_rebase_exactly(registry, config, dockerd, repo_name, tmp_path):
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is missing: apt-get install -y skopeo (.ci/run does it)"
    refs = {}
    for release in (1, 2):
        local = f"fleet-test/skopeo:{release}"
        dockerd.client.images.build(path=str(_context(tmp_path / f"v{release}", release)), tag=local, rm=True,
                                    network_mode="none")
        refs[release] = f"{registry.host}/{repo_name}:{release}"
        subprocess.run([skopeo, "copy", "--format", "oci", "--dest-tls-verify=false",
                        "--src-daemon-host", dockerd.base_url, f"docker-daemon:{local}", f"docker://{refs[release]}"],
                       check=True, capture_output=True, timeout=120)
    assert load_image(refs[2], config).family == mt.OCI
    result = rebase(refs[2], refs[1], "2-rebased", config, auto=True, force=True)
    assert result.pushed and load_image(result.ref, config).family == mt.OCI
    assert oracle.differences(dockerd.client, refs[2], result.ref) == []
    assert verify_refs(refs[2], result.ref, config).equal


def _tree(root: Path, release: int) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app/model.bin").write_bytes(f"weights {release}\n".encode() * 500)
    os.link(root / "app/model.bin", root / "app/model.alias")
    (root / "app/run").write_bytes(b"#!/bin/busybox sh\n")
    os.chmod(root / "app/run", 0o755)
    os.setxattr(root / "app/run", "security.capability", CAP_NET_RAW if release == 2 else CAP_NET_RAW[:4] + bytes(16))
    os.setxattr(root / "app/model.bin", "user.release", str(release).encode())
    os.mkfifo(root / "app/control")
    (root / "app" / ("long-name-" * 12)).write_bytes(b"long")  # GNU long names / PAX path
    os.symlink("model.bin", root / "app/current")
    return root


@pytest.mark.parametrize("fmt", ["posix", "gnu"])
def test_gnu_tar_layers_with_xattrs_and_links_rebase_exactly(registry, client, config, dockerd, repo_name, tmp_path, fmt):
    base = raw_layer(entry("bin/", kind=b"5", mode=0o755) + entry("bin/busybox", BUSYBOX.read_bytes(), mode=0o755) + end())
    layers = {}
    for release in (1, 2):
        args = ["--xattrs", "--xattrs-include=*"] if fmt == "posix" else []  # GNU format has no xattrs
        layers[release] = raw_layer(gnu_tar(_tree(tmp_path / f"r{release}", release), f"--format={fmt}", *args))
    image(client, repo_name, "1", [base, layers[1]])
    image(client, repo_name, "2", [base, layers[2]])
    old, new = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    assert oracle.differences(dockerd.client, old, new)
    result = rebase(new, old, "2-rebased", config, auto=True, force=True)
    assert oracle.differences(dockerd.client, new, result.ref) == []
    assert verify_refs(new, result.ref, config).equal
    if fmt == "posix":
        diff = {c.path: c.what for c in verify_refs(old, new, config).differences}
        assert "xattrs" in diff["app/run"] and "xattrs" in diff["app/model.bin"]


def test_zstd_layers_are_read_and_written(registry, client, config, repo_name):
    base = raw_layer(entry("etc/", kind=b"5", mode=0o755) + entry("etc/os", b"x") + end(), compression="zstd")
    deps = raw_layer(entry("usr/", kind=b"5", mode=0o755) + entry("usr/deps.so", noise(100_000, 3)) + end(),
                     compression="zstd")
    image(client, repo_name, "1", [base, deps, raw_layer(entry("app", b"v1") + end(), compression="zstd")], family=mt.OCI)
    image(client, repo_name, "2", [base, deps, raw_layer(entry("app", b"v2") + end(), compression="zstd")], family=mt.OCI)
    old, new = f"{registry.host}/{repo_name}:1", f"{registry.host}/{repo_name}:2"
    for compression in ("gzip", "zstd"):
        with prepare_any(new, old, f"r-{compression}", config, auto=True, force=True, compression=compression) as plan:
            result = plan.push()
        assert result.pushed
        layer = load_image(result.ref, config).layers[-1]
        assert layer.media_type == mt.layer_type(mt.OCI, compression)
        assert verify_refs(new, result.ref, config).equal
    with pytest.raises(Exception, match="OCI image"):
        image(client, repo_name, "d1", [raw_layer(entry("a", b"1") + end())])
        prepare_any(f"{registry.host}/{repo_name}:d1", f"{registry.host}/{repo_name}:d1", "x", config, auto=True,
                    compression="zstd")
