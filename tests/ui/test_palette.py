"""The command palette (ctrl+p) lists every action with the key an operator types for it —
`key ?`, never Textual's name for the key or an internal id such as `(app.help)`."""

from __future__ import annotations

import pytest

from tests.ui.conftest import loaded, make_app, wait_for

pytestmark = pytest.mark.anyio


async def test_palette_entries_show_keys_as_typed(fake) -> None:
    app = make_app(fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: loaded(app), what="fleet")
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Everywhere: Keys"] == "key ?"
        ours = [h for t, h in commands.items() if ":" in t]
        assert ours and not [h for h in ours if "(" in h or "question_mark" in h or "app." in h], ours
