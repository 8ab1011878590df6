"""Subcommand modules; each exposes `register(subparsers)`. See fleet_tui/cli.py."""
