"""The registry's images as the Images screen lists them, and what changed between two.

Repositories are the config's `[registry] repositories`, or the default registry's catalog;
the newest `TAGS_PER_REPO` tags of each are listed, and every tag seen is remembered by its
digest so other screens name images (`ImageNames`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from fleet_tui.oci.image import load_image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.registry import RegistryClient
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.planning.lineage import rebase_stats
from fleet_tui.rebase.whatchanged import what_changed
from fleet_tui.ui.state import DiffView, DirRow, TagRow

if TYPE_CHECKING:
    from fleet_tui.config import Config
    from fleet_tui.ui.live_data import LiveConsoleData

TAGS_PER_REPO = 30


def created(doc: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(doc.get("created", "")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def repositories(config: "Config") -> list[str]:
    reg = config.registry
    if reg.repositories:
        return list(reg.repositories)
    if not reg.default:
        return []
    client = RegistryClient(reg.default, config)
    try:
        return [f"{reg.default}/{name}" for name in client.list_repositories()]
    finally:
        client.close()


class ImageReads:
    def __init__(self, live: "LiveConsoleData") -> None:
        self.live = live

    def tags(self) -> Sequence[TagRow]:
        config, names = self.live.config, self.live.names
        rows = []
        for repo in repositories(config):
            ref = parse_reference(repo, default_tag=None)
            for tag in open_store(ref, config).list_tags(repo_of(ref))[-TAGS_PER_REPO:]:
                img = load_image(f"{repo}:{tag}", config)
                names.remember(img.digest, f"{repo}:{tag}")
                dead = rebase_stats(img)[2]
                rows.append(TagRow(repo, tag, img.digest, img.layer_bytes, created(img.config.doc), len(img.layers), dead))
        return rows

    def what_changed(self, a: str, b: str) -> DiffView:
        w = what_changed(a, b, self.live.config)
        return DiffView(w.a, w.b, tuple((d.name, d.before or "-", d.after or "-") for d in w.distributions),
                        tuple(DirRow(d.directory, d.added, d.removed, d.changed, d.bytes,
                                     tuple(sorted(((f["path"], f["change"], f["bytes"]) for f in d.files),
                                                  key=lambda f: -f[2])))
                              for d in w.directories))
