"""Textual `Binding`s built from the key data of fleet_tui.ui.bindings (the one place the
data-only key lists meet Textual)."""

from __future__ import annotations

from textual.binding import Binding

from fleet_tui.ui.bindings import Key


def textual_bindings(keys: list[Key]) -> list[Binding]:
    return [Binding(k.keys, k.action, k.description, show=k.show, id=k.id) for k in keys]
