"""Image subcommands (no hub needed): `tags`, `layers`, `plan`."""

from __future__ import annotations

import argparse

from fleet_tui.commands.context import Context
from fleet_tui.commands.output import add_json_flag, print_json, table
from fleet_tui.errors import FleetError
from fleet_tui.oci.digest import short
from fleet_tui.oci.image import DEFAULT_PLATFORM, load_image
from fleet_tui.oci.reference import parse_reference
from fleet_tui.oci.store import open_store, repo_of
from fleet_tui.planning.pullplan import plan_pull
from fleet_tui.rebase.engine import MAX_LAYERS
from fleet_tui.rebase.multiplatform import image_platform, platform_entries
from fleet_tui.units import money, plural, size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tags", help="list the tags of a repository",
                       description="List the tags of a repository (host/ns/name or oci:DIR).")
    p.add_argument("repository", metavar="REPO", help="repository: host/ns/name or oci:DIR")
    add_json_flag(p)
    p.set_defaults(handler=cmd_tags)

    p = sub.add_parser("layers", help="an image's layers, oldest first",
                       description="Show an image's layers oldest first: compressed digest, size, and the build step that made each.")
    p.add_argument("ref", metavar="REF", help="image reference (tag or digest)")
    p.add_argument("--platform", default=DEFAULT_PLATFORM, help="os/arch to pick from a multi-platform image (default %(default)s)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_layers)

    p = sub.add_parser("plan", help="what a device holding --have images pulls for TARGET",
                       description="Bytes a device that holds the --have images downloads to run TARGET: the layers it lacks (by compressed digest), plus manifest and config.")
    p.add_argument("target", metavar="TARGET", help="image reference (tag or digest) to plan the pull of")
    p.add_argument("--have", action="append", default=[], metavar="REF", help="an image the device already holds (repeatable)")
    p.add_argument("--platform", default=DEFAULT_PLATFORM, help="os/arch to pick from a multi-platform image (default %(default)s)")
    add_json_flag(p)
    p.set_defaults(handler=cmd_plan)


def cmd_tags(args: argparse.Namespace, ctx: Context) -> int:
    ref = parse_reference(args.repository, default_tag=None)
    tags = open_store(ref, ctx.config).list_tags(repo_of(ref))
    if args.json:
        print_json({"repository": ref.name, "tags": tags})
    else:
        for tag in tags:
            print(tag)
    return 0


def cmd_layers(args: argparse.Namespace, ctx: Context) -> int:
    img = load_image(args.ref, ctx.config, args.platform)
    platforms = sorted(platform_entries(args.ref, ctx.config) or {}) if img.index_digest else []
    if args.json:
        print_json({
            "ref": str(img.ref), "digest": img.digest, "media_type": img.media_type,
            "layers": [{"digest": l.digest, "size": l.size, "media_type": l.media_type, "created_by": l.created_by}
                       for l in img.layers],
            "config_bytes": img.config_bytes, "manifest_bytes": img.manifest_bytes, "index_bytes": img.index_bytes,
            "platform": image_platform(img), "platforms": platforms,
        })
        return 0
    print(f"{img.ref}  {img.digest}  ({img.media_type.rsplit('/', 1)[-1]}, {image_platform(img) or 'platform unsaid'})")
    if platforms:
        print(f"multi-platform: {', '.join(platforms)} (showing {args.platform}; --platform picks another)")
    table(["#", "DIGEST", "SIZE", "CREATED BY"],
          [(i + 1, short(l.digest), size(l.size), _step(l.created_by)) for i, l in enumerate(img.layers)], right=(0, 2))
    print(f"{plural(len(img.layers), 'layer')}, {size(img.layer_bytes)}; config {size(img.config_bytes)}, manifest {size(img.manifest_bytes)}")
    return 0


def cmd_plan(args: argparse.Namespace, ctx: Context) -> int:
    target = load_image(args.target, ctx.config, args.platform)
    if len(target.layers) > MAX_LAYERS:
        raise FleetError(f"{target.ref} has {plural(len(target.layers), 'layer')}; engines refuse images deeper than {MAX_LAYERS} "
                         f"(\"max depth exceeded\"), so no device can run it")
    haves = [load_image(h, ctx.config, args.platform) for h in args.have]
    plan = plan_pull(target, haves)
    if args.json:
        print_json({**plan.to_json(), "platform": image_platform(target) or args.platform})
        return 0
    print(f"{plan.target}  {plan.target_digest}  ({image_platform(target) or args.platform})")
    table(["", "DIGEST", "SIZE", "CREATED BY"],
          [("pull" if l.needed else "have", short(l.digest), size(l.size), _step(l.created_by)) for l in plan.layers],
          right=(2,))
    extra = plan.manifest_bytes + plan.config_bytes + plan.index_bytes
    print(f"total {size(plan.total_bytes)} ({plan.total_bytes} bytes: layers {plan.layer_bytes} + manifest/config {extra}),"
          f" {money(plan.total_bytes, ctx.config.cost.per_gb, ctx.config.cost.currency)} per device"
          f" at {ctx.config.cost.currency}{ctx.config.cost.per_gb:g}/GB")
    return 0


def _step(text: str, width: int = 60) -> str:
    text = text.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
    return text if len(text) <= width else text[: width - 1] + "…"
