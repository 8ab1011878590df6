"""The rollout screen's site rows: shown only for a rollout with sites, one per site — its cache
in words (warm, warming, HALTED), the warm-up's items, uplink bytes against the plan and their
cost, devices running, LAN bytes, and a halted site's reason — readable at 80x24."""

from __future__ import annotations

import dataclasses

import pytest

from fleet_tui.rollout.site_progress import SiteProgress
from tests.ui.conftest import make_app, screen_text, wait_for
from tests.ui.scenes import short_wave_rollout

pytestmark = pytest.mark.anyio

SITES = (
    SiteProgress("depot-3", "distribution", "ready", "", 4, 4, 4_020_000, 4_058_000, 20, 18, 80_400_000, 9.0),
    SiteProgress("yard-7", "distribution", "halted", "cache http://gw-7:5000 is unreachable", 1, 4, 0, 4_058_000,
                 20, 0, 0, 9.0),
)


def _with_sites(data, sites):
    plain = data.rollout
    data.rollout = lambda rid: dataclasses.replace(plain(rid), sites=sites)
    return data


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_each_site_has_a_row_with_its_cache_uplink_and_reason(size) -> None:
    data = _with_sites(short_wave_rollout(), SITES)
    app = make_app(data, rollout_id="r-0009", start="rollout")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: "depot-3" in screen_text(app), what="site rows")
        lines = screen_text(app).splitlines()
        depot = next(l for l in lines if "depot-3" in l)
        yard = next(l for l in lines if "yard-7" in l)
        assert "warm" in depot and "4/4" in depot and "4.0 MB of 4.1 MB" in depot and "18/20" in depot, depot
        assert "HALTED" in yard and "1/4" in yard and "0/20" in yard, yard
        assert "unreachable" in yard or yard.rstrip().endswith("…"), yard
        assert all(len(l) <= size[0] for l in lines)


async def test_no_site_rows_without_sites() -> None:
    app = make_app(short_wave_rollout(), rollout_id="r-0009", start="rollout")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "WAVE" in screen_text(app), what="the rollout")
        assert "SITE" not in screen_text(app) and not app.screen.query_one("#sites").display
