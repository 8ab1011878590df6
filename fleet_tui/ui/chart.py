"""A cumulative step chart in text (no Textual): bytes moved over a rollout's time, drawn
with block characters so it reads over SSH on any terminal with Unicode.

`step_chart(points, width, height)` resamples the (seconds, bytes so far) points — a step
function: the value holds until the next point — at `width` evenly spaced times and draws
each column as a bar `height` rows tall with eighth-block resolution on its top cell.
Invariants: the last column shows the last value; values never exceed the top row; an
empty or all-zero series draws a flat baseline.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

EIGHTHS = " ▁▂▃▄▅▆▇█"


def resample(points: Sequence[tuple[float, int]], width: int) -> list[int]:
    if not points or width < 1:
        return [0] * max(0, width)
    pts = sorted(points)
    times = [t for t, _ in pts]
    t0, t1 = times[0], times[-1]
    out = []
    for i in range(width):
        t = t1 if width == 1 else t0 + (t1 - t0) * i / (width - 1)
        k = bisect_right(times, t) - 1
        out.append(pts[max(0, k)][1])
    return out


def step_chart(points: Sequence[tuple[float, int]], width: int, height: int) -> list[str]:
    """`height` lines of `width` characters, top line first."""
    values = resample(points, width)
    top = max(values, default=0)
    if top <= 0:
        return [" " * width] * (height - 1) + ["▁" * width]
    rows = []
    for r in range(height - 1, -1, -1):  # r = rows below this one
        line = []
        for v in values:
            eighths = round(v / top * height * 8)
            filled = eighths - r * 8
            line.append("█" if filled >= 8 else EIGHTHS[max(0, filled)])
        rows.append("".join(line))
    return rows
