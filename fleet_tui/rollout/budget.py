"""A rollout's budget: what it may spend on device downloads, in bytes, and how to say it.

The policy holds the operator's text (`"$50"`, `"5 GB"`); `rollout start` turns it into a
`Budget` at the price of the config's `[cost]` section and journals it with the rollout
(`spec["budget"]`, the dict `to_dict` writes, or None), so a resumed engine judges with the
limit and price the rollout started with, never with a config edited since. Both checks
read this one type: `create.check_budget` (refuses a plan over it unless confirmed) and the
engine's wave start (`tagging.WaveTagging.start_wave`, halts before a wave that would cross it).

Invariants:
- `bytes` is the limit; a money budget is converted once, at `per_gb`;
- amounts are shown as money when there is a price (`per_gb` > 0), else as bytes — also
  for a budget given as a size, when the config has a price;
- `from_dict(to_dict())` is the identity, and `from_dict` reads every rollout journalled
  before this type existed (the same keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from fleet_tui import units


@dataclass(frozen=True)
class Budget:
    bytes: int  # the limit
    per_gb: float  # price of a gigabyte when the rollout started (0: no price)
    currency: str
    text: str  # as the operator gave it

    @classmethod
    def parse(cls, text: str, per_gb: float, currency: str) -> Budget | None:
        """The budget `text` means at this price; None when there is none (`""`)."""
        limit = units.budget_bytes(text, per_gb, currency)
        return None if limit is None else cls(limit, per_gb, currency, text)

    def allows(self, nbytes: int) -> bool:
        """Spending `nbytes` in all stays within the budget (reaching it exactly is within)."""
        return nbytes <= self.bytes

    def money(self, nbytes: int) -> str:
        return units.priced(nbytes, self.per_gb, self.currency)

    def fitting(self, per_wave: Sequence[int]) -> tuple[int, int]:
        """(how many leading waves fit in the budget, what they cost in bytes)."""
        fit, total = 0, 0
        while fit < len(per_wave) and total + per_wave[fit] <= self.bytes:
            total += per_wave[fit]
            fit += 1
        return fit, total

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "per_gb": self.per_gb, "currency": self.currency, "text": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Budget | None:
        if not data or data.get("bytes") is None:
            return None
        return cls(int(data["bytes"]), float(data.get("per_gb") or 0.0), str(data.get("currency", "$")),
                   str(data.get("text") or ""))
