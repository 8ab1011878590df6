"""docs/configuration.md is what the config model generates; config/example.toml names every
key and loads as is; shell completion scripts complete for real (bash)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from fleet_tui.config import Config, load_config
from fleet_tui.config.errors import _is_model, _unwrap
from fleet_tui.config.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_is_generated_from_the_model() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render(), "docs/configuration.md is stale: python -m fleet_tui.config.reference > docs/configuration.md"


def _keys(model: type, prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = _unwrap(field.annotation)
        inner = [a for a in typing.get_args(annotation) if _is_model(a)]
        if _is_model(annotation) or inner:
            out += _keys(annotation if _is_model(annotation) else inner[0], f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_every_key_appears_in_the_example_config_which_loads() -> None:
    text = (ROOT / "config" / "example.toml").read_text()
    load_config(ROOT / "config" / "example.toml", environ={})
    assert len(_keys(Config)) > 40
    missing = [key for key in _keys(Config) if not re.search(rf"^#?\s*{re.escape(key.rsplit('.', 1)[-1])}\s*=", text, re.M)]
    assert missing == []
    for key in _keys(Config):  # and the doc has a row for it
        assert f"| `{key.rsplit('.', 1)[-1]}` |" in render()


def _fleet_tui_exe() -> str:
    beside = Path(sys.executable).parent / "fleet-tui"
    assert beside.exists(), "the fleet-tui console script is missing: pip install -e '.[test]'"
    return str(beside)


def test_bash_completion_completes_subcommands_and_flags(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash
    exe = _fleet_tui_exe()
    script = subprocess.run([exe, "completion", "bash"], capture_output=True, text=True, check=True).stdout
    (tmp_path / "completion.bash").write_text(script)
    probe = f"""
source {tmp_path / 'completion.bash'}
complete_words() {{
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
  COMPREPLY=(); _python_argcomplete fleet-tui; printf '%s\\n' "${{COMPREPLY[@]}}"; echo ---
}}
complete_words fleet-tui roll
complete_words fleet-tui rollout st
complete_words fleet-tui config check --j
"""
    env = {"PATH": f"{Path(exe).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    first, second, third, _ = out.stdout.split("---\n")
    assert first.split() == ["rollout"], out.stderr
    assert set(second.split()) == {"start", "status"}
    assert third.split() == ["--json"]


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef fleet-tui"), ("fish", "complete --command fleet-tui")])
def test_zsh_and_fish_scripts_name_the_command(shell: str, marker: str) -> None:
    out = subprocess.run([_fleet_tui_exe(), "completion", shell], capture_output=True, text=True, check=True).stdout
    assert marker in out
