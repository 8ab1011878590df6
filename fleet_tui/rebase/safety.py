"""Safety report for paths mode: what differs between OLD and NEW outside the paths.

Each change outside the paths is classified:
- `dependency`: installed software changed — a Python `*.dist-info`/`*.egg-info` record, a
  `conda-meta` record, files of a package (`site-packages/PKG/…`), a shared library
  (`*.so`, `*.so.N`), the dpkg/apk databases. Paths mode then refuses (the rebased image
  would run the new model on the old dependencies) unless forced; `--auto` ships them.
- `cache`: `__pycache__`, `*.pyc`, and other small files (build stamps, logs) — a real
  rebuild always has some; they are warnings.
- anything else is `other`: a warning naming the file.
Differences of timestamps alone never reach this module (the diff ignores them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fleet_tui.rebase.diff import Change

SMALL = 4096  # bytes: a changed file this small outside the paths is a stamp, not a dependency
_DIST = re.compile(r"(?:^|/)([A-Za-z0-9_.]+?)-([0-9][^/]*?)\.(?:dist-info|egg-info)(?:/|$)")
_CONDA = re.compile(r"(?:^|/)conda-meta/([^/]+?)-([^-/]+)-[^-/]+\.json$")
_SITE = re.compile(r"(?:^|/)(?:site|dist)-packages/([^/]+)(?:/|$)")
_SHLIB = re.compile(r"(?:^|/)([^/]+?\.so)(?:\.[0-9.]+)?$")
_PKGDB = ("var/lib/dpkg/status", "lib/apk/db/installed", "var/lib/rpm")


@dataclass
class SafetyReport:
    outside: list[Change] = field(default_factory=list)
    dependencies: dict[str, set[str]] = field(default_factory=dict)  # package → versions seen
    warnings: list[str] = field(default_factory=list)

    @property
    def refuses(self) -> bool:
        return bool(self.dependencies)

    def packages(self) -> list[str]:
        out = []
        for name in sorted(self.dependencies):
            versions = sorted(v for v in self.dependencies[name] if v)
            out.append(f"{name} {' → '.join(versions)}" if versions else name)
        return out

    def refusal(self) -> str:
        names = self.packages()
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        return (f"dependencies differ between OLD and NEW outside the paths ({shown}); paths mode would "
                f"run NEW's files on OLD's dependencies — use --auto to ship every changed file, or --force")


def classify(change: Change) -> tuple[str, str, str]:
    """(class, package, version) for a change outside the paths."""
    path = change.path
    if "__pycache__/" in path or path.endswith((".pyc", ".pyo")):
        return "cache", "", ""
    m = _DIST.search(path)
    if m:
        return "dependency", _canonical(m.group(1)), m.group(2)
    m = _CONDA.search(path)
    if m:
        return "dependency", _canonical(m.group(1)), m.group(2)
    if any(path == db or path.startswith(db + "/") for db in _PKGDB):
        return "dependency", "system packages", ""
    node = change.new or change.old
    m = _SITE.search(path)
    if m and node is not None and node.kind != "dir":
        return "dependency", _canonical(m.group(1).split(".")[0]), ""
    m = _SHLIB.search(path)
    if m and node is not None and node.kind in ("file", "symlink"):
        return "dependency", m.group(1), ""
    if node is not None and node.kind == "dir":
        return "cache", "", ""  # a directory's own mode/owner: worth a warning only
    return "other", "", ""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def safety_report(outside: list[Change]) -> SafetyReport:
    report = SafetyReport(outside=outside)
    caches, others = [], []
    for change in outside:
        klass, package, version = classify(change)
        if klass == "dependency":
            report.dependencies.setdefault(package, set()).add(version)
        elif klass == "cache":
            caches.append(change)
        else:
            others.append(change)
    if caches:
        report.warnings.append(f"{len(caches)} cache/stamp entries differ outside the paths (e.g. /{caches[0].path}); not shipped")
    for change in others[:10]:
        size = (change.new or change.old).size  # type: ignore[union-attr]
        note = "" if size <= SMALL else f" ({size} bytes)"
        report.warnings.append(f"/{change.path} {change.what} outside the paths{note}; not shipped")
    if len(others) > 10:
        report.warnings.append(f"… and {len(others) - 10} more files differ outside the paths; not shipped")
    return report
