"""docs/azure.md's first real session (issue 25.10) stays true: its complete config is a
valid fleet-tui config, and every `fleet-tui …` command of the safe first session is one the
CLI accepts — flags and all — so a first session on a real hub does not start with an error."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from fleet_tui.cli import build_parser
from fleet_tui.config import parse_config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "azure.md").read_text()
SESSION = DOC.split("## A first real session", 1)[1].split("\n## ", 1)[0]


def test_the_documented_config_is_valid_and_names_secrets_only_by_reference():
    block = SESSION.split("```toml", 1)[1].split("```", 1)[0]
    config = parse_config(tomllib.loads(block))
    assert config.hub.kind == "azure" and config.hub.connection_string_env == "IOTHUB_CONNECTION_STRING"
    auth = config.registry.auth["fleetacr.azurecr.io"]
    assert auth.password_env == "ACR_PUSH_PASSWORD" and "password =" not in block


def test_every_command_of_the_first_session_parses():
    commands = re.findall(r"`(fleet-tui [^`]+)`", SESSION)
    assert len(commands) >= 5, commands
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command.replace("REF", "fleetacr.azurecr.io/ml/scoring:2").replace("ID", "r1234"))[1:]
        if argv[-1:] == ["--read-only"]:  # the console is the default subcommand
            argv.append("console")
        parser.parse_args(argv)  # argparse exits (SystemExit) on a flag or subcommand that does not exist
