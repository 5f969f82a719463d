"""The tables a report shows, assembled from a run folder.

Reads the classification (layers parcels, samples, crops) and what the other commands
wrote beside it (``farmland rate`` → rate.csv, gap_plan.csv; ``farmland plan`` →
plan.gpkg, plan_effect.csv; ``farmland flag`` → flags.gpkg layer zones; ``farmland
control`` → control_townships.csv, control_contradictions.csv). With a
measures ledger the rate and gap plan are computed here instead. Strict-control zones
are computed from the parcels when no flags.gpkg is found.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from farmland.classify.summary import class_area_table
from farmland.io.values import parse_boolean
from farmland.runs import folder as run_files
from farmland.runs.folder import fitted_models, load_classification, read_manifest, run_folder

__all__ = ["load_tables", "report_title", "run_notes"]

log = logging.getLogger(__name__)

#: table -> (file beside classification.gpkg, GeoPackage layer or None for CSV)
BESIDE = {"rate_table": (run_files.RATE_CSV, None), "gap_plan": (run_files.GAP_PLAN, None),
          "plan": (run_files.PLAN_GPKG, "plan"), "plan_effect": (run_files.PLAN_EFFECT, None),
          "zones": (run_files.FLAGS, "zones"),
          "control_townships": (run_files.CONTROL_TOWNSHIPS, None),
          "control_contradictions": (run_files.CONTROL_CONTRADICTIONS, None)}
ID_COLUMNS = ("parcel_id", "point_id", "zone_id", "sample_id", "township", "name", "scope",
              "parcel_ids", "other_townships")
CROP_COLUMNS = ["sample_id", "crop", "cd", "pb", "hg", "as", "cr", "crop_grade", "parcel_id",
                "year"]
QA_COLUMNS = ["parcel_id", "township", "final_class", "rule", "qa_flags"]


def read_beside(folder: Path, name: str, layer: str | None) -> pd.DataFrame | None:
    """A table another command wrote into ``folder`` (ids kept as text), or ``None``."""
    frame = run_files.read_beside(folder, name, layer=layer, text_columns=ID_COLUMNS)
    if frame is None:
        log.info("no %s beside the classification", name)
    else:
        log.info("read %s (%d rows)", Path(folder) / name, len(frame))
    return frame


def load_tables(classification: str | Path, measures: str | Path | None) -> dict[str, object]:
    """Every table the report shows, from the classification and the files beside it."""
    folder = run_folder(classification)
    parcels, samples, crops = load_classification(classification)
    tables: dict[str, object] = {key: read_beside(folder, *spec) for key, spec in BESIDE.items()}
    tables["class_table"] = class_area_table(parcels)
    if measures:
        tables.update(_rate_from_measures(parcels, crops, measures))
    for key, column in (("rate_table", "met"), ("gap_plan", "reaches_target")):
        frame = tables[key]
        if frame is not None and column in frame:
            frame[column] = parse_boolean(frame[column]).array
    if tables["zones"] is None and samples is not None:
        from farmland.sampling.zones import strict_control_zones
        tables["zones"] = pd.DataFrame(strict_control_zones(parcels, samples).drop(
            columns="geometry"))
    tables["crop_exceedances"] = _crop_exceedances(crops)
    tables["qa_flags"] = _qa_flags(parcels)
    tables["crossval_samples"] = read_beside(folder, run_files.CROSSVAL_SAMPLES, None)
    tables["outliers"] = read_beside(folder, run_files.OUTLIERS, None)
    manifest = read_manifest(folder)
    tables["models"] = fitted_models(manifest)
    # [interpolation] nugget = "measurement": the nuggets were fixed, not fitted
    rules = ((manifest.get("rules") or {}).get("values") or {}).get("interpolation") or {}
    tables["nugget_fixed"] = rules.get("nugget") == "measurement"
    tables["samples"] = samples
    return tables


def _rate_from_measures(parcels, crops, measures: str) -> dict[str, pd.DataFrame]:
    from farmland.io.readers import read_measures
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rate.gap import close_gap

    crop_table = None if crops is None else pd.DataFrame(crops.drop(columns="geometry"))
    result = safe_utilisation_rate(parcels, read_measures(measures), crops=crop_table)
    return {"rate_table": result.table, "gap_plan": close_gap(parcels, result)}


def _crop_exceedances(crops) -> pd.DataFrame | None:
    if crops is None or "exceeds" not in crops:
        return None
    hit = parse_boolean(crops["exceeds"]).fillna(False).to_numpy(bool)
    return pd.DataFrame(crops.loc[hit, [c for c in CROP_COLUMNS if c in crops]])


def _qa_flags(parcels) -> pd.DataFrame | None:
    if "qa_flags" not in parcels:
        return None
    text = parcels["qa_flags"].astype("str").fillna("").str.strip()
    return pd.DataFrame(parcels.loc[text.ne("").to_numpy(bool),
                                    [c for c in QA_COLUMNS if c in parcels]])


def run_notes(folder: Path, lang: str) -> list[str]:
    """Provenance lines for the HTML report from ``manifest.json`` beside the classification."""
    from farmland.report.excel import bilingual

    source = f"{Path(folder).resolve().name}/{run_files.CLASSIFICATION}"
    lines = [f"{bilingual('数据来源', 'Source', lang)}: {source}"]
    manifest = read_manifest(folder)
    if not manifest:
        return lines
    standard, rules = manifest.get("standard") or {}, manifest.get("rules") or {}
    lines += [f"{bilingual('分类运行时间', 'Classified at', lang)}: {manifest.get('created', '?')}",
              f"{bilingual('标准', 'Standard', lang)}: {standard.get('name', '?')} "
              f"{standard.get('version', '')}".rstrip(),
              f"{bilingual('规则', 'Rules', lang)}: {rules.get('name', '?')}"]
    return lines


def report_title(folder: Path, tables: dict[str, object], lang: str, *,
                 county: str | None = None) -> str:
    """The report title: county, year and run id where they are known.

    ``county`` defaults to the county of the ``farmland run`` config recorded in the
    manifest; the year is the rate's accounting year, else the latest sample year; the
    run id is the workspace run recorded by ``farmland classify --workspace``.
    """
    from farmland.report.excel import bilingual

    manifest = read_manifest(folder)
    project = ((manifest.get("parameters") or {}).get("run_config") or {}).get("project") or {}
    county = county or project.get("county") or None
    year = _report_year(folder, tables)
    run_id = (manifest.get("run") or {}).get("id")
    zh = "".join(x for x in (county, f"{year}年" if year else None) if x)
    zh = f"{zh}耕地土壤环境质量类别划分与安全利用报告"
    en_parts = [p for p in (county, str(year) if year else None) if p]
    en = "Farmland soil classes and safe utilisation" + (
        f" — {', '.join(en_parts)}" if en_parts else "")
    if run_id:
        zh, en = f"{zh}（运行 {run_id}）", f"{en} (run {run_id})"
    return bilingual(zh, en, lang)


def _report_year(folder: Path, tables: dict[str, object]) -> int | None:
    import json

    rate_json = Path(folder) / run_files.RATE_JSON
    if rate_json.is_file():
        year = json.loads(rate_json.read_text(encoding="utf-8")).get("year")
        if year:
            return int(year)
    samples = tables.get("samples")
    if isinstance(samples, pd.DataFrame) and "year" in samples:
        years = pd.to_numeric(samples["year"], errors="coerce")
        if years.notna().any():
            return int(years.max())
    return None
