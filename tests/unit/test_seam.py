"""fleet_tui.rebase.seam: which keeps are worth diffing, and the choice rule."""

from __future__ import annotations

from fleet_tui.oci.layer import LayerResult
from fleet_tui.rebase.diff import Diff
from fleet_tui.rebase.seam import Candidate, choose, worth_trying


def cand(keep: int, unpacked: int, kept_bytes: int, whiteouts: int = 0) -> Candidate:
    return Candidate(keep, Diff([], 0, 0), [], [], [], [object()] * whiteouts, kept_bytes, unpacked, 0)


def test_keeps_that_would_reship_live_files_are_never_diffed():
    append = cand(4, 2_000_000, 100)
    # layer 3 (a previous rebase layer) holds nothing NEW keeps; layer 2 (the old app layer)
    # 1 KB of unchanged files; layer 1 (dependencies) 60 MB of them
    live = {3: 0, 2: 1_000, 1: 60_000_000}
    assert worth_trying([4, 3, 2, 1], append, live) == [3, 2]
    assert worth_trying([4, 3, 2, 1], append, {3: 5_000_000}) == []  # stops at the first that cannot


def test_choice_prefers_the_fresh_device_among_the_near_cheapest_for_old_holders():
    built: list[int] = []

    def build(c: Candidate, where: str) -> None:
        built.append(c.keep)
        c.layer = LayerResult(f"sha256:{c.keep:064d}", "", c.unpacked)

    candidates = [cand(4, 2_000_000, 90_000_000), cand(3, 2_001_000, 88_000_000), cand(2, 2_050_000, 60_000_000),
                  cand(1, 62_000_000, 1_000_000)]
    choice = choose(candidates, build, "/tmp/unused")
    assert choice.chosen.keep == 2  # within 5 % for old holders, and the least for a fresh device
    assert built == [2]  # only the winner is built
    assert choose([cand(4, 1000, 10), cand(3, 5000, 1)], build, "/tmp/unused").chosen.keep == 4  # too dear


