"""`fleet-tui` entry point: the console by default, plus headless subcommands.

Each area registers its subcommands from `fleet_tui/commands/<area>.py` through a
`register(subparsers)` function; a handler takes `(args, ctx)` and returns an exit code.
Invariant: nothing but a one-line `fleet-tui: error: …` reaches stderr for an operator
error — `FleetError` is caught here, and any other exception is reported in one line too
(with its type) unless FLEET_TUI_DEBUG=1 asks for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import typing

import argcomplete

from fleet_tui import __version__
from fleet_tui.commands.context import Context, Handler
from fleet_tui.config import Config, load_config
from fleet_tui.errors import FleetError
from fleet_tui.secrets import redact
from fleet_tui.terminal_text import SafeStream, visible

# Areas whose modules exist are loaded; each adds its own subcommands.
AREAS = ["images", "rebase", "releases", "fleet", "preview", "sim", "rollout", "deployments", "console", "demo", "config",
         "doctor", "audit_log", "journal"]

EPILOG = """\
examples:
  fleet-tui demo                                  the whole story on an embedded fleet
  fleet-tui tags 127.0.0.1:5000/ml/scoring        tags of a repository
  fleet-tui layers 127.0.0.1:5000/ml/scoring:2    layers, sizes and build steps
  fleet-tui plan REPO:2 --have REPO:1             bytes a device holding :1 pulls for :2
  fleet-tui rebase REPO:2 --onto REPO:1 --paths /var/azureml-app --tag 2-rebased

Add --json to any data command for machine output. Registries on 127.0.0.1/localhost
use plain HTTP; others need --insecure-registry HOST:PORT for that.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the same one line as every other error (plus exit 2)."""

    def error(self, message: str) -> typing.NoReturn:
        hint = f"; see `{self.prog} --help`"
        self.exit(2, f"fleet-tui: error: {self.prog.removeprefix('fleet-tui ')}: {message}{hint}\n"
                  if self.prog != "fleet-tui" else f"fleet-tui: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fleet-tui",
        description="Ship container images to edge fleets for kilobytes: preview what each "
        "device pulls, rebase onto what it runs, roll out in staged waves.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", metavar="CONFIG.toml", help="config file (default: the user config dir)")
    parser.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST:PORT",
        help="use plain HTTP for this registry (repeatable)",
    )
    parser.add_argument("--read-only", action="store_true", help="disable every action that changes anything")
    parser.add_argument("--version", action="version", version=f"fleet-tui {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(f"fleet_tui.commands.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fleet_tui.commands.{area}":
                continue
            raise
        module.register(subparsers)
    return parser


def error(message: str) -> None:
    print(f"fleet-tui: error: {visible(redact(message))}", file=sys.stderr)  # one line, whatever the hub said


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argcomplete.autocomplete(parser)  # answers a shell's completion request and exits; else nothing
    args = parser.parse_args(argv)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)  # hub data never reaches the tty raw
    try:
        if getattr(args, "config_free", False):  # config show/check, completion: work with a broken config
            config = Config()
        else:
            config = load_config(args.config).with_insecure(args.insecure_registry)
        ctx = Context(config=config, read_only=args.read_only)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            console = sys.modules.get("fleet_tui.commands.console")
            if console is None:
                parser.print_help()
                return 0
            return console.run_console(args, ctx)
        return handler(args, ctx)
    except FleetError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if os.environ.get("FLEET_TUI_DEBUG"):
            raise
        error(f"unexpected {type(exc).__name__}: {exc} (set FLEET_TUI_DEBUG=1 for a traceback)")
        return 1
    finally:
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":
    sys.exit(main())
