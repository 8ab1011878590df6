"""The rehearsal's wave model (fleet_tui.rollout.rehearsal.rehearse_waves), on made-up devices."""

from __future__ import annotations

import datetime as dt

from fleet_tui.devices.linkmodel import LinkProfile
from fleet_tui.rollout.policy import Policy
from fleet_tui.rollout.rehearsal import DeviceModel, device_seconds, rehearse_waves

NOON = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc).timestamp()


def fleet(n: int, seconds: float = 10.0, failing: set[int] = frozenset()) -> tuple[list[str], dict[str, DeviceModel]]:
    ids = [f"d{i:03d}" for i in range(n)]
    return ids, {d: DeviceModel(seconds, ("start",) * 3 if i in failing else ("",)) for i, d in enumerate(ids)}


def test_waves_pass_one_after_another_and_bytes_add_up():
    ids, models = fleet(20)
    waves = rehearse_waves(Policy(poll=1.0), [ids[:1], ids[1:20]], [100, 1900], models, None, NOON, 1.0)
    assert [w.verdict for w in waves] == ["passes", "passes"]
    assert waves[0].end == waves[1].start and waves[1].end > waves[1].start >= 11
    assert sum(w.bytes for w in waves) == 2000


def test_budget_halts_before_the_crossing_wave_and_later_waves_are_not_reached():
    ids, models = fleet(10)
    waves = rehearse_waves(Policy(), [ids[:2], ids[2:5], ids[5:]], [200, 300, 100 * len(ids[5:])], models, 450, NOON, 1.0)
    assert [w.verdict for w in waves] == ["passes", "halts (budget)", "not reached"]


def test_failures_fail_the_gate_and_retries_of_the_right_kind_do_not_help_a_crash():
    ids, models = fleet(10, failing={1, 2})
    policy = Policy(max_failed="1", min_finished=2, retries_download=3)
    (wave,) = rehearse_waves(policy, [ids], [0], models, None, NOON, 1.0)
    assert wave.verdict == "fails" and wave.failed == 2 and "predicted to fail" in wave.risks[0]


def test_a_closed_window_delays_the_wave_and_says_so():
    ids, models = fleet(3)
    (wave,) = rehearse_waves(Policy(windows=("14:00-15:00",)), [ids], [0], models, None, NOON, 1.0)
    assert wave.start == 2 * 3600 and "waits 2h00m for its window" in wave.risks


def test_a_slow_wave_is_flagged_at_risk_and_a_slower_one_times_out():
    ids, models = fleet(5, seconds=500.0)
    (risky,) = rehearse_waves(Policy(gate_timeout=600), [ids], [0], models, None, NOON, 1.0)
    assert risky.verdict == "passes" and any("gate at risk" in r for r in risky.risks)
    (late,) = rehearse_waves(Policy(gate_timeout=300), [ids], [0], models, None, NOON, 1.0)
    assert late.verdict == "fails" and "times out" in late.risks[0]


def test_rate_spreads_the_wave():
    ids, models = fleet(31, seconds=1.0)
    (wave,) = rehearse_waves(Policy(rate=30), [ids], [0], models, None, NOON, 0.0)
    assert 59 <= wave.end - wave.start <= 63  # 30 devices after the first, 2 s apart


def test_device_seconds_follow_the_link():
    link = LinkProfile("cell", bandwidth=250_000, latency=0.1)
    assert device_seconds(500_000, [500_000], link, 256 * 1024, 3.0) == 2 + 0.4 + 3.0  # 2 chunks + manifest + config


def test_a_few_failures_among_equal_devices_do_not_trip_the_gate_first():
    """Devices that report between two engine polls are judged together, as the engine does —
    not one at a time, failures first (which would fail a 2 % failure rate against a 10 % limit)."""
    ids, models = fleet(100, failing={10, 60})
    (wave,) = rehearse_waves(Policy(max_failed="10%", min_finished=10), [ids], [0], models, None, NOON, 1.0)
    assert wave.verdict == "passes" and wave.failed <= 2


def test_an_exponential_rate_speeds_up_as_devices_succeed():
    ids, models = fleet(121, seconds=1.0)
    (flat,) = rehearse_waves(Policy(rate=30), [ids], [0], models, None, NOON, 1.0)
    (rising,) = rehearse_waves(Policy(rate=30, rate_factor=2.0, rate_every=20), [ids], [0], models, None, NOON, 1.0)
    assert 225 <= flat.end - flat.start <= 240  # the 115th success (95 %) is told ~228 s in, 2 s apart
    assert rising.end - rising.start < 0.6 * (flat.end - flat.start)  # doubling every 20 successes


def test_max_downloading_caps_how_many_update_at_once():
    ids, models = fleet(10, seconds=10.0)
    (free,) = rehearse_waves(Policy(), [ids], [0], models, None, NOON, 1.0)
    (capped,) = rehearse_waves(Policy(max_downloading=2), [ids], [0], models, None, NOON, 1.0)
    assert free.end - free.start < 15
    assert 50 <= capped.end - capped.start <= 60  # five rounds of two, each ~10 s and a poll


def test_metered_devices_wait_for_their_window_while_the_others_go():
    ids, models = fleet(6, seconds=5.0)
    policy = Policy(metered_windows=("14:00-15:00",), success="100%")
    (wave,) = rehearse_waves(policy, [ids], [0], models, None, NOON, 1.0, metered=frozenset(ids[3:]))
    assert wave.verdict == "passes" and 2 * 3600 <= wave.end - wave.start <= 2 * 3600 + 15
    (partial,) = rehearse_waves(Policy(metered_windows=("14:00-15:00",), success="50%"), [ids], [0], models, None,
                                NOON, 1.0, metered=frozenset(ids[3:]))
    assert partial.end - partial.start < 15  # half is enough: the unmetered three pass the gate at once


def test_a_pre_staged_rollout_adds_the_switch_of_every_device_with_no_bytes():
    ids, models = fleet(20, seconds=30.0)
    switch = {d: DeviceModel(2.0, ("",)) for d in ids}
    waves = rehearse_waves(Policy(rate=60), [ids[:1], ids[1:]], [100, 1900], models, None, NOON, 1.0,
                           switch=switch)
    assert [w.size for w in waves] == [1, 19, 20] and [w.verdict for w in waves] == ["passes"] * 3
    assert waves[2].bytes == 0 and sum(w.bytes for w in waves) == 2000
    assert waves[2].end - waves[2].start < 5  # every device told at once (no rate at the switch), 2 s each


def test_staging_waves_retry_nothing_as_the_engine_does():
    ids = [f"d{i}" for i in range(4)]
    models = {d: DeviceModel(5.0, ("download", "") if d == "d1" else ("",)) for d in ids}
    switch = {d: DeviceModel(1.0, ("",)) for d in ids}
    policy = Policy(retries_download=3, max_failed="0", min_finished=1)
    staged = rehearse_waves(policy, [ids], [0], models, None, NOON, 1.0, switch=switch)
    assert staged[0].verdict == "fails" and staged[1].verdict == "not reached"
    (plain,) = rehearse_waves(policy, [ids], [0], models, None, NOON, 1.0)
    assert plain.verdict == "passes"  # outside staging the download retry saves it


def test_a_maintenance_window_closing_mid_wave_holds_the_rest_until_it_reopens():
    ids, models = fleet(11, seconds=1.0)
    closing = dt.datetime(2026, 12, 1, 13, 59, 40, tzinfo=dt.timezone.utc).timestamp()  # 20 s before 14:00
    policy = Policy(windows=("13:00-14:00",), rate=30, success="100%")
    (wave,) = rehearse_waves(policy, [ids], [0], models, None, closing, 1.0)
    assert wave.end - wave.start > 23 * 3600  # half told before 14:00, the rest the next day at 13:00
