"""Every subcommand and every argument of `fleet-tui` has help text, and every
`fleet-tui <cmd> --help` renders (exit 0) with it."""

from __future__ import annotations

import argparse

import pytest

from fleet_tui.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, path + (name,))


def missing_help(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            out += [" ".join(path + (name,)) for name in action.choices if not helps.get(name)]
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            out.append(f"{' '.join(path) or 'fleet-tui'} {'/'.join(action.option_strings) or action.metavar or action.dest}")
    return out


def test_every_argument_has_help_text():
    assert [m for path, p in commands(build_parser()) for m in missing_help(p, path)] == []


@pytest.mark.parametrize("path", [path for path, _ in commands(build_parser()) if path], ids=" ".join)
def test_every_subcommand_help_renders(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: fleet-tui")
