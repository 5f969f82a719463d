"""``farmland report``: Excel workbook, one-file HTML summary and PNG charts of a run.

Reads ``CLASSIFICATION_DIR/classification.gpkg`` (layers parcels, samples, crops) and
what the other subcommands wrote beside it (:data:`BESIDE`: ``farmland rate`` →
rate.csv, gap_plan.csv; ``farmland plan`` → plan.gpkg, plan_effect.csv; ``farmland
flag`` → flags.gpkg layer zones). With ``--measures`` the rate and gap plan are
computed here instead. Strict-control zones are computed from the parcels when no
flags.gpkg is found. Everything is drawn in a temporary folder inside OUTPUT and
moved into place only when all files are written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import click
import pandas as pd

from farmland.cli import output_dir_option, overwrite_option

log = logging.getLogger(__name__)

REPORT_FILES = ("report.xlsx", "report.html")
GEOSTAT_ELEMENTS = ("cd", "hg", "as", "pb", "cr")
CHART_FILES = {"class_area": "class_area.png", "rate": "rate.png", "coverage": "coverage.png",
               **{f"variogram_{el}": f"variogram_{el}.png" for el in GEOSTAT_ELEMENTS},
               **{f"crossval_{el}": f"crossval_{el}.png" for el in GEOSTAT_ELEMENTS}}
#: table -> (file beside classification.gpkg, GeoPackage layer or None for CSV)
BESIDE = {"rate_table": ("rate.csv", None), "gap_plan": ("gap_plan.csv", None),
          "plan": ("plan.gpkg", "plan"), "plan_effect": ("plan_effect.csv", None),
          "zones": ("flags.gpkg", "zones")}
ID_COLUMNS = ("parcel_id", "point_id", "zone_id", "sample_id", "township", "name", "scope",
              "parcel_ids", "other_townships")
CROP_COLUMNS = ["sample_id", "crop", "cd", "pb", "hg", "as", "cr", "crop_grade", "parcel_id",
                "year"]
QA_COLUMNS = ["parcel_id", "township", "final_class", "rule", "qa_flags"]
CAPTIONS = {"class_area": ("各乡镇类别面积", "Class area by township"),
            "rate": ("各乡镇安全利用率", "Safe-utilisation rate by township"),
            "coverage": ("加密采样前后的点位覆盖", "Sample coverage before and after the plan"),
            **{f"variogram_{el}": (f"{el.capitalize()} 变异函数（对数值）",
                                   f"{el.capitalize()} variogram (log values)")
               for el in GEOSTAT_ELEMENTS},
            **{f"crossval_{el}": (f"{el.capitalize()} 交叉验证", f"{el.capitalize()} cross-validation")
               for el in GEOSTAT_ELEMENTS}}


def _folder(classification: str | Path) -> Path:
    path = Path(classification)
    return path if path.is_dir() else path.parent


def read_beside(folder: Path, name: str, layer: str | None) -> pd.DataFrame | None:
    """A table another subcommand wrote into ``folder`` (ids kept as text), or ``None``."""
    import pyogrio

    path = folder / name
    if not path.is_file():
        log.info("no %s beside the classification", name)
        return None
    if layer is not None:
        if layer not in {str(n) for n in pyogrio.list_layers(path)[:, 0]}:
            return None
        frame = pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
    else:
        frame = pd.read_csv(path, encoding="utf-8-sig",
                            dtype={c: "str" for c in ID_COLUMNS}, keep_default_na=True)
    log.info("read %s (%d rows)", path, len(frame))
    return frame


def load_tables(classification: str, measures: str | None) -> dict[str, object]:
    """Every table the report shows, from the classification and the files beside it."""
    from farmland.cli.flag import load_classification
    from farmland.rate import as_boolean
    from farmland.summary import class_area_table

    folder = _folder(classification)
    parcels, samples, crops = load_classification(classification)
    tables: dict[str, object] = {key: read_beside(folder, *spec) for key, spec in BESIDE.items()}
    tables["class_table"] = class_area_table(parcels)
    if measures:
        tables.update(_rate_from_measures(parcels, crops, measures))
    for key, column in (("rate_table", "met"), ("gap_plan", "reaches_target")):
        frame = tables[key]
        if frame is not None and column in frame:
            frame[column] = as_boolean(frame[column]).array
    if tables["zones"] is None and samples is not None:
        from farmland.zones import strict_control_zones
        tables["zones"] = pd.DataFrame(strict_control_zones(parcels, samples).drop(
            columns="geometry"))
    tables["crop_exceedances"] = _crop_exceedances(crops)
    tables["qa_flags"] = _qa_flags(parcels)
    tables["crossval_samples"] = read_beside(folder, "crossval_samples.csv", None)
    tables["models"] = _fitted_models(folder)
    tables["samples"] = samples
    return tables


def _fitted_models(folder: Path) -> dict[str, dict]:
    """Variogram models recorded in the run manifest (empty when there are none)."""
    import json

    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return (manifest.get("geostatistics") or {}).get("models") or {}


def _rate_from_measures(parcels, crops, measures: str) -> dict[str, pd.DataFrame]:
    from farmland.gap import close_gap
    from farmland.io import read_measures
    from farmland.rate import safe_utilisation_rate

    crop_table = None if crops is None else pd.DataFrame(crops.drop(columns="geometry"))
    result = safe_utilisation_rate(parcels, read_measures(measures), crops=crop_table)
    return {"rate_table": result.table, "gap_plan": close_gap(parcels, result)}


def _crop_exceedances(crops) -> pd.DataFrame | None:
    if crops is None or "exceeds" not in crops:
        return None
    from farmland.rate import as_boolean

    hit = as_boolean(crops["exceeds"]).fillna(False).to_numpy(bool)
    return pd.DataFrame(crops.loc[hit, [c for c in CROP_COLUMNS if c in crops]])


def _qa_flags(parcels) -> pd.DataFrame | None:
    if "qa_flags" not in parcels:
        return None
    text = parcels["qa_flags"].astype("str").fillna("").str.strip()
    return pd.DataFrame(parcels.loc[text.ne("").to_numpy(bool),
                                    [c for c in QA_COLUMNS if c in parcels]])


def run_notes(folder: Path, lang: str) -> list[str]:
    """Provenance lines for the HTML report from ``manifest.json`` beside the classification."""
    import json

    from farmland.report import bilingual

    lines = [f"{bilingual('数据来源', 'Source', lang)}: {folder / 'classification.gpkg'}"]
    path = folder / "manifest.json"
    if not path.is_file():
        return lines
    manifest = json.loads(path.read_text(encoding="utf-8"))
    standard, rules = manifest.get("standard") or {}, manifest.get("rules") or {}
    lines += [f"{bilingual('分类运行时间', 'Classified at', lang)}: {manifest.get('created', '?')}",
              f"{bilingual('标准', 'Standard', lang)}: {standard.get('name', '?')} "
              f"{standard.get('version', '')}".rstrip(),
              f"{bilingual('规则', 'Rules', lang)}: {rules.get('name', '?')}"]
    return lines


def draw_charts(tables: dict[str, object], folder: Path, lang: str) -> dict[str, Path]:
    """The report charts that the tables allow, as ``{caption: path}``."""
    from farmland import charts
    from farmland.report import bilingual

    drawn = {"class_area": charts.class_area_chart(tables["class_table"],
                                                   folder / CHART_FILES["class_area"], lang=lang)}
    if tables["rate_table"] is not None:
        drawn["rate"] = charts.rate_chart(tables["rate_table"], folder / CHART_FILES["rate"],
                                          lang=lang)
    if tables["plan_effect"] is not None:
        before, after = charts.coverage_from_effect(tables["plan_effect"])
        drawn["coverage"] = charts.coverage_chart(before, after, folder / CHART_FILES["coverage"],
                                                  lang=lang)
    drawn.update(_geostat_charts(tables, folder, lang))
    return {bilingual(*CAPTIONS[key], lang): path for key, path in drawn.items()}


def _geostat_charts(tables: dict[str, object], folder: Path, lang: str) -> dict[str, Path]:
    """Per metal: the empirical variogram of log-values with the model the run fitted, and
    the leave-one-out cross-validation scatter (from crossval_samples.csv)."""
    import numpy as np

    from farmland import charts
    from farmland.geostats import sample_arrays
    from farmland.report import bilingual
    from farmland.variogram import VariogramModel, empirical_variogram

    drawn: dict[str, Path] = {}
    samples, models, cv = tables["samples"], tables["models"], tables["crossval_samples"]
    for el in GEOSTAT_ELEMENTS:
        if samples is not None and "usable" in samples and el in samples:
            xy, values, _ = sample_arrays(samples, el)
            info = models.get(el) or {}
            if len(values) >= 30:
                emp = empirical_variogram(xy, np.log(values), seed=0)
                model = (VariogramModel(info["model"], info["nugget"], info["sill"],
                                        info["range_m"]) if info.get("model") else None)
                key = f"variogram_{el}"
                drawn[key] = charts.variogram_chart(
                    emp.lags, emp.gamma, model, folder / CHART_FILES[key],
                    bilingual(*CAPTIONS[key], lang), counts=emp.counts, lang=lang)
        if cv is not None and (cv["variable"] == el).any():
            rows = cv[cv["variable"] == el]
            key = f"crossval_{el}"
            drawn[key] = charts.crossval_chart(rows["observed"], rows["predicted"],
                                               folder / CHART_FILES[key],
                                               bilingual(*CAPTIONS[key], lang), lang=lang)
    return drawn


def _check_free(out: Path, overwrite: bool) -> None:
    from farmland.errors import OutputExistsError

    targets = [out / n for n in REPORT_FILES] + [out / "charts" / n for n in CHART_FILES.values()]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(existing[0])


def _move_into(stage: Path, out: Path) -> None:
    """Move staged files into ``out``; charts this run did not draw are removed."""
    (out / "charts").mkdir(parents=True, exist_ok=True)
    for name in CHART_FILES.values():
        staged = stage / "charts" / name
        if staged.exists():
            os.replace(staged, out / "charts" / name)
        else:
            (out / "charts" / name).unlink(missing_ok=True)
    for name in REPORT_FILES:
        os.replace(stage / name, out / name)


@click.command("report")
@click.argument("classification_dir", type=click.Path(exists=True))
@click.option("--measures", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Measures ledger 措施台账: compute the rate and gap plan here "
                   "(otherwise rate.csv/gap_plan.csv beside the classification are used).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="zh: Chinese with English; en: English only.")
@output_dir_option()
@overwrite_option
def command(classification_dir, measures, lang, output, overwrite):
    """Write OUTPUT/report.xlsx, OUTPUT/report.html and OUTPUT/charts/*.png for the
    classification in CLASSIFICATION_DIR (the folder holding classification.gpkg).
    """
    from farmland.report import bilingual, write_excel_report
    from farmland.report_html import write_html_report

    out = Path(output)
    _check_free(out, overwrite)
    tables = load_tables(classification_dir, measures)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".farmland-report-", dir=out))
    try:
        charts = draw_charts(tables, stage / "charts", lang)
        excel = {k: v for k, v in tables.items()
                 if k not in ("plan_effect", "crossval_samples", "models", "samples")}
        write_excel_report(stage / "report.xlsx", **excel, charts=charts, lang=lang)
        write_html_report(stage / "report.html", title=bilingual(
            "耕地土壤环境质量类别划分与安全利用报告", "Farmland soil classes and safe utilisation", lang),
            class_table=tables["class_table"], rate_table=tables["rate_table"],
            gap_plan=tables["gap_plan"], charts=charts, lang=lang,
            notes=run_notes(_folder(classification_dir), lang))
        _move_into(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    click.echo(f"outputs: {out / 'report.xlsx'}, {out / 'report.html'}, {out / 'charts'}")
