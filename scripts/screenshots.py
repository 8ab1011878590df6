"""Regenerate screenshots/<screen>.svg (80×24 and 160×48) for every screen of the console,
from the same scenes the snapshot tests use (seeded fake data, frozen clock).

Run from the repository root: `python scripts/screenshots.py`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.scenes import SCENES  # noqa: E402

OUT = ROOT / "screenshots"
SIZES = {"": (80, 24), "-wide": (160, 48)}


async def shoot(scene, suffix: str, size: tuple[int, int]) -> Path:
    app = scene.make()
    async with app.run_test(size=size) as pilot:
        await scene.run_before(pilot)
        path = OUT / f"{scene.name}{suffix}.svg"
        app.save_screenshot(str(path.name), str(OUT))
        return path


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for scene in SCENES:
        for suffix, size in SIZES.items():
            path = asyncio.run(shoot(scene, suffix, size))
            print(f"{path.relative_to(ROOT)}  {size[0]}x{size[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
