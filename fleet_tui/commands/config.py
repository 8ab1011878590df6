"""`fleet-tui config show|check` and `fleet-tui completion bash|zsh|fish`.

`config show` prints the effective configuration (defaults + file + `FLEET_TUI_*`
overrides) as TOML or `--json`; secrets are references, so nothing secret can print.
`config check FILE` validates a file as every command would load it, plus the parts only
some commands read (the `[sim]` fleet, the `[rollout]` policy), and exits 0 or 2 with one
line. Both run without a valid config (they are how an operator finds what is wrong).
"""

from __future__ import annotations

import argparse
import sys

from fleet_tui.commands.output import add_json_flag, print_json
from fleet_tui.config import Config, load_config
from fleet_tui.config.load import ConfigInvalid, config_file
from fleet_tui.config.show import as_toml, effective
from fleet_tui.devices.simconfig import parse_sim
from fleet_tui.errors import UsageError
from fleet_tui.rollout.policy import Policy

SHELLS = ("bash", "zsh", "fish")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show the effective configuration or check a config file",
                       description="Show the effective configuration or check a config file. "
                       "Keys, types and defaults: docs/configuration.md.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    s = csub.add_parser("show", help="the effective configuration (defaults + file + FLEET_TUI_* variables)",
                        description="Print the effective configuration as TOML: defaults, then the config file "
                        "(-c, $FLEET_TUI_CONFIG or the user config dir), then FLEET_TUI_* environment overrides. "
                        "Secrets appear only as references (variable or file names).")
    add_json_flag(s)
    s.set_defaults(handler=cmd_show, config_free=True)
    c = csub.add_parser("check", help="validate a config file without running anything",
                        description="Validate a config file as fleet-tui would load it, including the [sim] fleet "
                        "and the [rollout] policy; exit 0 when valid, else 2 with one line naming the key.")
    c.add_argument("file", metavar="FILE", help="the TOML config file to check")
    add_json_flag(c)
    c.set_defaults(handler=cmd_check, config_free=True)

    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                       description="Print the completion script for your shell. Install it with e.g.\n"
                       "  fleet-tui completion bash > ~/.local/share/bash-completion/completions/fleet-tui\n"
                       "  fleet-tui completion zsh > \"${fpath[1]}/_fleet-tui\"\n"
                       "  fleet-tui completion fish > ~/.config/fish/completions/fleet-tui.fish",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(handler=cmd_completion, config_free=True)


def cmd_show(args: argparse.Namespace, ctx: object) -> int:
    config = load_config(args.config).with_insecure(args.insecure_registry)
    if args.json:
        print_json({"source": config.source, "environment": list(config.env_keys), "config": effective(config)})
    else:
        print(as_toml(config), end="")
    return 0


def _summary(config: Config) -> dict[str, object]:
    policy = Policy.from_config(config.rollout)
    out: dict[str, object] = {"hub": config.hub.kind, "waves": list(policy.waves)}
    if config.sim is not None:
        spec = parse_sim(config.sim)
        out["sim_devices"], out["sim_groups"] = spec.total, len(spec.groups)
    return out


def cmd_check(args: argparse.Namespace, ctx: object) -> int:
    file, _ = config_file(args.file, {})
    try:
        config = load_config(file, environ={})
        summary = _summary(config)
    except UsageError as exc:
        problems = exc.problems if isinstance(exc, ConfigInvalid) else [str(exc)]
        if args.json:
            print_json({"file": str(file), "valid": False, "error": problems[0], "problems": problems})
        for line in problems:  # every bad key, one line each
            print(f"fleet-tui: error: {line}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print_json({"file": config.source, "valid": True, **summary})
        return 0
    sim = f", sim {summary['sim_devices']} devices in {summary['sim_groups']} groups" if "sim_devices" in summary else ""
    print(f"{config.source}: valid (hub {summary['hub']}, waves {','.join(summary['waves'])}{sim})")  # type: ignore[arg-type]
    return 0


def cmd_completion(args: argparse.Namespace, ctx: object) -> int:
    import argcomplete

    print(argcomplete.shellcode(["fleet-tui"], shell=args.shell), end="")
    return 0
