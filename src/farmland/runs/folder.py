"""The run folder: every file name a farmland command writes into a run's output folder,
and reading a run back (classification layers, manifest, fitted variograms).

This module is the one place where run-folder file names are spelled. Commands ask it
for their outputs (``CLASSIFY_FILES``, ``RATE_FILES`` …) and readers ask it where a
file lives, so ``farmland report`` finds what ``farmland rate`` wrote without either
repeating the other's names.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from farmland.classes import as_class
from farmland.errors import InputError
from farmland.io import read_cache
from farmland.io.values import parse_boolean
from farmland.sampling.field_export import PLAN_FORMATS

__all__ = [
    "CLASSIFICATION", "CLASSIFY_FILES", "CONTROL_FILES", "DIFF_FILES", "FLAG_FILES", "MANIFEST",
    "PLAN_FILES", "RATE_FILES", "REPORT_DIR", "classification_path", "fitted_models",
    "load_classification", "open_run", "output_folder", "portable_path", "previous_output", "read_classification",
    "read_manifest", "run_folder",
]

# farmland classify
CLASSIFICATION = "classification.gpkg"
SUMMARY = "summary.csv"
MANIFEST = "manifest.json"
CROSSVAL = "crossval.csv"
CROSSVAL_SAMPLES = "crossval_samples.csv"
OUTLIERS = "outliers.csv"
#: leave-one-out moments for the next run of the same job (runs in a workspace only)
LOO_MOMENTS = "loo_moments.parquet"
RASTERS_DIR = "rasters"
CLASSIFY_FILES = (CLASSIFICATION, SUMMARY, MANIFEST, CROSSVAL, CROSSVAL_SAMPLES, OUTLIERS,
                  LOO_MOMENTS)
# farmland run
RESOLVED_CONFIG = "config.resolved.toml"
# farmland rate
RATE_CSV = "rate.csv"
RATE_JSON = "rate.json"
GAP_PLAN = "gap_plan.csv"
MISMATCHES = "mismatches.csv"
UNKNOWN_MEASURES = "unknown_measures.csv"
MEASURES_ON_CLASS1 = "measures_on_class1.csv"
RATE_PARCELS = "rate_parcels.csv"
RATE_GPKG = "rate.gpkg"
RATE_FILES = (RATE_CSV, RATE_JSON, GAP_PLAN, MISMATCHES, UNKNOWN_MEASURES, MEASURES_ON_CLASS1,
              RATE_PARCELS, RATE_GPKG)
# farmland flag
FLAGS = "flags.gpkg"
FLAG_SUMMARY = "flag_summary.csv"
FLAG_FILES = (FLAGS, FLAG_SUMMARY)
# farmland plan
PLAN_STEM = "plan"
PLAN_GPKG = f"{PLAN_STEM}.gpkg"
PLAN_EFFECT = "plan_effect.csv"
PLAN_FILES = tuple(f"{PLAN_STEM}.{fmt}" for fmt in PLAN_FORMATS)
# farmland report (a sub-folder of the run folder by default)
# farmland control (strict-control closed loop, product zones, grain lots)
CONTROL_PARCELS = "control_parcels.csv"
CONTROL_TOWNSHIPS = "control_townships.csv"
CONTROL_CONTRADICTIONS = "control_contradictions.csv"
CONTROL_RELEASED = "control_released.csv"
CONTROL_JSON = "control.json"
CONTROL_GPKG = "control.gpkg"
PRODUCT_DECISIONS = "product_decisions.csv"
ZONE_NOTICE = "zone_notice.csv"
ZONE_KML = "product_zones.kml"
LOT_SCREENING = "lot_screening.csv"
CONTROL_XLSX = "control_notice.xlsx"
CONTROL_FILES = (CONTROL_PARCELS, CONTROL_TOWNSHIPS, CONTROL_CONTRADICTIONS, CONTROL_RELEASED,
                 CONTROL_JSON, CONTROL_GPKG, PRODUCT_DECISIONS, ZONE_NOTICE, ZONE_KML,
                 LOT_SCREENING, CONTROL_XLSX)

# farmland sources (where the contamination comes from): what the map and report read
SOURCES_GPKG = "sources.gpkg"
SOURCE_CLUSTERS = "clusters.csv"
SOURCE_CANDIDATES = "candidates.csv"
SOURCE_FACTORS = "factors.csv"
SOURCE_HOTSPOTS = "hotspots.csv"
SOURCES_JSON = "sources.json"
#: the confirmation samples for the field team: ``confirm_samples.csv/.gpx/.kml/.gpkg``
CONFIRM_STEM = "confirm_samples"
SOURCES_FILES = (SOURCES_GPKG, SOURCE_CLUSTERS, SOURCE_CANDIDATES, SOURCE_FACTORS,
                 SOURCE_HOTSPOTS, SOURCES_JSON,
                 *(f"{CONFIRM_STEM}.{fmt}" for fmt in ("csv", "gpx", "kml", "gpkg")))

REPORT_DIR = "report"
REPORT_XLSX = "report.xlsx"
REPORT_HTML = "report.html"
CHARTS_DIR = "charts"
REPORT_FILES = (REPORT_XLSX, REPORT_HTML, CHARTS_DIR)
# farmland diff
CHANGES = "changes.csv"
#: the changed parcels as a map layer ``changes`` (geometry of run B, else run A)
CHANGES_GPKG = "changes.gpkg"
CHANGES_LAYER = "changes"
FLOWS = "flows.csv"
EFFECTS = "effects.csv"
DIFF_JSON = "diff.json"
LOOP_CHANGES = "loop_changes.csv"
DIFF_FILES = (CHANGES, CHANGES_GPKG, FLOWS, EFFECTS, DIFF_JSON, LOOP_CHANGES)
# farmland demo, and the default run history
WORKSPACE = "farmland_runs.gpkg"
#: run ids in a workspace: R0001, R0002 …
RUN_ID = re.compile(r"^R\d{4,}$")


def portable_path(path: str | os.PathLike[str], start: str | os.PathLike[str]) -> str:
    """``path`` relative to the folder ``start`` (forward slashes), for outputs that must
    not carry the analyst's absolute paths; a run id or a path on another drive is kept
    as given (a run id) or reduced to its file name."""
    text = str(path)
    if RUN_ID.match(text) and not Path(text).exists():
        return text
    try:
        return Path(os.path.relpath(Path(text).resolve(), Path(start).resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(text).name


def run_folder(path: str | os.PathLike[str]) -> Path:
    """The run folder of ``path``: itself when it is a folder, else the folder holding it."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def classification_path(path: str | os.PathLike[str]) -> Path:
    """``classification.gpkg`` of a run folder, or ``path`` itself when it is a file."""
    path = Path(path)
    return path / CLASSIFICATION if path.is_dir() else path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``manifest.json`` of a run (folder or any file in it); ``{}`` when there is none."""
    file = run_folder(path) / MANIFEST
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"manifest is not valid JSON ({exc.msg}, line {exc.lineno})",
                         file=file, fix="re-run farmland classify to write it again") from exc


def fitted_models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variogram models recorded in a run manifest, by variable (empty when none)."""
    return (manifest.get("geostatistics") or {}).get("models") or {}


def load_classification(path: str | os.PathLike[str]
                        ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None,
                                   gpd.GeoDataFrame | None]:
    """Parcels, soil samples and crop samples (with geometry) of a classification.

    Parameters
    ----------
    path
        A ``classification.gpkg`` or the run folder holding one.

    Returns
    -------
    tuple
        ``(parcels, samples, crops)``; samples and crops are ``None`` when the file has
        no such layer. Classes are ``Int8`` (``<NA>`` unclassified).
    """
    path = classification_path(path)
    parcels, _, _ = read_classification(path)
    layers = {str(name) for name in read_cache.list_layers(path)[:, 0]}
    samples = read_cache.read_dataframe(path, layer="samples") if "samples" in layers else None
    crops = read_cache.read_dataframe(path, layer="crops") if "crops" in layers else None
    return parcels, samples, crops


def read_beside(folder: Path, name: str, *, layer: str | None = None,
                text_columns: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """A table another command wrote into the run folder (``None`` when absent).

    A GeoPackage ``layer`` is read without geometry; a CSV keeps ``text_columns`` as text.
    """
    path = Path(folder) / name
    if not path.is_file():
        return None
    if layer is not None:
        if layer not in {str(n) for n in pyogrio.list_layers(path)[:, 0]}:
            return None
        return pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
    return pd.read_csv(path, encoding="utf-8-sig", dtype={c: "str" for c in text_columns},
                       keep_default_na=True)


def read_classification(path: str | os.PathLike) -> tuple[gpd.GeoDataFrame,
                                                           pd.DataFrame | None, dict[str, Any]]:
    """Parcels, crops (or ``None``) and manifest of a ``classification.gpkg``.

    The manifest is read from ``manifest.json`` beside the file (``{}`` if absent).
    Classes come back as ``Int8`` (``<NA>`` unclassified).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("classification file not found", file=path,
                         fix="give the classification.gpkg written by farmland classify, "
                             "or a run id with --workspace")
    layers = {str(name) for name, _ in read_cache.list_layers(path)}
    if "parcels" not in layers:
        raise InputError("no 'parcels' layer", file=path, value=sorted(layers),
                         fix="give the classification.gpkg written by farmland classify")
    parcels = read_cache.read_dataframe(path, layer="parcels")
    for col in ("soil_class", "final_class"):
        if col in parcels.columns:
            parcels[col] = as_class(parcels[col].to_numpy()).array
    crops = None
    if "crops" in layers:
        crops = read_cache.read_dataframe(path, layer="crops", read_geometry=False)
        if "exceeds" in crops.columns:
            crops["exceeds"] = parse_boolean(crops["exceeds"]).array
    return parcels, crops, read_manifest(path)



def open_run(ref: str | os.PathLike, *, workspace: str | os.PathLike | None = None
             ) -> tuple[gpd.GeoDataFrame, pd.DataFrame | None, dict[str, Any]]:
    """Parcels, crops and manifest of a run id in ``workspace`` or of a classification file.

    ``ref`` is a run id (``R0003``, needs ``workspace``), a ``classification.gpkg``
    path, or the output folder holding one.
    """
    text = str(ref)
    if RUN_ID.match(text) and not Path(text).exists():
        if workspace is None:
            raise InputError(f"{text!r} looks like a run id but no workspace was given",
                             value=text, fix="add --workspace FILE.gpkg, or give a "
                                             "classification.gpkg path")
        from farmland.runs.workspace import Workspace

        return Workspace(workspace).load_run(text)
    return read_classification(classification_path(text))


def previous_output(run: str | os.PathLike, name: str, manifest: dict[str, Any]
                    ) -> tuple[Path | None, str]:
    """``name`` in the output folder of the newest earlier run of the same workspace that
    wrote one, with a label ``"R0001 2023 详查"``; ``(None, "")`` when the run is not in a
    workspace or no earlier run has the file."""
    info = manifest.get("run") or {}
    if not info.get("id") or not info.get("workspace"):
        return None, ""
    from farmland.runs.workspace import Workspace

    ws = (run_folder(run) / info["workspace"]).resolve()
    if not ws.exists():
        return None, ""
    runs = Workspace(ws).runs()
    number = int(str(info["id"])[1:])
    for row in runs.iloc[::-1].itertuples(index=False):
        if int(str(row.run_id)[1:]) >= number or not isinstance(row.output, str):
            continue
        path = ws.parent / row.output / name
        if path.exists():
            label = " ".join(str(v) for v in (row.run_id, row.label) if isinstance(v, str))
            return path, label
    return None, ""


def output_folder(ref: str | os.PathLike, workspace: str | os.PathLike | None = None
                  ) -> Path | None:
    """The output folder of a run: the folder of a classification file, or the recorded
    folder of a run id in ``workspace`` (``None`` when unknown)."""
    text = str(ref)
    if not (RUN_ID.match(text) and not Path(text).exists()):
        return run_folder(text)
    if workspace is None or not Path(workspace).exists():
        return None
    from farmland.runs.workspace import Workspace

    runs = Workspace(workspace).runs()
    hit = runs.loc[runs["run_id"] == text, "output"]
    if hit.empty or not isinstance(hit.iloc[0], str):
        return None
    return Path(workspace).resolve().parent / hit.iloc[0]
