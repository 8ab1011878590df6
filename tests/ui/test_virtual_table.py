"""The virtual table: 100,000 rows mount and scroll by keys, sort, filter, keep the cursor
on its row across snapshots, and redraw only the lines that changed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from textual.app import App, ComposeResult

from fleet_tui.ui.widgets.virtual_table import Column, VirtualTable

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Row:
    id: str
    state: str
    n: int


def rows(count: int, bump: int = 0) -> list[Row]:
    return [Row(f"dev-{i:06d}", "failed" if i % 1000 == 7 else "running", (i * 7919 + bump) % 10007) for i in range(count)]


class TableApp(App[None]):
    def __init__(self, data: list[Row]) -> None:
        super().__init__()
        self.data = data

    def compose(self) -> ComposeResult:
        yield VirtualTable([Column("ID", lambda r: r.id, 12), Column("STATE", lambda r: r.state, 8),
                            Column("N", lambda r: r.n, 0, True)], key=lambda r: r.id, state_of=lambda r: r.state)

    def on_mount(self) -> None:
        self.query_one(VirtualTable).set_rows(self.data)
        self.query_one(VirtualTable).focus()


def visible_text(app: App) -> str:
    return "\n".join("".join(s.text for s in strip) for strip in app.screen._compositor.render_strips())  # noqa: SLF001


async def test_100k_rows_mount_and_scroll_by_keys() -> None:
    app = TableApp(rows(100_000))
    started = time.perf_counter()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        mounted = time.perf_counter() - started
        table = app.query_one(VirtualTable)
        assert "dev-000000" in visible_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor == 99_999 and "dev-099999" in visible_text(app)
        await pilot.press("pageup", "up", "home")
        await pilot.pause()
        assert table.cursor == 0 and "dev-000000" in visible_text(app)
    assert mounted < 10  # a loose sanity bound; the real figure is in bench/ui_scale.py


async def test_sort_and_filter_and_cursor_follows_key() -> None:
    app = TableApp(rows(20_000))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        await pilot.press("s", "s", "s")  # ID, STATE, N
        await pilot.pause()
        assert [r.n for r in table.view[:5]] == sorted(r.n for r in table.view)[:5]
        assert "N ▼" in visible_text(app)
        table.set_filter("failed")
        await pilot.pause()
        assert len(table.view) == 20 and all(r.state == "failed" for r in table.view)
        table.set_filter("")
        await pilot.press("down", "down")
        key = table.current_key
        table.set_rows(rows(20_000))  # a new snapshot: same rows, new objects
        assert table.current_key == key


async def test_new_snapshot_redraws_only_changed_lines() -> None:
    data = rows(1000)
    app = TableApp(data)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(VirtualTable)
        refreshed: list[object] = []
        original = table.refresh
        table.refresh = lambda *regions, **kw: (refreshed.append(regions), original(*regions, **kw))[1]  # type: ignore[method-assign]
        changed = list(data)
        changed[3] = Row(changed[3].id, "failed", changed[3].n)
        table.set_rows(changed)
        assert len(refreshed) == 1  # one row changed: one line redrawn
        refreshed.clear()
        table.set_rows(list(changed))
        assert refreshed == []  # nothing changed: nothing written


async def test_ids_too_long_for_their_column_keep_the_tail_that_tells_them_apart() -> None:
    class IdApp(App[None]):
        def compose(self) -> ComposeResult:
            yield VirtualTable([Column("DEVICE", lambda r: r.id, 14, keep_tail=True), Column("STATE", lambda r: r.state, 8)],
                               key=lambda r: r.id)

        def on_mount(self) -> None:
            self.query_one(VirtualTable).set_rows([Row(f"sim-drones-{i:05d}", "running", i) for i in range(3)])

    app = IdApp()
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        text = visible_text(app)
    assert all(f"sim-dro…-0000{i}" in text for i in range(3)), text  # not three identical "sim-drones-0…"


async def test_columns_give_way_in_order_when_the_terminal_is_narrow() -> None:
    class WideApp(App[None]):
        def compose(self) -> ComposeResult:
            yield VirtualTable([Column("DEVICE", lambda r: r.id, 0, keep_tail=True, min_width=18),
                                Column("STATE", lambda r: r.state, 8),
                                Column("DIGEST", lambda r: f"digest{r.n:06d}", 12, give_way=1),
                                Column("LINK", lambda r: "cellular", 10, give_way=2)], key=lambda r: r.id)

        def on_mount(self) -> None:
            self.query_one(VirtualTable).set_rows([Row(f"sim-drones-{i:05d}", "running", i) for i in range(3)])

    for width, shown, gone in ((80, ("DIGEST", "LINK"), ()), (48, ("LINK",), ("DIGEST",)), (36, (), ("DIGEST", "LINK"))):
        app = WideApp()
        async with app.run_test(size=(width, 8)) as pilot:
            await pilot.pause()
            text = visible_text(app)
        assert all(label in text for label in shown) and not any(label in text for label in gone), (width, text)
        assert "sim-drones-00002" in text, (width, text)  # the id keeps its room
