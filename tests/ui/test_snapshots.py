"""SVG snapshots of every screen at 80×24 and 160×48 on seeded data with a frozen clock
(baselines in tests/ui/__snapshots__; regenerate with `--snapshot-update` and review)."""

from __future__ import annotations

import pytest

from tests.ui.scenes import SCENES


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_screen_snapshot(snap_compare, scene, size) -> None:
    assert snap_compare(scene.make(), terminal_size=size, run_before=scene.run_before)
