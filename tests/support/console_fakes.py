"""Test-only pieces around the seeded console data (fleet_tui.demo.fake_console): a clock
the test moves by hand, and a `ConsoleData` that records every action the UI sends, which
the pilot tests assert on."""

from __future__ import annotations

from typing import Any

from fleet_tui.demo.fake_console import T0, FakeConsoleData


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingConsoleData(FakeConsoleData):
    """The seeded data on a `FakeClock` (unless given a clock), with `sent`: every action, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("clock", FakeClock())
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, ...]] = []

    def build_rebased(self, target: str, group: str) -> str:
        ref = super().build_rebased(target, group)
        self.sent.append(("build_rebased", target, group))
        return ref

    def start_rollout(self, target: str, group: str, rebase: bool = False) -> str:
        rid = super().start_rollout(target, group, rebase)
        self.sent.append(("start_rollout", target, group))
        return rid

    def save_report(self, rollout_id: str) -> str:
        self.sent.append(("save_report", rollout_id))
        return super().save_report(rollout_id)

    def control_rollout(self, rollout_id: str, action: str) -> str:
        result = super().control_rollout(rollout_id, action)
        self.sent.append((action, rollout_id))
        return result
