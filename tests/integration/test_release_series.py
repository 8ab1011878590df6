"""A year of releases on a real registry: each naive release rebased onto what devices run.

Done when (the issue's figures): the image devices run never has more than base, dependency
and app layers + 1; a device installed at the last release pulls ≤ 1.01 × the naive image;
an old holder's pull is ≤ 1.05 × the floor (gzip of the changed files + manifest + config)
every release. The same for 100 daily releases. With `append=True` (the old behaviour) the
image grows a layer per release — the test shows that too, so it can tell the two apart.
"""

from __future__ import annotations

import pytest

from tests.support.releases import run_series

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("releases", [12, 100])
def test_releases_stay_flat_and_cheap(registry, client, config, repo_name, releases):
    months = run_series(client, registry.host, repo_name, config, releases,
                        deps_size=400_000 if releases == 12 else 150_000, model_bytes=60_000 if releases == 12 else 20_000)
    print(f"\n[release-series] {releases} releases: layers {[m.layers for m in months]}")
    for m in months:
        assert m.layers <= 3 + 1, m
        assert m.old_holder <= 1.05 * m.floor, m
    last = months[-1]
    assert last.fresh <= 1.01 * last.naive, last


def test_appending_grows_the_image_every_release(registry, client, config, repo_name):
    months = run_series(client, registry.host, repo_name, config, 6, deps_size=200_000, model_bytes=40_000, append=True)
    assert [m.layers for m in months] == [4, 5, 6, 7, 8]
    assert months[-1].fresh > 1.3 * months[-1].naive  # every dead model is shipped to a new device
