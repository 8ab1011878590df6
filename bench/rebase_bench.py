"""Rebase benchmark: bytes per device and time, against the two-stage Dockerfile approach.

Images (assembled in Python, pushed to a real loopback docker-registry):
  v1 = base (busybox + filler) → deps (numpy, scipy, pandas, scikit-learn 1.3 from real
       wheels, `pip install --target`) → app (pickled model + scoring script)
  v2 = the same deps rebuilt with new timestamps (new digest) + a new model   [seed]
  v3 = deps with scikit-learn bumped to 1.4 + the new model                    [bump]
Per scenario: naive bytes an OLD device pulls, rebased bytes, the physical floor (gzip of
the truly changed files + manifest + config), and rebase time vs the Dockerfile approach
on a real dockerd (DOCKER_BUILDKIT=0: pull both, build `FROM new AS model / FROM old /
COPY --from=model`, push), measured in the same run. Rebase time is given cold (empty layer
index: both dependency layers streamed, gunzipped, hashed) and warm (OLD's layers indexed
beforehand, as when OLD was NEW at the previous release); each timed rebase has its own
state dir. Then the seed rebase with a 1 GB base layer, to show rebase time does not grow
with OLD's size.

Issue 24 (rebase at the read floor), for the seed pair: the one-core read floor is what the
proof cannot skip — every blob OLD and NEW do not share read once: sha256 of the blob, Python
zlib inflate, sha256 of the tar stream (diff_id), one thread, blobs already in memory (no
download, no tar parse, no per-file hashing: a floor the rebase, which does all of that
too, can only beat by using both cores). Measured in the same run, median of `--runs`, and
printed beside cold, warm and the Dockerfile route with their ratios.

Run: python bench/rebase_bench.py [--big-gb 1.0] [--runs 3] [--wheels DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_tui.config import Config  # noqa: E402
from fleet_tui.oci.image import load_image  # noqa: E402
from fleet_tui.oci.layer import Entry, write_layer  # noqa: E402
from fleet_tui.oci.registry import RegistryClient  # noqa: E402
from fleet_tui.rebase import rebase, verify_images  # noqa: E402
from fleet_tui.rebase.diff import diff_images  # noqa: E402
from fleet_tui.rebase.layerindex import LayerIndex  # noqa: E402
from fleet_tui.rebase.spooling import LazyFile, Spool  # noqa: E402
from fleet_tui.rebase.tree import read_range  # noqa: E402
from tests.support.dockerd import DockerDaemon  # noqa: E402
from tests.support.images import build  # noqa: E402
from tests.support.registry import RegistryServer  # noqa: E402

WHEELS = ["numpy==1.26.4", "scipy==1.11.4", "pandas==2.1.4", "scikit-learn==1.3.2", "scikit-learn==1.4.2",
          "joblib==1.3.2", "threadpoolctl==3.2.0", "python-dateutil==2.8.2", "pytz==2023.3", "tzdata==2023.3", "six==1.16.0"]
SITE = "usr/local/lib/python3.11/site-packages"
MODELS = "var/azureml-app/azureml-models"
SCORE = "var/azureml-app/iot_score.py"
PATHS = [f"/{MODELS},/{SCORE}"]


def say(*a: object) -> None:
    print(*a, flush=True)


def _wheel(dest: Path, spec: str) -> Path | None:
    name, version = spec.split("==")
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return found[0] if found else None


def fetch_wheels(dest: Path) -> None:
    for spec in WHEELS:  # one call per spec: two scikit-learn versions cannot share a resolve
        if _wheel(dest, spec) is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
                            "-d", str(dest), spec], check=True, capture_output=True)


def install(wheels: Path, sklearn: str, target: Path) -> Path:
    if not target.exists():
        specs = [s for s in WHEELS if not s.startswith("scikit-learn")] + [f"scikit-learn=={sklearn}"]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile",
                        "--target", str(target)] + [str(_wheel(wheels, s)) for s in specs], check=True, capture_output=True)
    return target


def dir_layer(root: Path, prefix: str, mtime: int):
    entries = [Entry(p, kind="dir", mode=0o755) for p in _parents(prefix)]
    for path in sorted(root.rglob("*")):
        rel = f"{prefix}/{path.relative_to(root)}"
        st = path.lstat()
        if path.is_symlink():
            entries.append(Entry(rel, kind="symlink", linkname=os.readlink(path)))
        elif path.is_dir():
            entries.append(Entry(rel, kind="dir", mode=st.st_mode & 0o7777))
        else:
            entries.append(Entry(rel, mode=st.st_mode & 0o7777, source=LazyFile(Spool(path=str(path)), st.st_size),
                                 size=st.st_size))
    return write_layer(entries, mtime=mtime, compresslevel=6)


def _parents(prefix: str) -> list[str]:
    parts = prefix.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def base_layer(filler_mb: int, seed: int = 0):
    block = random.Random(seed).randbytes(1 << 20)
    entries = [Entry("bin", kind="dir", mode=0o755), Entry("bin/busybox", data=Path("/bin/busybox").read_bytes(), mode=0o755),
               Entry("bin/sh", kind="symlink", linkname="busybox"), Entry("opt", kind="dir", mode=0o755),
               Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=bench\n")]
    per = 64
    for i in range(0, filler_mb, per):
        n = min(per, filler_mb - i)
        entries.append(Entry(f"opt/filler-{i:05d}.bin", source=_Repeat(block, n), size=n << 20))
    return write_layer(entries, compresslevel=1)


class _Repeat:
    """A file of `n` MB repeating one block (never held whole in memory)."""

    def __init__(self, block: bytes, n: int) -> None:
        self.block, self.left, self.pos = block, n * len(block), 0

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = len(self.block) - self.pos if size < 0 else min(size, len(self.block) - self.pos)
        out = self.block[self.pos:self.pos + min(want, self.left)]
        self.pos = (self.pos + len(out)) % len(self.block)
        self.left -= len(out)
        return out


def app_layer(seed: int):
    rng = random.Random(seed)
    model = pickle.dumps({"coef": [rng.random() for _ in range(60_000)], "intercept": rng.random(), "seed": seed})
    score = f"import pickle\nMODEL = '/{MODELS}/model.pkl'\n# release {seed}\ndef run(x):\n    return x\n"
    entries = [Entry(p, kind="dir", mode=0o755) for p in _parents(MODELS)]
    entries += [Entry(f"{MODELS}/model.pkl", data=model), Entry(SCORE, data=score.encode())]
    return write_layer(entries, mtime=1_700_000_000 + seed)


def push_image(client, repo, tag, layers, cmd=None) -> str:
    b = build([(l, step) for l, step in layers], cmd=cmd or ["/bin/busybox", "cat", f"/{SCORE}"])
    return b.push(client, repo, tag)


def floor_bytes(old_ref: str, new_ref: str, rebased_ref: str, config: Config) -> int:
    """gzip of the files whose content truly differs + the rebased manifest and config."""
    new = load_image(new_ref, config)
    changes = [c for c in diff_images(load_image(old_ref, config), new).changes if c.new is not None and c.new.kind == "file"]
    changed = {c.path for c in changes}
    from fleet_tui.rebase.blobstream import map_layer
    from fleet_tui.rebase.mergedfs import clean
    contents = []
    for index in sorted({c.new.source[0] for c in changes}):  # only the layers that hold them
        contents += map_layer(new, new.layers[index],
                              lambda m, data: b"".join(data) if m.isreg() and clean(m.name) in changed else None)
    gz = gzip.compress(b"".join(contents), 6, mtime=0)
    rebased = load_image(rebased_ref, config)
    return len(gz) + rebased.manifest_bytes + rebased.config_bytes


def unshared_blobs(old_ref: str, new_ref: str, config: Config) -> list[bytes]:
    """The layer blobs of OLD and NEW that the other does not hold, each once, in memory."""
    old, new = load_image(old_ref, config), load_image(new_ref, config)
    a, b = {layer.digest for layer in old.layers}, {layer.digest for layer in new.layers}
    blobs = []
    for image in (old, new):
        for layer in image.layers:
            if layer.digest in a ^ b:
                blobs.append(image.store.read_blob(image.repo, layer.digest, layer.size))
    return blobs


def read_floor(blobs: list[bytes]) -> tuple[float, int]:
    """(seconds, tar bytes): one core, Python zlib + hashlib — blob digest, inflate, diff_id."""
    t0, out = time.monotonic(), 0
    for blob in blobs:
        hashlib.sha256(blob).hexdigest()
        z, h = zlib.decompressobj(31), hashlib.sha256()
        view = memoryview(blob)
        for i in range(0, len(view), 1 << 20):
            piece = z.decompress(view[i:i + (1 << 20)])
            h.update(piece)
            out += len(piece)
        tail = z.flush()
        h.update(tail)
        out += len(tail)
        if not z.eof:
            raise RuntimeError("a blob's gzip stream did not end")
        h.hexdigest()
    return time.monotonic() - t0, out


def issue24(floor_s: float, floor_runs: list[float], blobs: list[bytes], tar_bytes: int, seed: dict,
            dockerfile_s: float) -> None:
    cold, warm = seed["seconds"], seed["warm_seconds"]
    say("\n== issue 24: the seed rebase at the read floor ==")
    say(f"unshared blobs read by the proof  {len(blobs)} ({sum(map(len, blobs)):,d} B gzip'd, {tar_bytes:,d} B tar)")
    say(f"one-core read floor (zlib+sha256) {floor_s:>8.2f} s   median of {len(floor_runs)}: "
        + " ".join(f"{t:.2f}" for t in floor_runs))
    say(f"rebase cold                       {cold:>8.2f} s   = {cold / floor_s:.2f}x the floor (target <= 0.75), "
        f"{dockerfile_s / cold:.1f}x faster than the Dockerfile route (target >= 20)")
    say(f"rebase warm (OLD remembered)      {warm:>8.2f} s   = {warm / floor_s:.2f}x the floor, "
        f"{dockerfile_s / warm:.1f}x faster than the Dockerfile route")
    say(f"two-stage Dockerfile route        {dockerfile_s:>8.2f} s")


def dockerfile_approach(registry, repo: str, work: Path) -> float:
    daemon = DockerDaemon(work / "dockerd", insecure=[registry.host]).start()
    try:
        ctx = work / "ctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(
            f"FROM {registry.host}/{repo}:2 AS model\nFROM {registry.host}/{repo}:1\n"
            f"COPY --from=model /{MODELS} /{MODELS}\nCOPY --from=model /{SCORE} /{SCORE}\n")
        env = {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_HOST": daemon.base_url}
        t0 = time.monotonic()
        for tag in ("1", "2"):
            daemon.client.images.pull(f"{registry.host}/{repo}", tag=tag)
        subprocess.run(["docker", "build", "-q", "-t", f"{registry.host}/{repo}:2-dockerfile", str(ctx)],
                       env=env, check=True, capture_output=True)
        for line in daemon.client.images.push(f"{registry.host}/{repo}", tag="2-dockerfile", stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(line["error"])
        return time.monotonic() - t0
    finally:
        daemon.stop()


def timed_rebase(new_ref: str, old_ref: str, tag: str, mode: str, state: Path, warm: bool):
    """One rebase with its own state dir: cold = empty layer index; warm = OLD's layers indexed
    beforehand (untimed), as when OLD was NEW at the previous monthly release."""
    config = Config(state_dir=str(state))
    if warm:
        read_range(load_image(old_ref, config), cache=LayerIndex.for_config(config))
    t0 = time.monotonic()
    r = rebase(new_ref, old_ref, tag, config, paths=PATHS if mode == "paths" else None, auto=mode == "auto")
    if r.refused:
        raise SystemExit(f"{tag}: refused: {r.refused}")
    return r, time.monotonic() - t0


def _versus(seconds: float, dockerfile_s: float | None) -> str:
    return f"   (Dockerfile approach {dockerfile_s:.1f} s: {dockerfile_s / seconds:.1f}x slower)" if dockerfile_s else ""


def scenario(name, new_ref, old_ref, mode, config, work: Path, dockerfile_s=None, runs: int = 1,
             warm: bool = True) -> dict:
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for kind in ("cold", "warm") if warm else ("cold",):
        for i in range(runs):
            r, seconds = timed_rebase(new_ref, old_ref, f"{name}-rebased", mode, work / f"state-{name}-{kind}-{i}",
                                      kind == "warm")
            times[kind].append(seconds)
    cold, hot = statistics.median(times["cold"]), (statistics.median(times["warm"]) if warm else None)
    floor = floor_bytes(old_ref, new_ref, r.ref, config)
    row = {"scenario": name, "mode": mode, "naive": r.bytes_naive, "rebased": r.bytes_for_old_holders, "floor": floor,
           "seconds": cold, "warm_seconds": hot, "ref": r.ref, "warnings": len(r.warnings),
           "outside": len(r.outside_paths_changed)}
    say(f"\n== {name} ({mode}) ==")
    say(f"naive pull per OLD device   {r.bytes_naive:>12,d} B")
    say(f"rebased pull per OLD device {r.bytes_for_old_holders:>12,d} B   ({r.bytes_naive / r.bytes_for_old_holders:,.0f}x less)")
    say(f"physical floor              {floor:>12,d} B   (rebased/floor = {r.bytes_for_old_holders / floor:.3f})")
    runs_note = f" median of {runs}: " + " ".join(f"{t:.2f}" for t in times["cold"]) if runs > 1 else ""
    say(f"rebase time, cold index     {cold:>12.2f} s" + _versus(cold, dockerfile_s) + runs_note)
    if hot is not None:
        runs_note = f" median of {runs}: " + " ".join(f"{t:.2f}" for t in times["warm"]) if runs > 1 else ""
        say(f"rebase time, OLD indexed    {hot:>12.2f} s" + _versus(hot, dockerfile_s) + runs_note)
    if mode == "paths":
        say(f"outside-path differences: {len(r.outside_paths_changed)}, warnings: {len(r.warnings)}")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheels", default=str(Path(tempfile.gettempdir()) / "fleet-bench-wheels"))
    ap.add_argument("--big-gb", type=float, default=1.0, help="size of the big base layer (0 to skip)")
    ap.add_argument("--runs", type=int, default=3, help="timed rebases per kind (cold/warm) of the seed scenario")
    args = ap.parse_args()
    wheels = Path(args.wheels)
    wheels.mkdir(parents=True, exist_ok=True)
    fetch_wheels(wheels)
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    registry = RegistryServer(work / "registry").start()
    config = Config()
    client = RegistryClient(registry.host, config)
    try:
        say("installing wheels and building layers …")
        deps13 = install(wheels, "1.3.2", wheels.parent / "fleet-bench-site-1.3.2")
        deps14 = install(wheels, "1.4.2", wheels.parent / "fleet-bench-site-1.4.2")
        base = base_layer(16)
        d1, d2, d3 = (dir_layer(deps13, SITE, 1_700_000_000), dir_layer(deps13, SITE, 1_800_000_000),
                      dir_layer(deps14, SITE, 1_900_000_000))
        a1, a2 = app_layer(1), app_layer(2)
        say(f"base {base.size:,d} B, deps {d1.size:,d} B (rebuilt {d2.size:,d} B, bumped {d3.size:,d} B), app {a2.size:,d} B")
        repo = "bench/scoring"
        push_image(client, repo, "1", [(base, "base"), (d1, "pip install"), (a1, "COPY model")])
        push_image(client, repo, "2", [(base, "base"), (d2, "pip install"), (a2, "COPY model")])
        push_image(client, repo, "3", [(base, "base"), (d3, "pip install"), (a2, "COPY model")])
        ref = lambda t: f"{registry.host}/{repo}:{t}"  # noqa: E731
        say("running the two-stage Dockerfile approach on a real dockerd …")
        dockerfile_s = dockerfile_approach(registry, repo, work)
        blobs = unshared_blobs(ref("1"), ref("2"), config)
        floors = [read_floor(blobs) for _ in range(args.runs)]
        floor_s, tar_bytes = statistics.median(f[0] for f in floors), floors[0][1]
        seed = scenario("seed-v2-onto-v1", ref("2"), ref("1"), "paths", config, work, dockerfile_s, runs=args.runs)
        issue24(floor_s, [f[0] for f in floors], blobs, tar_bytes, seed, dockerfile_s)
        del blobs
        bump = scenario("bump-v3-onto-v1", ref("3"), ref("1"), "auto", config, work)
        equal = verify_images(bump["ref"], ref("3"), config).equal
        say(f"verify rebased v3 == v3: {equal}")
        if args.big_gb > 0:
            mb = int(args.big_gb * 1024)
            say(f"\nbuilding a {mb} MB base layer …")
            big = base_layer(mb, seed=1)
            push_image(client, "bench/big", "1", [(big, "base"), (d1, "pip install"), (a1, "COPY model")])
            push_image(client, "bench/big", "2", [(big, "base"), (d2, "pip install"), (a2, "COPY model")])
            big_size = big.size
            del big  # the 1 GB blob held in memory, and its upload still being written back to disk,
            os.sync()  # would otherwise slow the timed rebases (a standalone run shows no difference)
            bigrow = scenario("seed-with-1GB-base", f"{registry.host}/bench/big:2", f"{registry.host}/bench/big:1",
                              "paths", config, work, runs=args.runs, warm=False)
            say(f"rebase time with a {big_size / 1e9:.2f} GB base: {bigrow['seconds']:.2f} s vs {seed['seconds']:.2f} s "
                f"with a {base.size / 1e6:.0f} MB base (ratio {bigrow['seconds'] / seed['seconds']:.2f})")
        return 0 if equal else 1
    finally:
        client.close()
        registry.stop()


if __name__ == "__main__":
    sys.exit(main())
