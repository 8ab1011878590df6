"""Small things an operator hit walking the demo at 80×24, on the seeded fake data."""

from __future__ import annotations

import pytest

from fleet_tui.ui.formatting import short_ref
from fleet_tui.ui.screens.preview import PreviewScreen
from tests.support.console_fakes import RecordingConsoleData
from tests.ui.conftest import make_app, screen_text, wait_for
from tests.ui.scenes import TARGET

pytestmark = pytest.mark.anyio


def test_pinned_refs_in_an_embedded_store_stay_short() -> None:
    ref = "oci:/tmp/demo/store@sha256:6c6c8450ef327b8e684f1f7c9649f0da06bd042339d44c2e1a5653f89a392883"
    assert short_ref(ref) == "store@6c6c8450ef32"
    assert short_ref("oci:/tmp/demo/store:2") == "store:2"


async def test_preview_next_group_key_is_not_taken_by_the_table() -> None:
    data = RecordingConsoleData()
    app = make_app(data, target=TARGET)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PreviewScreen) and app.screen.loaded)
        first = app.screen.group
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.group != first and f"Preview for {app.screen.group}" in screen_text(app))
        assert "n Next group" in screen_text(app).splitlines()[-1]
