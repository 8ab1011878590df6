"""The console's Textual-free parts: formatting (the saving line), the sampler thread, the
fake data's determinism and the rollout it simulates."""

from __future__ import annotations

import threading
import time

from fleet_tui.demo.fake_console import REPO
from fleet_tui.errors import NotFound
from fleet_tui.ui.formatting import bar, saving_line, short_ref
from fleet_tui.ui.sampler import Sampler
from tests.support.console_fakes import RecordingConsoleData


def test_saving_line_reads_like_the_issue() -> None:
    assert saving_line(81_500_000, 7_900, 1000, 720) == "81.5 MB → 7.9 kB per device, $58,680 → $5.69 for 1,000 devices"
    assert short_ref("127.0.0.1:5000/ml/scoring:2") == "ml/scoring:2"
    assert bar(1, 2) == "█████░░░░░  50%"


def test_sampler_keeps_latest_and_reports_errors_in_one_line() -> None:
    calls = iter([1, 2, NotFound("unknown group 'x'"), 3])

    def fetch() -> int:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    s = Sampler(fetch, interval=60)
    s.sample_once()
    s.sample_once()
    assert s.latest() == (2, 2, "")
    s.sample_once()
    assert s.latest() == (2, 2, "unknown group 'x'")  # the last good value stays
    s.sample_once()
    assert s.latest() == (3, 3, "")


def test_sampler_thread_fetches_off_the_caller_thread_and_stops_promptly() -> None:
    threads: list[str] = []
    s = Sampler(lambda: threads.append(threading.current_thread().name) or len(threads), interval=0.01, name="t-sampler").start()
    deadline = time.monotonic() + 2
    while s.latest()[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 1
    assert set(threads) == {"t-sampler"}


def test_fake_data_is_deterministic_and_rollout_moves_with_the_clock() -> None:
    a, b = RecordingConsoleData(), RecordingConsoleData()
    assert a.groups() == b.groups() and a.rollout("r-0001") == b.rollout("r-0001")
    first = a.rollout("r-0001")
    a.clock.advance(60)
    later = a.rollout("r-0001")
    assert later.bytes_total > first.bytes_total
    assert [w.size for w in later.waves] == [1, 60, 300, 239]
    a.control_rollout("r-0001", "pause")
    paused = a.rollout("r-0001")
    a.clock.advance(60)
    assert a.rollout("r-0001").bytes_total == paused.bytes_total and paused.state == "paused"


def test_fake_preview_naive_vs_rebased() -> None:
    data = RecordingConsoleData(rebased=True)
    p = data.preview(f"{REPO}:2", "vans-lte")
    assert p.naive.per_device == 81_504_600 and p.rebased is not None and p.rebased.per_device == 7_900
    assert p.naive.devices == 600
