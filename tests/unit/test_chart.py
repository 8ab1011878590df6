"""The text step chart of bytes over time (fleet_tui.ui.chart)."""

from fleet_tui.ui.chart import resample, step_chart


def test_resample_holds_each_value_until_the_next_point():
    points = [(0.0, 0), (10.0, 100), (20.0, 300)]
    assert resample(points, 5) == [0, 0, 100, 100, 300]
    assert resample(points, 1) == [300]  # one column: the end
    assert resample([], 3) == [0, 0, 0]


def test_chart_draws_bars_in_proportion_and_the_last_column_full():
    rows = step_chart([(0.0, 0), (10.0, 50), (20.0, 100)], 3, 2)
    assert len(rows) == 2 and all(len(r) == 3 for r in rows)
    assert [r[-1] for r in rows] == ["█", "█"]  # the end: 100 % of the height
    assert rows[0][1] == " " and rows[1][1] == "█"  # half: the bottom row only
    assert rows[1][0] == " " and rows[0][0] == " "  # nothing at the start


def test_an_empty_series_is_a_baseline():
    assert step_chart([(0.0, 0), (5.0, 0)], 4, 3) == ["    ", "    ", "▁▁▁▁"]
