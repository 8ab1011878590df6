"""A series of naive ML releases and what rebasing each onto what devices run costs.

Release m = the same base layer + the dependency layer rebuilt (same files, new timestamps:
a new blob every time) + an app layer with a new model (`model_bytes` of noise, seed m) and
the same scoring script. Each release is rebased with `--paths /var/azureml-app` onto the
image devices run (the previous rebased image; release 1 itself at first), as
`rollout --auto-rebase` does. Per release it records the layers of what devices run, the
bytes an old holder pulls, a fresh device pulls, the naive image, and the floor: the gzip'd
changed files (a tar of just the new model) + the rebased manifest and config.
Used by tests/integration/test_release_series.py and bench/release_series.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet_tui.oci.image import load_image
from fleet_tui.oci.layer import Entry, write_layer
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rebase import rebase
from tests.support.images import MODEL_DIR, SCORE, base_layer, build, deps_layer, noise

PATHS = ["/var/azureml-app"]


@dataclass(frozen=True)
class Month:
    index: int
    layers: int  # of the image devices run after this release
    old_holder: int  # bytes a device running the previous image pulls
    fresh: int  # bytes a device holding nothing pulls
    naive: int  # bytes of the naive image (what a fresh device would pull without fleet-tui)
    floor: int  # gzip of the changed files + manifest + config

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def push_release(store: Any, repo: str, m: int, deps_size: int, model_bytes: int) -> str:
    app = write_layer([Entry("var", kind="dir", mode=0o755), Entry("var/azureml-app", kind="dir", mode=0o755),
                       Entry(MODEL_DIR, kind="dir", mode=0o755),
                       Entry(f"{MODEL_DIR}/model.pkl", data=noise(model_bytes, 1000 + m)),
                       Entry(SCORE, data=b"def run(x):\n    return model(x)\n")], mtime=1_700_000_000 + m * 86_400)
    image = build([(base_layer(), "ADD base"), (deps_layer(deps_size, mtime=1_700_000_000 + m * 86_400), "pip install"),
                   (app, "COPY azureml-app")])
    return image.push(store, repo, f"r{m}")


def floor_bytes(model_bytes: int, m: int, manifest: int, config: int) -> int:
    changed = write_layer([Entry(f"{MODEL_DIR}/model.pkl", data=noise(model_bytes, 1000 + m))])
    return changed.size + manifest + config


def run_series(store: Any, host: str, repo: str, config: Any, releases: int, deps_size: int = 400_000,
               model_bytes: int = 60_000, append: bool = False) -> list[Month]:
    months: list[Month] = []
    push_release(store, repo, 1, deps_size, model_bytes)
    running = f"{host}/{repo}:r1"
    for m in range(2, releases + 1):
        push_release(store, repo, m, deps_size, model_bytes)
        new = f"{host}/{repo}:r{m}"
        result = rebase(new, running, f"r{m}-rebased{'-append' if append else ''}", config, paths=PATHS, append=append)
        assert result.pushed and not result.refused, result.refused
        before, now, naive = load_image(running, config), load_image(result.ref, config), load_image(new, config)
        months.append(Month(
            m, len(now.layers), plan_pull(now, [before]).total_bytes, plan_pull(now, []).total_bytes,
            plan_pull(naive, []).total_bytes, floor_bytes(model_bytes, m, now.manifest_bytes, now.config_bytes)))
        running = result.ref
    return months
