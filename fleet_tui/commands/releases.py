"""`fleet-tui releases REPO` and `fleet-tui prune REPO [--yes]`: a repository's lineage, and
removing the rebased releases nothing needs any more (fleet_tui.planning.lineage)."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_tui.commands.output import add_json_flag, print_json, table
from fleet_tui.errors import UsageError
from fleet_tui.hub import open_hub
from fleet_tui.oci.digest import short
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.planning.lineage import Release, release_lineage
from fleet_tui.rollout.audit import record_for_config
from fleet_tui.rollout.journal import Journal
from fleet_tui.units import plural, size


def register(sub: Any) -> None:
    p = sub.add_parser("releases", help="a repository's tags: what each was rebased onto, depth, dead bytes, use",
                       description="Every tag of REPO with its lineage: whether fleet-tui rebased it and onto what, "
                                   "how many rebases are stacked below it, dead bytes it carries (earlier rebase "
                                   "layers a newer one replaced), devices running it and rollouts naming it.")
    p.add_argument("repository", metavar="REPO", help="repository: host/ns/name, or oci:DIR (an image layout)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_releases)
    p = sub.add_parser("prune", help="delete rebased releases no device runs, no rollout names, nothing builds on",
                       description="List (default) or delete (--yes) the rebased tags of REPO that no device runs, "
                                   "no journalled rollout names and no kept release was rebased onto. Naive builds "
                                   "are never deleted; manifests only — blobs stay until the registry's garbage "
                                   "collector removes those no manifest uses.")
    p.add_argument("repository", metavar="REPO", help="repository: host/ns/name, or oci:DIR (an image layout)")
    p.add_argument("--yes", action="store_true", help="delete them (default: only list what would go)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_prune)


def _lineage(args: argparse.Namespace, ctx: Any) -> tuple[Any, Any, list[Release]]:
    ref = parse_reference(args.repository, default_tag=None)
    store = open_store(ref, ctx.config)
    hub = open_hub(ctx.config)
    try:
        devices: dict[str, int] = {}
        for g in hub.group_summaries(ctx.config.hub.module):
            for digest, n in g.images.items():
                devices[digest] = devices.get(digest, 0) + n
    finally:
        hub.close()
    journal = Journal.for_config(ctx.config)
    try:
        rollouts = journal.referenced_digests()
    finally:
        journal.close()
    return ref, store, release_lineage(ref, store.list_tags(repo_of(ref)), ctx.config, devices, rollouts)


def cmd_releases(args: argparse.Namespace, ctx: Any) -> int:
    _, _, releases = _lineage(args, ctx)
    if args.json:
        print_json({"repository": args.repository, "releases": [r.to_json() for r in releases]})
        return 0
    tags = {r.digest: r.tag for r in releases}
    table(["TAG", "DIGEST", "REBASED ONTO", "DEPTH", "LAYERS", "FRESH PULL", "DEAD", "DEVICES", "ROLLOUTS", "PRUNABLE"],
          [[r.tag, short(r.digest) if r.digest else "-", (tags.get(r.base) or short(r.base)) if r.rebased else "-",
            r.depth, r.layers, size(r.bytes), size(r.dead_bytes), r.devices, len(r.rollouts),
            "yes" if r.prunable else ("error: " + r.error if r.error else "")] for r in releases], right=(3, 4, 5, 6, 7, 8))
    print(f"{plural(len(releases), 'tag')}, {sum(r.rebased for r in releases)} rebased, {sum(r.prunable for r in releases)} "
          "prunable (fleet-tui prune)")
    return 0


def cmd_prune(args: argparse.Namespace, ctx: Any) -> int:
    if args.yes and ctx.read_only:
        raise UsageError("prune --yes deletes manifests; drop --read-only to run it")
    ref, store, releases = _lineage(args, ctx)
    doomed = [r for r in releases if r.prunable]
    deleted: list[str] = []
    if args.yes:
        for digest in dict.fromkeys(r.digest for r in doomed):
            store.delete_manifest(repo_of(ref), digest)
            deleted.append(digest)
        if deleted:

            record_for_config(ctx.config, "prune", args.repository,
                              {"deleted": len(deleted), "kept": len(releases) - len(doomed), "tags": [r.tag for r in doomed]})
    if args.json:
        print_json({"repository": args.repository, "prunable": [{"tag": r.tag, "digest": r.digest} for r in doomed],
                    "deleted": deleted, "kept": len(releases) - len(doomed)})
        return 0
    for r in doomed:
        print(f"{'deleted' if args.yes else 'would delete'} {r.tag} {short(r.digest)} ({size(r.bytes)} fresh pull, "
              f"depth {r.depth})")
    verb = f"deleted {len(deleted)} manifests" if args.yes else f"{len(doomed)} prunable; run with --yes to delete them"
    blobs = "blobs stay in the directory" if ref.layout else "blobs stay until the registry's garbage collection"
    print(f"{verb}; {plural(len(releases) - len(doomed), 'tag')} kept ({blobs})")
    return 0
