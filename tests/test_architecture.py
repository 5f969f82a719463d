"""The package layout stays what docs/decisions.md ("Package layout") says: one
subpackage per concept, layered bottom-up, nothing importing upward, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "farmland"

#: layer of each top-level part of farmland; a module may import only from its own
#: part or from a lower layer
LAYERS = {
    "errors": 0, "classes": 0, "crs": 0, "vocabulary": 0, "progress": 0,
    "standards": 0, "rules": 0,
    "io": 1,
    "geostats": 2,
    "classify": 3,
    "rate": 4,
    "sampling": 5,
    "control": 6,
    "sources": 6,
    "runs": 7,
    "maps": 8, "report": 8, "validation": 8,
    "cli": 9,
}
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """farmland parts imported anywhere in the module (top level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(("farmland", *path.relative_to(SRC).parent.parts))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = [module] if module != "farmland" else [f"farmland.{a.name}"
                                                          for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names
                  if n.startswith("farmland.") and not n.split(".")[1].startswith("__")}
    return found


def test_every_part_has_a_layer():
    parts = {_part(p) for p in _modules()} - {"__init__"}
    assert parts == set(LAYERS), "add the new part to LAYERS and to docs/decisions.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_imports_upward(path):
    part = _part(path)
    if part == "__init__":
        return  # the lazy public API may name anything
    upward = sorted(other for other in _imports(path)
                    if other != part and (LAYERS[other] > LAYERS[part]
                                          or (LAYERS[other] == LAYERS[part] > 0)))
    assert upward == [], f"{path.relative_to(SRC)} (layer {LAYERS[part]}) imports {upward}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(SRC)} has {n} lines: split it by concept"


def test_every_subpackage_declares_its_public_names():
    for init in sorted(SRC.glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        names = {t.id for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        assert "__all__" in names, f"{init.relative_to(SRC)} has no __all__"


def test_no_flat_prefix_modules_left():
    flat = sorted(p.name for p in SRC.glob("*.py")
                  if p.name.startswith(("io_", "map_", "report_", "sampling_")))
    assert flat == []
