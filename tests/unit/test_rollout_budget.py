"""The rollout budget's one shape: parsed from policy text, journalled as a dict, read back."""

from __future__ import annotations

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.rollout.budget import Budget


def test_money_budget_converts_once_and_round_trips_through_the_journal_dict() -> None:
    budget = Budget.parse("$50", 0.4, "$")
    assert budget == Budget(125_000_000_000, 0.4, "$", "$50")
    assert budget.to_dict() == {"bytes": 125_000_000_000, "per_gb": 0.4, "currency": "$", "text": "$50"}
    assert Budget.from_dict(budget.to_dict()) == budget


def test_no_budget_is_none_in_both_directions() -> None:
    assert Budget.parse("", 0.4, "$") is None
    assert Budget.from_dict(None) is None
    assert Budget.from_dict({}) is None


def test_a_dict_journalled_before_the_type_reads_back() -> None:
    old = {"bytes": 5_000_000_000, "per_gb": 0.0, "currency": "$", "text": "5 GB"}
    budget = Budget.from_dict(old)
    assert budget is not None and budget.bytes == 5_000_000_000 and budget.text == "5 GB"
    assert budget.money(1234) == "1,234 B"  # no price: bytes


def test_money_formatting_and_fitting_waves() -> None:
    budget = Budget(10_000_000_000, 1.0, "$", "$10")
    assert budget.money(5_700_000_000) == "$5.70"
    assert budget.money(1_234_000_000_000) == "$1,234"
    assert budget.allows(10_000_000_000) and not budget.allows(10_000_000_001)
    assert budget.fitting([4_000_000_000, 6_000_000_000, 1]) == (2, 10_000_000_000)
    assert budget.fitting([11_000_000_000]) == (0, 0)


def test_a_budget_in_another_currency_is_refused() -> None:
    with pytest.raises(UsageError):
        Budget.parse("€50", 0.4, "$")
