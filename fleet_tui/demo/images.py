"""Build the demo image set into the embedded OCI store.

The set tells the product's story with real sizes:
- `1`: base → dependency layer (~72 MB of "site-packages") → app layer (model + scoring script);
- `2`: a naive rebuild: the same dependency files with new timestamps (so a new 72 MB
  blob) and a new model — what every device would download again;
- `3`: a dependency bump (scikit-learn 1.5.0 → 1.5.1: a few files really changed) and a new
  model — the case for `rebase --auto`.
Deterministic: same bytes on every machine (seeded content, fixed timestamps), so digests
in screenshots and docs are stable. Built once; a stamp file marks a complete store.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from fleet_tui.oci import mediatypes as mt
from fleet_tui.oci.build import ImageBuilder
from fleet_tui.oci.layer import Entry, LayerResult, files_layer, write_layer
from fleet_tui.oci.layout import LayoutStore

APP = "var/azureml-app"
MODEL_PATHS = (f"/{APP}/azureml-models", f"/{APP}/iot_score.py")
SITE = "usr/local/lib/python3.11/site-packages"
PACKAGES = {  # name: (version, MB of files)
    "numpy": ("1.26.4", 18), "scipy": ("1.13.1", 30), "pandas": ("2.2.2", 14), "scikit_learn": ("1.5.0", 10),
}
STAMP = ".fleet-demo-complete"
Progress = Callable[[str], None]


def _blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _dirs(path: str, seen: set[str], out: list[Entry]) -> None:
    parts = path.split("/")
    for i in range(1, len(parts)):
        d = "/".join(parts[:i])
        if d not in seen:
            seen.add(d)
            out.append(Entry(d, kind="dir", mode=0o755))


def deps_layer(mtime: int, bump: bool = False, scale: float = 1.0) -> LayerResult:
    """The dependency layer: packages with dist-info records and shared libraries."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for index, (name, (version, mb)) in enumerate(sorted(PACKAGES.items())):
        changed = bump and name == "scikit_learn"
        version = "1.5.1" if changed else version
        files = max(1, mb // 2)
        for f in range(files):
            path = f"{SITE}/{name}/_core{f}.cpython-311-x86_64-linux-gnu.so"
            seed = index * 1000 + f + (500 if changed and f == 0 else 0)
            _dirs(path, seen, entries)
            entries.append(Entry(path, data=_blob(int(2_000_000 * scale), seed), mode=0o755))
        meta = f"{SITE}/{name}-{version}.dist-info/METADATA"
        _dirs(meta, seen, entries)
        entries.append(Entry(meta, data=f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()))
        init = f"{SITE}/{name}/__init__.py"
        entries.append(Entry(init, data=f"__version__ = '{version}'\n".encode()))
    return write_layer(entries, mtime=mtime, compresslevel=1)


def app_layer(model_seed: int, score: str) -> LayerResult:
    model = b"\x80\x04\x95" + _blob(6000, model_seed)  # a pickled model's worth of bytes
    return files_layer({f"{APP}/azureml-models/model/1/model.pkl": model, f"{APP}/iot_score.py": score})


def base_layer() -> LayerResult:
    files = {"etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'}
    files.update({f"usr/lib/x86_64-linux-gnu/lib{n}.so.6": _blob(400_000, 90 + i) for i, n in enumerate("cmz")})
    return files_layer(files)


SCORE_V1 = "import joblib\n\ndef init():\n    global model\n    model = joblib.load('model.pkl')\n\ndef run(data):\n    return model.predict(data)\n"
SCORE_V2 = SCORE_V1.replace("return model.predict(data)", "return model.predict_proba(data)")


def _image(base: LayerResult, deps: LayerResult, app: LayerResult, release: str) -> ImageBuilder:
    b = ImageBuilder(family=mt.DOCKER, created=f"2026-{release}-01T00:00:00Z")
    b.add_layer(base, "/bin/sh -c #(nop) ADD file:4b03f2b in / ")
    b.add_empty_step('/bin/sh -c #(nop)  ENV PYTHONUNBUFFERED=1')
    b.add_layer(deps, "/bin/sh -c pip install --no-cache-dir -r requirements.txt")
    b.add_layer(app, "/bin/sh -c #(nop) COPY dir:azureml-app in /var/azureml-app ")
    b.add_empty_step('/bin/sh -c #(nop)  CMD ["python" "/var/azureml-app/iot_score.py"]')
    b.container.update({"Cmd": ["python", f"/{APP}/iot_score.py"], "WorkingDir": f"/{APP}",
                        "Labels": {"release": release}})
    return b


def build_demo_store(root: Path, progress: Progress = lambda s: None, scale: float = 1.0) -> LayoutStore:
    """Create (once) the demo store at `root` with tags 1, 2, 3."""
    if (root / STAMP).exists():
        return LayoutStore(root)
    store = LayoutStore(root, create=True)
    progress("building the base layer")
    base = base_layer()
    progress("building the dependency layer of v1 (~72 MB)")
    deps1 = deps_layer(mtime=1_767_225_600, scale=scale)
    _image(base, deps1, app_layer(1, SCORE_V1), "01").push(store, "", "1")
    progress("building v2: a naive rebuild (same dependencies, new timestamps, new model)")
    deps2 = deps_layer(mtime=1_769_904_000, scale=scale)
    _image(base, deps2, app_layer(2, SCORE_V2), "02").push(store, "", "2")
    progress("building v3: scikit-learn bumped to 1.5.1, new model")
    deps3 = deps_layer(mtime=1_772_323_200, bump=True, scale=scale)
    _image(base, deps3, app_layer(3, SCORE_V2), "03").push(store, "", "3")
    (root / STAMP).write_text("ok\n")
    return store
