"""What a fresh install needs is declared: every third-party import of the package is a
dependency in pyproject.toml, every one of the tests and benchmarks a dependency or a `test`
extra; the docs stay inside the repository (no link to a file it does not have)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCAL = {"fleet_tui", "tests", "bench"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _declared(*extras: str) -> set[str]:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]}
    return names


def _imports(paths: list[Path]) -> dict[str, Path]:
    """Top-level names of absolute imports → a file that imports it."""
    found: dict[str, Path] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def _undeclared(dirs: list[str], declared: set[str]) -> list[str]:
    files = [p for d in dirs for p in (ROOT / d).rglob("*.py")]
    assert files
    dists = md.packages_distributions()
    out = []
    for module, path in sorted(_imports(files).items()):
        if module in sys.stdlib_module_names or module in LOCAL or module == "__future__":
            continue
        if (path.parent / f"{module}.py").exists():  # a sibling script's helper (bench/)
            continue
        providers = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not providers & declared:
            out.append(f"{module} (imported by {path.relative_to(ROOT)}; from {sorted(providers) or 'nothing installed'})")
    return out


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    assert _undeclared(["fleet_tui"], _declared()) == []


def test_every_import_of_tests_benchmarks_and_scripts_is_declared() -> None:
    assert _undeclared(["tests", "bench", "scripts"], _declared("test")) == []


def test_the_package_has_the_metadata_a_user_expects() -> None:
    meta = md.metadata("fleet-tui")
    assert meta["License-Expression"] == "Apache-2.0" and (ROOT / "LICENSE").exists()
    assert meta.get_all("Classifier") and meta.get_all("Project-URL")
    assert (ROOT / "fleet_tui" / "__main__.py").exists()


def _repo_files() -> list[Path]:
    skip = {".git", ".venv", ".venv-test", "build", "dist", "__pycache__", "__snapshots__"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
            and p.suffix in {".md", ".py", ".toml", ".sh", ".txt", ".tcss", ".cfg", ".yml", ".yaml", ""}]


def test_no_file_points_outside_the_repository() -> None:
    needle = "../" + "shared"  # spelled apart so this file does not match itself
    offenders = [str(p.relative_to(ROOT)) for p in _repo_files() if needle in p.read_text(errors="replace")]
    assert offenders == []


def test_markdown_links_resolve_to_files_in_the_repository() -> None:
    broken = []
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "bench" / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.exists() or ROOT not in resolved.parents:
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert broken == []
