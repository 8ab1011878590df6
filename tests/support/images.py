"""Test images assembled in Python: tar layers, gzip, config, manifest — pushed to any Store.

`ml_pair()` mimics the product's problem: base → dependency layer → app layer (model +
scoring script). v2 is a naive rebuild: the dependency layer has the same files with new
timestamps (so a new digest) and the app layer carries a new model.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import Entry, LayerResult, files_layer, write_layer
from fleet_tui.oci.store import Store

MODEL_DIR = "var/azureml-app/azureml-models"
SCORE = "var/azureml-app/iot_score.py"


def noise(n: int, seed: int) -> bytes:
    """Incompressible bytes (so layer sizes are realistic), deterministic by seed."""
    return random.Random(seed).randbytes(n)


def deps_layer(size: int = 300_000, mtime: int = 1_700_000_000, seed: int = 1) -> LayerResult:
    entries = [Entry("usr", kind="dir", mode=0o755), Entry("usr/lib", kind="dir", mode=0o755),
               Entry("usr/lib/python3", kind="dir", mode=0o755)]
    for i in range(3):
        entries.append(Entry(f"usr/lib/python3/pkg{i}.so", data=noise(size // 3, seed * 10 + i), mode=0o755))
    entries.append(Entry("usr/lib/python3/numpy-1.26.0.dist-info", kind="dir", mode=0o755))
    entries.append(Entry("usr/lib/python3/numpy-1.26.0.dist-info/METADATA", data=b"Name: numpy\nVersion: 1.26.0\n"))
    return write_layer(entries, mtime=mtime)


def app_layer(model: bytes, score: str = "def run(x):\n    return x\n") -> LayerResult:
    return files_layer({f"{MODEL_DIR}/model.pkl": model, SCORE: score})


def base_layer() -> LayerResult:
    return files_layer({"etc/os-release": "ID=fleet-test\n", "bin/placeholder": "#!/bin/sh\n"})


def build(layers: list[tuple[LayerResult, str]], family: str = mt.DOCKER, cmd: list[str] | None = None) -> ImageBuilder:
    b = ImageBuilder(family=family)
    b.add_empty_step("/bin/sh -c #(nop)  ARG RELEASE")
    for layer, step in layers:
        b.add_layer(layer, step)
    b.add_empty_step('/bin/sh -c #(nop)  CMD ["python"]')
    b.container["Cmd"] = cmd or ["python", f"/{SCORE}"]
    return b


@dataclass
class Pair:
    v1: str  # digests
    v2: str
    v1_builder: ImageBuilder
    v2_builder: ImageBuilder


def ml_pair(store: Store, repo: str, deps_size: int = 300_000, family: str = mt.DOCKER,
            tags: tuple[str, str] = ("1", "2")) -> Pair:
    """Push v1 and a naive-rebuild v2 that differs from v1 in exactly two layers."""
    base = base_layer()
    v1 = build([(base, "/bin/sh -c #(nop) ADD file:base in /"),
                (deps_layer(deps_size, mtime=1_700_000_000), "/bin/sh -c pip install -r requirements.txt"),
                (app_layer(noise(2000, 7)), "COPY azureml-models /var/azureml-app/azureml-models")], family)
    v2 = build([(base, "/bin/sh -c #(nop) ADD file:base in /"),
                (deps_layer(deps_size, mtime=1_800_000_000), "/bin/sh -c pip install -r requirements.txt"),
                (app_layer(noise(2000, 8), "def run(x):\n    return 2 * x\n"),
                 "COPY azureml-models /var/azureml-app/azureml-models")], family)
    return Pair(v1.push(store, repo, tags[0]), v2.push(store, repo, tags[1]), v1, v2)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def dirs_for(paths: list[str]) -> list[Entry]:
    """0755 directory entries for every parent of the given paths."""
    out: dict[str, Entry] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            out.setdefault(d, Entry(d, kind="dir", mode=0o755))
    return list(out.values())


def push_layers(store: Store, repo: str, tag: str, layers: list[list[Entry]], family: str = mt.DOCKER,
                cmd: list[str] | None = None, mtime: int = 1_700_000_000) -> str:
    """Push an image made of the given entry lists (one per layer); returns its manifest digest."""
    built = [(write_layer(entries, mtime=mtime), f"layer {i}") for i, entries in enumerate(layers)]
    return build(built, family, cmd).push(store, repo, tag)
