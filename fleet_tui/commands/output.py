"""Shared output helpers for subcommands: JSON printing, tables, the --json flag, duration flags.

Sizes and money are formatted by fleet_tui.units (one formatter for every view)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from fleet_tui.config import default_config_path
from fleet_tui.terminal_text import visible
from fleet_tui.units import parse_duration


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> None:
    rows = [[visible(str(c)) for c in r] for r in rows]  # one cell, one line: newlines and tabs escaped too
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            out.append(c.rjust(w) if i in right else c.ljust(w))
        return "  ".join(out).rstrip()

    print(fmt(headers))
    for r in rows:
        print(fmt(r))


def command(config: Any, *args: str) -> str:
    """A `fleet-tui` command line to suggest, with `-c FILE` when the config is not the default
    one (a hint that works only on the default config sends the operator to the wrong fleet)."""
    source = getattr(config, "source", "")
    named = source and Path(source).resolve() != default_config_path().resolve()
    return " ".join(["fleet-tui", *(("-c", shlex.quote(source)) if named else ()), *args])


def add_json_flag(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output (keys in docs/cli.md)")


def duration_arg(text: str) -> float:
    """argparse type for a duration flag: seconds, or "90s", "10m", "1h30m" (as in the config)."""
    try:
        value = parse_duration(text)
    except ValueError:
        value = None
    if not isinstance(value, float) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: give seconds or e.g. 90s, 10m, 1h30m")
    return value
