"""What every subcommand handler receives besides its arguments: the loaded config and
whether the operator asked for a read-only session. Built once by `fleet_tui.cli.main`;
handlers take `(args, ctx)` and return an exit code."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from fleet_tui.config import Config


@dataclass
class Context:
    config: Config
    read_only: bool = False


Handler = Callable[[argparse.Namespace, Context], int]
