"""`fleet-tui journal init`: create or migrate the rollout journal's schema.

For a team's PostgreSQL journal (`[journal] url`, docs/team.md) this is the one command that
writes DDL: it creates the tables on an empty database, migrates an older schema, is a no-op
on a current one, and refuses a newer one (upgrade fleet-tui instead). Two hosts running it at
once are serialised by the server. For the SQLite journal it creates the file if missing.
Nothing it prints carries the password (the URL never holds one).
"""

from __future__ import annotations

import argparse

from fleet_tui.commands.context import Context
from fleet_tui.commands.output import add_json_flag, print_json
from fleet_tui.rollout.journal import Journal
from fleet_tui.rollout.journal_db import SCHEMA_VERSION


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("journal", help="the rollout journal: create or migrate its schema",
                       description="The rollout journal: SQLite in the state directory, or a team's PostgreSQL "
                       "database ([journal] url, docs/team.md).")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    i = jsub.add_parser("init", help="create or migrate the journal's schema (idempotent)",
                        description="Create the journal's tables (PostgreSQL: on the database [journal] url names; "
                        "run it once per database, from any host), migrate an older schema, or do nothing when it "
                        "is current. A schema newer than this fleet-tui is refused: upgrade fleet-tui.")
    add_json_flag(i)
    i.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    config = ctx.config
    journal = Journal.for_config(config, check=False)
    try:
        if journal.pg is not None:
            before, now = journal.pg.create_schema()
        else:
            before, now = SCHEMA_VERSION, SCHEMA_VERSION  # the SQLite file creates what it lacks on open
        where = journal.where
    finally:
        journal.close()
    what = ("created" if before is None else "already current" if before == now else f"migrated from version {before}")
    if args.json:
        print_json({"journal": where, "backend": "postgresql" if config.journal.url else "sqlite",
                    "schema_version": now, "before": before, "result": what})
    else:
        print(f"journal {where}: schema version {now} ({what})")
    return 0
