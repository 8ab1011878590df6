"""The embedded OCI image-layout store: same interface as the registry client."""

from __future__ import annotations

import json

import pytest

from fleet_tui.config import Config
from fleet_tui.errors import DigestMismatch, NotFound
from fleet_tui.oci.digest import sha256
from fleet_tui.oci.image import load_image
from fleet_tui.oci.layout import LayoutStore
from fleet_tui.planning.pullplan import plan_pull
from tests.support.images import ml_pair


def test_layout_round_trip(tmp_path):
    store = LayoutStore(tmp_path / "s", create=True)
    pair = ml_pair(store, "")
    assert store.list_tags("") == ["1", "2"]
    assert json.loads((tmp_path / "s" / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    v1 = load_image(f"oci:{tmp_path / 's'}:1", Config())
    v2 = load_image(f"oci:{tmp_path / 's'}:2", Config())
    assert (v1.digest, v2.digest) == (pair.v1, pair.v2)
    plan = plan_pull(v2, [v1])
    assert [l.needed for l in plan.layers] == [False, True, True]


def test_corrupt_push_leaves_nothing(tmp_path):
    store = LayoutStore(tmp_path / "s", create=True)
    with pytest.raises(DigestMismatch):
        store.push_blob("", sha256(b"abc"), b"abd")
    assert store.blob_size("", sha256(b"abc")) is None
    assert not [p for p in (tmp_path / "s" / "blobs" / "sha256").iterdir()]


def test_missing_layout_and_tag(tmp_path):
    with pytest.raises(NotFound, match="not an OCI image layout"):
        LayoutStore(tmp_path / "nope")
    store = LayoutStore(tmp_path / "s", create=True)
    with pytest.raises(NotFound, match="tag 'x' not found"):
        store.get_manifest("", "x")


def test_retag_replaces(tmp_path):
    store = LayoutStore(tmp_path / "s", create=True)
    pair = ml_pair(store, "")
    raw = store.get_manifest("", "2")
    store.put_manifest("", "1", raw.data, raw.media_type)
    assert store.head_manifest("", "1").digest == pair.v2
    assert store.list_tags("") == ["1", "2"]
