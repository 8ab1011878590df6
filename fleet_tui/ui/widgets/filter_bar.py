"""The `/` filter line under a list (k9s style): hidden until asked for; typing narrows the
list as you type, `enter` keeps the filter and returns to the list, `escape` clears it."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    class Done(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs: object) -> None:
        super().__init__(placeholder="filter: type to narrow, enter to keep, esc to clear", **kwargs)
        self.display = False

    def open(self) -> None:
        self.display = True
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Done(""))

    async def action_submit(self) -> None:
        self.display = bool(self.value)
        self.post_message(self.Done(self.value))
