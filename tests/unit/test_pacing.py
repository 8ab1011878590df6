"""Pacing rules (fleet_tui.rollout.pacing): budget forms, the tagging rate, maintenance windows
across midnight, several windows and daylight-saving changes, and the wave projection."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from fleet_tui import units, windows
from fleet_tui.errors import UsageError
from fleet_tui.rollout import pacing
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.projection import project_waves


def at(text: str, tz: str = "UTC") -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize("text, expected", [
    ("$50", 125_000_000), ("50$", 125_000_000), ("$0.40", 1_000_000), ("5 GB", 5_000_000_000),
    ("512 MiB", 512 * 2**20), ("1000", 1000), ("", None),
])
def test_budget_forms(text, expected):
    assert units.budget_bytes(text, 400.0, "$") == expected


@pytest.mark.parametrize("text, words", [
    ("€5", "prices data in '$'"), ("lots", "give money like"), ("5 XB", "give money like"), ("$-3", "give money"),
])
def test_bad_budgets_name_the_form(text, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        units.budget_bytes(text, 400.0, "$")


def test_money_budget_without_a_price_is_refused():
    with pytest.raises(UsageError, match="per_gb is 0"):
        units.budget_bytes("$5", 0.0, "$")


def test_rate_spaces_devices_and_never_exceeds_n_per_minute():
    times: list[float] = []
    for second in range(300):
        times += [float(second)] * pacing.rate_allowance(30.0, times, float(second))
    assert times[:3] == [0.0, 2.0, 4.0]
    assert all(sum(1 for t in times if s - 60 < t <= s) <= 30 for s in range(300))
    assert len(times) == 150


def test_fast_rates_tag_a_seconds_worth_per_poll_and_zero_means_unlimited():
    assert pacing.rate_allowance(600.0, [], 0.0) == 10
    assert pacing.rate_allowance(600.0, [0.0] * 10, 1.0) == 10
    assert pacing.rate_allowance(0.0, [0.0] * 10_000, 0.0) > 10**6


def test_exponential_rate_rises_with_successes():
    assert pacing.current_rate(10, 2.0, 50, 0) == 10
    assert pacing.current_rate(10, 2.0, 50, 49) == 10
    assert pacing.current_rate(10, 2.0, 50, 100) == 40
    assert pacing.current_rate(10, 1.0, 50, 1000) == 10


def test_overnight_window():
    assert windows.window_state(["22:00-05:00"], "UTC", at("2026-11-30T18:00:00")) == (False, 4 * 3600)
    assert windows.window_state(["22:00-05:00"], "UTC", at("2026-11-30T23:30:00")) == (True, 5.5 * 3600)
    assert windows.window_state(["22:00-05:00"], "UTC", at("2026-12-01T04:59:00")) == (True, 60)
    assert windows.window_state(["22:00-05:00"], "UTC", at("2026-12-01T05:00:00")) == (False, 17 * 3600)


def test_touching_windows_join_and_no_windows_is_always_open():
    assert windows.window_state(["10:00-11:00", "11:00-12:00"], "UTC", at("2026-11-30T10:30:00")) == (True, 5400)
    assert windows.window_state([], "UTC", 0.0)[0] is True


def test_window_in_the_groups_zone_across_a_dst_change():
    # Europe/Berlin leaves summer time on 2026-10-25 at 03:00 local: 02:00-04:00 local lasts 3 real hours
    start = at("2026-10-25T01:30:00", "Europe/Berlin")
    is_open, opens_in = windows.window_state(["02:00-04:00"], "Europe/Berlin", start)
    assert not is_open and opens_in == 1800
    is_open, closes_in = windows.window_state(["02:00-04:00"], "Europe/Berlin", start + 1800)
    assert is_open and closes_in == 3 * 3600


@pytest.mark.parametrize("text", ["25:00-01:00", "22:00", "10:00-10:00", "9:00-10:00", "10:60-11:00"])
def test_bad_windows_are_refused(text):
    with pytest.raises(UsageError, match="maintenance window"):
        windows.parse_window(text)


def test_policy_checks_pacing_values():
    with pytest.raises(UsageError, match="time zone 'Mars/Base'"):
        Policy(timezone="Mars/Base")
    with pytest.raises(UsageError, match="rate_factor"):
        Policy(rate_factor=0.5)
    with pytest.raises(UsageError, match="max_downloading"):
        Policy(max_downloading=-1)
    assert Policy(rate=5).paced and not Policy(budget="$5").paced
    round_trip = Policy(windows=("22:00-05:00",), budget="$5", rate=3)
    assert Policy.from_dict(round_trip.to_dict()) == round_trip


def test_projection_follows_the_rollouts_order_and_stops_fitting_at_the_first_crossing():
    ids = [f"d{i:02d}" for i in range(20)]
    bytes_of = {d: 100 for d in ids}
    waves = project_waves(Policy(waves=("1", "5", "10", "100%")), ids, set(), bytes_of, budget=700)
    assert [w.size for w in waves] == [1, 4, 5, 10]
    assert [w.cumulative for w in waves] == [100, 500, 1000, 2000]
    assert [w.within_budget for w in waves] == [True, True, False, False]
    offline_last = project_waves(Policy(waves=("1", "100%")), ids, set(ids[:19]), bytes_of, None)
    assert offline_last[0].within_budget and offline_last[0].size == 1


def test_span_text():
    assert [units.span(s) for s in (40, 300, 3 * 3600 + 12 * 60)] == ["40s", "5m", "3h12m"]


def test_an_exponential_rate_is_capped_instead_of_overflowing():
    from fleet_tui.rollout.pacing import MAX_RATE, current_rate

    assert current_rate(30, 2.0, 10, 50_000) == MAX_RATE  # 2 ** 5000 would overflow a float
    assert current_rate(30, 2.0, 10, 25) == 120 and current_rate(30, 1.0, 10, 10_000) == 30
