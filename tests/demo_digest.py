"""Content digests of the demo outputs, to prove a refactoring changed no result.

A digest is taken of what a file *says*, not of its bytes, so that it holds across
library versions and machines: every CSV and every GeoPackage layer is read back as a
table, numbers are written with 6 significant digits (:data:`DIGITS`), geometries are
reduced to their area and bounds (rounded to 0.1 m), paths are reduced to their file
names, and the
two things that legitimately change from run to run — the manifest's creation time and
the run history's timestamps — are left out. Rendered outputs (PNG charts, HTML, xlsx)
are not digested; their own tests check what they show.

Regenerate the recorded digests after an *intended* change of results::

    farmland demo -o /tmp/demo_out --maps /tmp/demo_maps --overwrite
    python tests/demo_digest.py /tmp/demo_out > tests/data/demo_digest.json
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import shapely

#: significant digits of a float: enough to see any change of a result, and beyond the
#: last bits that follow the machine's BLAS kernels (the PMF factors differ by up to
#: 6e-10 relative between OpenBLAS's Haswell and SkylakeX kernels; everything else in the
#: demo's outputs is identical between them)
DIGITS = 6
#: per-file keys that change with every run (a timestamp) or with the machine
VOLATILE_JSON_KEYS = {"created", "software", "python", "platform", "elapsed_s", "timings_s"}
#: GeoPackage layers that hold run timestamps only
VOLATILE_LAYERS = {("farmland_runs.gpkg", "runs")}


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, f".{DIGITS}g")
    return str(value)


def _table_text(frame: pd.DataFrame) -> str:
    lines = ["\t".join(map(str, frame.columns))]
    for row in frame.itertuples(index=False, name=None):
        lines.append("\t".join(_number(v) for v in row))
    return "\n".join(lines)


def _scrub(data: object) -> object:
    if isinstance(data, dict):
        return {k: _scrub(v) for k, v in sorted(data.items()) if k not in VOLATILE_JSON_KEYS}
    if isinstance(data, list):
        return [_scrub(v) for v in data]
    if isinstance(data, float):
        return _number(data)
    if isinstance(data, str) and "/" in data and "\n" not in data:
        return Path(data).name  # a path: where the demo ran does not matter
    return data


def file_text(path: Path) -> str | None:
    """The canonical text of one output (``None`` for files that are not digested)."""
    name = path.name
    if path.suffix == ".csv":
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        frame = frame.apply(lambda col: col.map(_csv_cell))
        return _table_text(frame)
    if path.suffix == ".json":
        text = path.read_text(encoding="utf-8")
        return json.dumps(_scrub(json.loads(text)), ensure_ascii=False, sort_keys=True)
    if path.suffix == ".gpkg":
        parts = []
        for layer, _ in pyogrio.list_layers(path):
            if (name, layer) in VOLATILE_LAYERS or layer == "layer_styles":
                continue  # QGIS styles are presentation (tests/test_styles.py checks them)
            frame = pyogrio.read_dataframe(path, layer=layer)
            if "geometry" in frame:
                geoms = frame.pop("geometry").values
                frame["_area"] = [round(a, 1) for a in shapely.area(geoms)]
                frame["_bounds"] = [tuple(round(b, 1) for b in shapely.bounds(g))
                                    if g is not None else None for g in geoms]
            frame = frame.drop(columns=[c for c in ("manifest",) if c in frame])
            parts.append(f"[{layer}]\n" + _table_text(frame))
        return "\n".join(parts)
    return None


def _csv_cell(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    if text.strip().lstrip("-").isdigit():
        return text  # ids and counts stay exactly as written
    return _number(value)


def digest(out: str | Path) -> dict[str, str]:
    """``{relative path: sha256 of the canonical text}`` of every digested output."""
    out = Path(out).resolve()
    result = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        text = file_text(path)
        if text is not None:
            result[path.relative_to(out).as_posix()] = hashlib.sha256(
                text.encode("utf-8")).hexdigest()
    return result


if __name__ == "__main__":
    json.dump(digest(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
