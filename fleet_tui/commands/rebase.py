"""`fleet-tui rebase` and `fleet-tui verify` (keys and flags as in docs/cli.md).

Exit status of `rebase`: 0 when the rebased image was pushed, and also on fallback (the
printed ref is then NEW's, the image to deploy instead); 1 when refused because
dependencies changed outside the paths. `verify`: 0 when equal, 1 listing differences.
Progress for long work goes to stderr, data to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from fleet_tui.commands.context import Context
from fleet_tui.commands.output import add_json_flag, print_json, table
from fleet_tui.errors import FleetError, UsageError
from fleet_tui.oci.digest import short
from fleet_tui.oci.image import DEFAULT_PLATFORM
from fleet_tui.rebase.engine import COMPRESSIONS, RebaseResult
from fleet_tui.rebase.multiplatform import prepare_any
from fleet_tui.rebase.verify import verify_refs
from fleet_tui.rebase.whatchanged import what_changed
from fleet_tui.rollout.audit import record_for_config
from fleet_tui.units import plural, size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rebase", help="push NEW's changed files as one layer on top of OLD (ship KB, not the dependency layer)",
        description="Push TAG = OLD's layers (the very same blobs) + one layer holding NEW's files at --paths, "
                    "or every file that differs (--auto). Pure registry operations; no build.")
    p.add_argument("new", metavar="NEW", help="the freshly built image")
    p.add_argument("--onto", required=True, metavar="OLD", help="the image the devices already run")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--paths", metavar="P[,P…]", action="append",
                      help="absolute paths whose contents to take from NEW (comma-separated or repeated)")
    mode.add_argument("--auto", action="store_true", help="ship every file that differs (file-level delta)")
    p.add_argument("--tag", required=True, metavar="TAG", help="tag in NEW's repository, or a full reference")
    p.add_argument("--force", action="store_true",
                   help="push even if dependencies changed outside the paths or the saving is under 20%%")
    p.add_argument("--dry-run", action="store_true", help="compute and report, push nothing")
    p.add_argument("--append", action="store_true",
                   help="always keep all of OLD's layers (default: drop OLD's upper layers when that costs old "
                        "holders nothing and saves fresh devices bytes, e.g. a previous rebase's layer)")
    p.add_argument("--platform", metavar="OS/ARCH[,…]",
                   help="rebase only these platforms of a multi-platform NEW (default: every platform NEW has)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="gzip",
                   help="of the new layer: gzip (every engine) or zstd (moby >= 23, OCI images only)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_rebase)

    p = sub.add_parser("verify", help="do A and B run the same: merged filesystem and runtime config?",
                       description="Compare A and B as a device's engine sees them: merged filesystems (type, "
                                   "content, mode, owner, link targets, device numbers, xattrs, hard links; "
                                   "timestamps ignored) and runtime config (user, env, command, healthcheck, "
                                   "platform, …); every platform of multi-platform images. Exit 0 when equal, "
                                   "1 listing the differences; an image that cannot be read whole is an error.")
    p.add_argument("a", metavar="A", help="first image reference")
    p.add_argument("b", metavar="B", help="second image reference")
    p.add_argument("--platform", metavar="OS/ARCH", help="compare only this platform of multi-platform images")
    add_json_flag(p)
    p.set_defaults(handler=cmd_verify)
    _register_diff(sub)


def _register_diff(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="what changed from A to B: files by directory, Python distributions, bytes",
                       description="Compare A and B as a device sees them (merged filesystems, timestamps ignored) "
                                   "and summarise: Python distributions upgraded, added or removed (from their "
                                   ".dist-info directories), then files added, removed and changed per directory "
                                   "with the compressed bytes each directory costs a device (estimated from the "
                                   "layer each file comes in).")
    p.add_argument("a", metavar="A", help="the image devices run (e.g. OLD)")
    p.add_argument("b", metavar="B", help="the image to compare it with (e.g. NEW)")
    p.add_argument("--platform", default=DEFAULT_PLATFORM, help="os/arch of multi-platform images (default %(default)s)")
    p.add_argument("--files", action="store_true", help="also list every file (text output; --json always has them)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace, ctx: Context) -> int:
    result = what_changed(args.a, args.b, ctx.config, args.platform, progress=_progress(not args.json))
    if args.json:
        print_json(result.to_json())
        return 0
    counts = [sum(getattr(d, k) for d in result.directories) for k in ("added", "removed", "changed")]
    print(f"{result.a} → {result.b}: {result.files:,} files differ ({counts[0]:,} added, {counts[1]:,} removed, "
          f"{counts[2]:,} changed), ≈ {size(result.bytes)} for a device holding A")
    if result.distributions:
        table(["DISTRIBUTION", "BEFORE", "AFTER"],
              [[d.name, d.before or "-", d.after or "-"] for d in result.distributions])
    table(["DIRECTORY", "ADDED", "REMOVED", "CHANGED", "BYTES"],
          [["/" + d.directory, d.added, d.removed, d.changed, size(d.bytes)] for d in result.directories],
          right=(1, 2, 3, 4))
    if args.files:
        for d in result.directories:
            for f in d.files:
                print(f"  {f['change']:<10} {size(f['bytes']):>9}  {f['path']}")
    return 0


def _progress(enabled: bool):
    if not enabled:
        return None
    last, start = [""], time.monotonic()

    def report(what: str, n: int, of: int) -> None:
        line = f"{what} {n}/{of}"
        if line != last[0] and time.monotonic() - start > 0.5:  # quiet for quick runs
            last[0] = line
            print(f"fleet-tui: {line}", file=sys.stderr, flush=True)
    return report


def cmd_rebase(args: argparse.Namespace, ctx: Context) -> int:
    if ctx.read_only and not args.dry_run:
        raise UsageError("rebase pushes an image, which --read-only forbids; add --dry-run to only compute it")
    progress = _progress(sys.stderr.isatty() or not args.json)
    platforms = [p.strip() for p in args.platform.split(",") if p.strip()] if args.platform else None
    with prepare_any(args.new, args.onto, args.tag, ctx.config, paths=args.paths, auto=args.auto, force=args.force,
                     progress=progress, compression=args.compression, platforms=platforms, append=args.append) as plan:
        result = plan.result(pushed=False) if args.dry_run else plan.push(progress)
    if result.pushed:
        audit_build(ctx.config, result, args.new, args.onto)
    if args.json:
        print_json(result.to_json())
    else:
        _human(result, args.dry_run)
    if result.refused and not result.fallback:
        if args.json:
            print(f"fleet-tui: error: {result.refused}", file=sys.stderr)
        return 1
    return 0


def audit_build(config: Any, result: RebaseResult, new: str, onto: str) -> None:
    """Journal the push (fleet-tui log); the image is pushed already, so a journal that cannot
    be written costs a warning, not the exit status."""

    try:
        record_for_config(config, "build", str(result.ref), {"new": new, "onto": onto, "mode": result.mode,
                                                             "bytes_for_old_holders": result.bytes_for_old_holders})
    except (FleetError, OSError) as exc:
        print(f"fleet-tui: warning: the build was not journalled ({exc})", file=sys.stderr)


def _human(r: RebaseResult, dry_run: bool) -> None:
    if r.refused and not r.fallback:
        print(f"fleet-tui: error: {r.refused}", file=sys.stderr)
        _outside(r)
        return
    if r.fallback:
        print(f"not rebased: {r.refused}")
        print(f"deploy: {r.ref}")
        return
    verb = "would push" if dry_run else "pushed"
    print(f"{verb} {r.ref}")
    dropped = max(0, r.onto_layers - r.reused_layers)
    kept = f"reused {plural(r.reused_layers, 'layer')} of OLD unchanged" + (
        f", dropped its top {dropped} (NEW replaces what they held)" if dropped else "")
    print(f"  {kept}; new layer {short(r.new_layer['digest'])} "
          f"{size(r.new_layer['size'])} ({r.changes.get('written', 0)} entries, {r.changes.get('whiteouts', 0)} whiteouts)")
    print(f"  a device running OLD pulls {size(r.bytes_for_old_holders)} instead of {size(r.bytes_naive)}"
          f" (saves {r.saving:.1%}, {r.bytes_naive / max(r.bytes_for_old_holders, 1):.0f}x less)")
    if b := r.layer_budget:
        print(f"  layer budget: OLD has {b['onto_layers']} layers and a result at most {b['max_layers']}, so the new layer "
              f"is merged with OLD's top {plural(b['merged_layers'], 'layer')}: a device holding OLD pulls "
              f"{size(b['old_holder_bytes'])} instead of {size(b['old_holder_bytes_if_appended'])} appended "
              f"(+{size(b['extra_old_holder_bytes'])})")
    if r.bytes_for_fresh:
        print(f"  a device holding nothing pulls {size(r.bytes_for_fresh)}; {plural(r.reused_layers + 1, 'layer')}")
    if len(r.seam) > 1:
        print("  layers kept   old holder   fresh device   dead in kept layers" )
        for c in r.seam:
            mark = "  ← chosen" if c["chosen"] else ""
            approx = "≈" if c["estimated"] else " "
            print(f"  {c['kept_layers']:>4} of {r.onto_layers:<3} {approx}{size(c['old_holder_bytes']):>10}   "
                  f"{approx}{size(c['fresh_device_bytes']):>10}   {size(c['dead_bytes']):>10}{mark}")
    for key, p in r.platforms.items():
        print(f"  {key:<14} {short(p['digest'])}  new layer {size(p['new_layer']['size'])}, an OLD holder pulls "
              f"{size(p['bytes_for_old_holders'])} instead of {size(p['bytes_naive'])}")
    _outside(r)
    print(f"  took {r.seconds:.1f} s")


def _outside(r: RebaseResult) -> None:
    for w in r.warnings:
        print(f"  warning: {w}")
    if r.outside_paths_changed:
        print(f"  {len(r.outside_paths_changed)} paths differ outside --paths:")
        for c in r.outside_paths_changed[:15]:
            print(f"    {c['change']:<10} {c['path']}")
        if len(r.outside_paths_changed) > 15:
            print(f"    … {len(r.outside_paths_changed) - 15} more (--json lists them all)")


def cmd_verify(args: argparse.Namespace, ctx: Context) -> int:
    result = verify_refs(args.a, args.b, ctx.config, progress=_progress(not args.json), platform=args.platform)
    if args.json:
        print_json(result.to_json())
    elif result.equal:
        print(f"equal: {result.a} and {result.b} have the same merged filesystem and runtime config")
    else:
        count = len(result.differences) + len(result.config_differences)
        print(f"{count} differences between {result.a} and {result.b}:")
        for c in result.differences:
            print(f"  {c.what:<14} /{c.path}")
        for d in result.config_differences:
            where = f" ({d['platform']})" if "platform" in d else ""
            print(f"  {'config':<14} {d['field']}{where}: {d['a']!r} → {d['b']!r}")
    return 0 if result.equal else 1
