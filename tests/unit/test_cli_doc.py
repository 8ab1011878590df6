"""docs/cli.md is in step with the parser (`--help`): a section per command, every flag of a
command named in its section, no flag named that the command does not have, no section for
a command that does not exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fleet_tui.cli import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs or not path:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaf_commands(sub, path + (name,))


def options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(option strings, positional metavars) of one command, --help excluded."""
    flags, positionals = set(), set()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            flags |= set(action.option_strings)
        else:
            positionals.add(str(action.metavar or action.dest))
    return flags, positionals


def sections() -> dict[str, str]:
    """`fleet-tui rollout start` → the text of its section."""
    text = DOC.read_text()
    parts = re.split(r"^### `(fleet-tui[^`]*)`[^\n]*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_command_has_a_section_and_every_section_a_command() -> None:
    commands = {" ".join(("fleet-tui",) + path) for path, _ in leaf_commands(build_parser())}
    documented = set(sections())
    assert sorted(commands - documented) == [], "commands missing from docs/cli.md"
    assert sorted(documented - commands) == [], "docs/cli.md documents commands that do not exist"


def test_every_flag_is_documented_and_every_documented_flag_exists() -> None:
    docs = sections()
    problems = []
    root = build_parser()
    global_flags, _ = options(root)  # -c, --read-only, … may be mentioned anywhere
    for path, parser in leaf_commands(root):
        name = " ".join(("fleet-tui",) + path)
        text = docs.get(name, "")
        flags, positionals = options(parser)
        named = set(re.findall(r"`[^`]*?(--?[a-zA-Z][\w-]*)", text))
        named = {f for f in named if f in flags or f.startswith("--")}
        for flag in sorted(flags):
            if not re.search(rf"`[^`]*{re.escape(flag)}(?![\w-])", text):
                problems.append(f"{name}: {flag} not documented")
        for flag in sorted(named - flags - global_flags - {"--help"}):
            problems.append(f"{name}: documents {flag}, which it does not have")
        for metavar in sorted(positionals):
            if f"`{metavar}`" not in text and metavar not in text:
                problems.append(f"{name}: positional {metavar} not documented")
    assert problems == []
