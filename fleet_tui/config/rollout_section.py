"""The `[rollout]` section: default policy of `rollout start` (flags override each key).

`fleet_tui.rollout.policy.Policy.from_config` builds the immutable policy a rollout is
journalled with from this section; the journal stores the policy, so a resumed engine
never re-reads the config. Waves are cumulative (`1,10%,50%,100%`: one device, then up to
10 % of the group, …).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from fleet_tui import units, windows
from fleet_tui.config.sections import Section
from fleet_tui.config.units import Duration, Form, Strs, Threshold
from fleet_tui.errors import UsageError
from fleet_tui.units import parse_threshold

DEFAULT_WAVES = ("1", "10%", "50%", "100%")


def parse_waves(value: Any) -> Any:
    """`"1,10%,100%"` or `["1", "10%", "100%"]` (numbers allowed) → a tuple of thresholds."""
    if isinstance(value, str):
        value = [s for s in (part.strip() for part in value.split(",")) if s]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("no waves given")
        return tuple(parse_threshold(v) for v in value)
    return value


def parse_windows(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        for window in value:
            _as_value_error(windows.parse_window, window)
        return tuple(value)
    return value


def _as_value_error(check: Any, value: Any) -> Any:
    """Run a check so its complaint reaches the config loader, which names the key."""
    try:
        return check(value)
    except UsageError as exc:  # "… is invalid: give …": the loader says the first half itself
        raise ValueError(str(exc).partition(" is invalid: ")[2] or str(exc)) from None


Windows = Annotated[
    tuple[str, ...], BeforeValidator(parse_windows),
    Form("maintenance windows: [\"22:00-05:00\"] (HH:MM-HH:MM, 24-hour)"),
]


Waves = Annotated[
    tuple[str, ...], BeforeValidator(parse_waves),
    Form("cumulative waves: \"1,10%,50%,100%\" or a list of counts and percentages"),
]


class RolloutSection(Section):
    waves: Waves = Field(DEFAULT_WAVES, description="cumulative wave sizes, canary first")
    success: Threshold = Field("95%", description="devices of a wave that must run the target to pass its gate")
    gate_timeout: Duration = Field(600.0, ge=0, description="time from a wave's start until its gate fails")
    max_failed: Threshold = Field("10%", description="failed devices (of those finished) that fail the gate")
    min_finished: int = Field(10, ge=1, description="finished devices before `max_failed` applies (capped at the wave size)")
    bake: Duration = Field(0.0, ge=0, description="wait after a passed gate before the next wave")
    approve_each: bool = Field(False, description="wait for `rollout approve` before every wave after the first")
    on_failure: Literal["halt", "rollback"] = Field("halt", description="what a failed gate does")
    seed: int = Field(0, description="seed of the stable device order (same seed → same canary)")
    poll: Duration = Field(1.0, gt=0, description="how often the engine reads device state from the hub")
    budget: str = Field("", description="most a rollout may spend: money (`\"$50\"`, in `[cost] currency` at "
                        "`per_gb`) or bytes (`\"5 GB\"`); a wave that would cross it is not started (the rollout "
                        "halts); `\"\"` = no budget")
    rate: float = Field(0.0, ge=0, description="devices told to update per minute at most (0 = no limit)")
    rate_factor: float = Field(1.0, ge=1, description="exponential rate: multiply `rate` by this each time "
                               "`rate_every` more devices succeeded")
    rate_every: int = Field(0, ge=0, description="devices that must succeed before the rate rises (0 = constant rate)")
    max_downloading: int = Field(0, ge=0, description="devices updating at once across the group (0 = no limit)")
    windows: Windows = Field((), description="maintenance windows (`\"22:00-05:00\"`, 24-hour, an end before "
                             "the start crosses midnight): waves start and devices are told to update only inside "
                             "one; `[]` = any time")
    timezone: str = Field("UTC", description="IANA time zone of `windows` for groups not in `timezones`")
    pre_stage: bool = Field(False, description="download ahead: the waves only pull the new image next to the running "
                            "one (a stopped stage module), then one switch wave moves every device to it at once")
    unmetered_links: Strs = Field((), description="link names not paid by the byte (e.g. `[\"wifi\", \"depot\"]`): "
                                  "devices reporting one go first; `[]` = ignore links")
    metered_windows: Windows = Field((), description="with `unmetered_links`: devices on any other link are told "
                                     "to update only inside these windows (`[\"01:00-05:00\"]`); `[]` = no hold")
    retries_download: int = Field(0, ge=0, description="times a device whose download failed is told to try again "
                                  "before it counts as failed")
    retries_start: int = Field(0, ge=0, description="times a device whose module exited on start is told to try "
                               "again before it counts as failed")
    retry_backoff: Duration = Field(30.0, ge=0, description="wait after a failure before the first retry, doubling "
                                    "with each further one")
    timezones: dict[str, str] = Field(default_factory=dict, description="time zone per group, e.g. "
                                      "`{ vans = \"Europe/Berlin\" }`")

    @field_validator("budget")
    @classmethod
    def _budget_form(cls, budget: str) -> str:
        _as_value_error(units.check_budget_form, budget)
        return budget

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        _as_value_error(windows.zone, name)
        return name

    @field_validator("timezones")
    @classmethod
    def _known_zones(cls, zones: dict[str, str]) -> dict[str, str]:
        for name in zones.values():
            _as_value_error(windows.zone, name)
        return zones

    @field_validator("waves")
    @classmethod
    def _counts_at_least_one(cls, waves: tuple[str, ...]) -> tuple[str, ...]:
        for wave in waves:
            if not wave.endswith("%") and int(wave) < 1:
                raise ValueError(f"wave {wave!r} is invalid: a wave count must be at least 1")
        return waves
