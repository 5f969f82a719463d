"""Every data file the package reads is declared as package data, so a plain
`pip install .` (not only an editable install of the source tree) carries it."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "farmland"


def test_every_data_file_is_declared_package_data():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["setuptools"]["package-data"]
    data = [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    assert data, "no data files found under src/farmland"
    missing = []
    for path in data:
        rel = path.relative_to(PACKAGE.parent)
        covered = False
        for package, patterns in declared.items():
            base = Path(*package.split("."))
            if base in rel.parents:
                inner = rel.relative_to(base).as_posix()
                covered |= any(fnmatch.fnmatch(inner, pat) for pat in patterns)
        if not covered:
            missing.append(rel.as_posix())
    assert missing == [], f"not declared in [tool.setuptools.package-data]: {missing}"
