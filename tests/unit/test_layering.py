"""The layering contracts of pyproject.toml hold: imports only go down the floors of
docs/architecture.md, and domain code and the console's data layer never import Textual
(import-linter, run as its CLI so the test fails on any violation). A copy of the package
with the upward imports the code once had put back must break the floors contract, each
one named — so the contract is known to catch the class, not just to pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (module that once imported upward, the import) — each a different pair of floors
UPWARD = [
    ("fleet_tui/planning/pullplan.py", "fleet_tui.rollout.journal"),
    ("fleet_tui/planning/lineage.py", "fleet_tui.rebase.publish"),
    ("fleet_tui/config/rollout_section.py", "fleet_tui.rollout.pacing"),
    ("fleet_tui/fleet/groupplan.py", "fleet_tui.rollout.journal"),
    ("fleet_tui/ui/formatting.py", "fleet_tui.commands.output"),
    ("fleet_tui/commands/images.py", "fleet_tui.cli"),
    ("fleet_tui/units.py", "fleet_tui.config"),
]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # the interpreter's own scripts dir first: the test venv need not be on PATH
    beside = Path(sys.executable).parent / "lint-imports"
    exe = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert exe, "lint-imports is missing: pip install -e '.[test]' (import-linter)"
    env = {"PYTHONPATH": str(cwd), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=180, env=env)


def test_import_linter_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and "0 broken" in result.stdout
    assert "every import goes down" in result.stdout and "KEPT" in result.stdout


def test_the_floors_contract_names_every_upward_import(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "fleet_tui", tmp_path / "fleet_tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path, module in UPWARD:
        with open(tmp_path / path, "a") as f:
            f.write(f"\nimport {module}  # put back: an upward import\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout[-3000:]
    broken = result.stdout.partition("Broken contracts")[2]
    for path, module in UPWARD:
        importer = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        assert f"{importer} -> {module}" in broken, (importer, module, broken[-3000:])
