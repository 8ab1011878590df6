"""Every key of the console as data (posting style): one `Key` per action, grouped by where
it applies. Screens build their Textual BINDINGS from these lists, the help screen and the
command palette read the same lists, so a key documented is a key that works.

`danger` marks actions that change the fleet: they are disabled by `--read-only`, and the
ones in `CONFIRM` ask the operator to type the group name first. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Key:
    id: str  # stable id (tests, palette)
    keys: str  # Textual key spec, comma-separated alternatives
    action: str  # Textual action name
    description: str  # shown in the footer and help
    show: bool = True  # in the footer
    danger: bool = False  # changes the fleet: disabled when read-only


GLOBAL = [
    Key("app.help", "question_mark", "help", "Keys"),
    Key("app.fleet", "f", "goto('fleet')", "Fleet", show=False),
    Key("app.images", "i", "goto('images')", "Images"),
    Key("app.rollouts", "o", "goto('rollout')", "Rollout", show=False),
    Key("app.palette", "ctrl+p", "command_palette", "Commands", show=False),
    Key("app.quit", "q", "quit", "Quit"),
]

TABLE = [  # every list (the virtual table)
    Key("table.up", "up,k", "cursor(-1)", "Up", show=False),
    Key("table.down", "down,j", "cursor(1)", "Down", show=False),
    Key("table.page_up", "pageup", "page(-1)", "Page up", show=False),
    Key("table.page_down", "pagedown,space", "page(1)", "Page down", show=False),
    Key("table.top", "home,g", "edge(0)", "First row", show=False),
    Key("table.bottom", "end,G", "edge(1)", "Last row", show=False),
    Key("table.select", "enter", "select", "Open", show=False),
    Key("table.sort", "s", "sort", "Sort by next column", show=False),
]

LIST = [  # screens built around one list
    Key("list.filter", "slash", "filter", "Filter"),
    Key("list.back", "escape", "back", "Back"),
]

FLEET = [
    Key("fleet.open", "enter", "open_group", "Devices"),
    Key("fleet.preview", "p", "preview", "Preview"),
    Key("fleet.rollout", "r", "open_rollout", "Rollout"),
]

DEVICES = [
    Key("devices.open", "enter", "open_device", "Device"),
    Key("devices.preview", "p", "preview", "Preview"),
]

IMAGES = [
    Key("images.target", "t", "pick_target", "Set target"),
    Key("images.preview", "p", "preview", "Preview"),
    Key("images.diff", "d", "diff", "Diff"),
]

PREVIEW = [
    Key("preview.group", "n", "next_group", "Next group"),  # not g: the focused table's "first row"
    Key("preview.rebase", "b", "build_rebased", "Build rebased", danger=True),
    Key("preview.rollout", "R", "start_rollout", "Start rollout", danger=True),
]

ROLLOUT = [
    Key("rollout.pause", "p", "control('pause')", "Pause", danger=True),
    Key("rollout.resume", "u", "control('resume')", "Resume", danger=True),
    Key("rollout.approve", "a", "control('approve')", "Approve", danger=True),
    Key("rollout.abort", "A", "control('abort')", "Abort", danger=True),
    Key("rollout.rollback", "B", "control('rollback')", "Roll back", danger=True),
    Key("rollout.retry", "R", "control('retry')", "Retry", danger=True),
    Key("rollout.continue", "C", "control('continue')", "Continue", danger=True),
    Key("rollout.failed", "x", "only_failed", "Failed"),
    # not in the footer (a halted rollout's R/C/B/A need the room): the status line says `e` when it ends
    Key("rollout.report", "e", "report", "Report", show=False),
]


def hidden(keys: list[Key]) -> list[Key]:
    """The same keys, working but left out of the footer (help and the palette still list them)."""
    return [replace(k, show=False) for k in keys]


# The Rollout footer at 80 columns has room for its own keys, esc and ? only.
ROLLOUT_QUIET = hidden([k for k in LIST + GLOBAL if k.id in ("list.filter", "app.images", "app.quit")])

CONFIRM = {"rollout.abort", "rollout.rollback", "rollout.continue", "preview.rollout"}

SECTIONS = {
    "Everywhere": GLOBAL, "Lists": LIST + TABLE, "Fleet": FLEET, "Devices": DEVICES,
    "Images": IMAGES, "Preview": PREVIEW, "Rollout": ROLLOUT,
}


def find(key_id: str) -> Key:
    for keys in SECTIONS.values():
        for k in keys:
            if k.id == key_id:
                return k
    raise KeyError(key_id)


KEY_NAMES = {"question_mark": "?", "slash": "/", "escape": "esc", "pageup": "PgUp", "pagedown": "PgDn",
             "space": "space", "enter": "enter", "up": "↑", "down": "↓"}


def key_label(keys: str) -> str:
    """A binding's keys as an operator types them: `question_mark` → `?`, alternatives spaced."""
    return " ".join(KEY_NAMES.get(k, k) for k in keys.split(","))
