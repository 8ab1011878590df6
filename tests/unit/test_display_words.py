"""Words on screen (issue 25.9): counts agree with their nouns, a digest is shown once, keys in
the command palette read as typed, never as internal ids."""

from __future__ import annotations

import pytest

from fleet_tui.ui.bindings import SECTIONS, key_label
from fleet_tui.ui.formatting import named
from fleet_tui.units import plural

DIGEST = "sha256:" + "0cf457e24a47" + "0" * 52


def test_plural():
    assert plural(1, "device") == "1 device" and plural(2, "device") == "2 devices"
    assert plural(1, "repository", "repositories") == "1 repository" and plural(0, "repository", "repositories") == "0 repositories"
    assert plural(1000, "tag") == "1,000 tags"


@pytest.mark.parametrize("name, shown", [
    ("ml/scoring:1", "ml/scoring:1 0cf457e24a47"),       # a tag: the digest says which build
    ("store@0cf457e24a47", "store@0cf457e24a47"),       # a pinned ref names it already
    ("0cf457e24a47", "0cf457e24a47"),                   # an image known only by its digest
])
def test_a_digest_is_shown_once(name, shown):
    assert named(name, DIGEST) == shown


def test_palette_keys_read_as_typed():
    labels = {k.id: key_label(k.keys) for keys in SECTIONS.values() for k in keys}
    assert labels["app.help"] == "?" and "question_mark" not in " ".join(labels.values())
    assert all("." not in label or label == "." for label in labels.values())  # no `app.help`-like ids
