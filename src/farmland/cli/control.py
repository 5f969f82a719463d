"""``farmland control``: the strict-control closed loop per class-3 parcel and township,
specific-product control zones with the notice table, and grain-lot screening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from farmland.cli import output_dir_option, overwrite_option
from farmland.runs import folder

__all__ = ["command", "compute_loop", "control_rules", "read_ledger"]


@click.command("control")
@click.argument("classification")
@click.option("--ledger", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Strict-control closed-loop ledger 严格管控闭环台账 (CSV/XLSX): one row per "
                   "parcel, stage and date (图斑编号, 环节, 日期, 结果, 责任人; optional 种植作物, "
                   "去向, 批次号).")
@click.option("--measures", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Measures ledger 措施台账, to find strict-control measures claimed without "
                   "a designation.")
@click.option("--lots", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Grain procurement lots 粮食收购批次 (批次号, 作物, 吨, 来源村 or 来源图斑).")
@click.option("--year", type=int, default=None,
              help="Ledger year (default: the year of the ledger's latest date).")
@click.option("--min-stages", default=None,
              help="Stages a loop needs for its area to count as controlled in the rate, "
                   "comma-separated (default: the rules profile, designated,inspected).")
@click.option("--zone-gap", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Class-3 parcels closer than this (m) form one product zone.")
@click.option("--previous", type=click.Path(exists=True, dir_okay=False), default=None,
              help="control_parcels.csv of the previous year (default: found through the "
                   "run's workspace).")
@click.option("--workspace", type=click.Path(dir_okay=False), default=None,
              help="Run-history GeoPackage, when CLASSIFICATION is a run id (R0003).")
@click.option("--mapping", type=click.Path(exists=True), default=None,
              help="Column-mapping file for the ledger, lots and measures (TOML/JSON).")
@output_dir_option()
@overwrite_option
def command(classification, ledger, measures, lots, year, min_stages, zone_gap, previous,
            workspace, mapping, output, overwrite):
    """Closed-loop status 闭环管理 of every strict-control (class-3) parcel of
    CLASSIFICATION, product control zones 特定农产品严格管控区 and grain-lot screening.

    Writes OUTPUT/control_parcels.csv (status, missing or failed stage per parcel),
    control_townships.csv (coverage against 100 %), control_contradictions.csv,
    control_released.csv, control.gpkg (layers loop, product_zones),
    product_decisions.csv, zone_notice.csv, product_zones.kml, lot_screening.csv,
    control_notice.xlsx (notice, lots, coverage, contradictions) and control.json.
    """
    from farmland.control.export import write_zone_kml
    from farmland.control.lots import lot_table, screen_lots
    from farmland.control.products import product_zones
    from farmland.io.control_tables import read_lots
    from farmland.io.readers import read_measures
    from farmland.io.write import (
        csv_ready,
        csv_writer,
        json_writer,
        refuse_existing,
        write_gpkg_layers,
        write_outputs,
    )
    from farmland.report.control_book import write_control_workbook

    out = Path(output)
    refuse_existing((out / n for n in folder.CONTROL_FILES), overwrite=overwrite)
    parcels, crops, manifest = folder.open_run(classification, workspace=workspace)
    rules = control_rules(manifest)
    m = read_measures(measures, mapping=mapping) if measures else None
    led, year = read_ledger(ledger, parcels, year, mapping)
    zones = product_zones(parcels, crops, year=year,
                          banned_by_default=tuple(rules["banned_by_default"]),
                          min_allow_samples=int(rules["min_allow_samples"]), gap_m=zone_gap)
    controlled = {pid: [p for p in str(text).split(",") if p]
                  for pid, text in zip(zones.parcels["parcel_id"],
                                       zones.parcels["controlled_products"], strict=True)}
    loop = compute_loop(classification, parcels, crops, manifest, led, year,
                        min_stages=min_stages or rules["min_stages"], measures=m,
                        controlled=controlled, previous=previous,
                        default_controlled=tuple(rules["banned_by_default"]))
    lot_rows = (screen_lots(read_lots(lots, mapping=mapping), parcels, zones, crops, year=year,
                            ledger=led) if lots else None)
    notice = zones.notice()
    print_coverage(loop.townships, loop.min_stages)
    for line in summary_lines(loop, zones, lot_rows):
        click.echo(line)
    summary = loop.to_dict() | {
        "classification": folder.portable_path(classification, out),
        "ledger": folder.portable_path(ledger, out),
        "measures": folder.portable_path(measures, out) if measures else None,
        "lots": folder.portable_path(lots, out) if lots else None,
        "zone_gap_m": float(zone_gap), "rules": rules,
        "product_zones": {"n_zones": len(zones.zones),
                          "area_mu": float(zones.zones["area_mu"].sum())},
        "lot_screening": (None if lot_rows is None else
                          {k: int(v) for k, v in lot_rows["risk"].value_counts().items()}),
    }
    loop_layer = _with_geometry(loop.parcels, parcels)
    lot_csv = lot_rows if lot_rows is not None else pd.DataFrame(columns=["lot_id", "risk"])
    write_outputs(out, {
        folder.CONTROL_PARCELS: csv_writer(loop.parcels),
        folder.CONTROL_TOWNSHIPS: csv_writer(csv_ready(loop.townships)),
        folder.CONTROL_CONTRADICTIONS: csv_writer(loop.contradictions),
        folder.CONTROL_RELEASED: csv_writer(loop.released),
        folder.PRODUCT_DECISIONS: csv_writer(zones.products),
        folder.ZONE_NOTICE: csv_writer(notice),
        folder.LOT_SCREENING: csv_writer(lot_csv),
        folder.CONTROL_GPKG: lambda p: write_gpkg_layers(
            p, {"loop": loop_layer, "product_zones": zones.zones}),
        folder.ZONE_KML: lambda p: write_zone_kml(zones.zones, p, overwrite=True),
        folder.CONTROL_XLSX: lambda p: write_control_workbook(p, {
            "管控区公告 Zone notice": notice,
            "粮食批次筛查 Lot screening": (lot_table(lot_rows) if lot_rows is not None
                                     else pd.DataFrame()),
            "闭环覆盖 Loop coverage": loop.townships,
            "矛盾 Contradictions": loop.contradictions}, overwrite=True),
        folder.CONTROL_JSON: json_writer(summary),
    }, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def compute_loop(classification, parcels, crops, manifest, ledger: pd.DataFrame, year: int, *,
                 min_stages, measures=None, controlled=None, previous=None,
                 default_controlled=("rice", "leafy_veg")):
    """The closed loop of a run, with the previous year's loop found through the workspace
    (or given as a ``control_parcels.csv`` path). Shared by ``control`` and ``rate``."""
    from farmland.control import closed_loop, parse_min_stages

    prev, label = None, ""
    path = Path(previous) if previous else None
    if path is None:
        path, label = folder.previous_output(folder.run_folder(classification)
                                             if Path(str(classification)).exists() else ".",
                                             folder.CONTROL_PARCELS, manifest)
    if path is not None:
        prev = pd.read_csv(path, dtype={"parcel_id": str}, usecols=["parcel_id", "loop_status"])
        label = label or str(path)
    return closed_loop(parcels, ledger, year=year, measures=measures, crops=crops,
                       controlled=controlled, default_controlled=default_controlled,
                       previous=prev, previous_label=label,
                       min_stages=parse_min_stages(min_stages))


def read_ledger(path: str, parcels: pd.DataFrame, year: int | None,
                mapping: str | None) -> tuple[pd.DataFrame, int]:
    """The ledger read and checked against the parcels and its year (default: the year
    of its latest date)."""
    from farmland.control import check_ledger
    from farmland.io.control_tables import read_control_ledger

    raw = read_control_ledger(path, mapping=mapping)
    year = int(year if year is not None else raw["date"].dt.year.max())
    return check_ledger(raw, parcels["parcel_id"].astype(str), year, file=str(path)), year


def control_rules(manifest: dict[str, Any]) -> dict[str, Any]:
    """The run's ``[control]`` rules (its manifest), the shipped profile's where absent."""
    from farmland.rules import load_rules

    run = ((manifest.get("rules") or {}).get("values") or {}).get("control") or {}
    return {k: run.get(k, v) for k, v in dict(load_rules().sections["control"]).items()}


def _with_geometry(table: pd.DataFrame, parcels):
    import geopandas as gpd

    geom = parcels.set_index(parcels["parcel_id"].astype(str)).geometry
    return gpd.GeoDataFrame(table, geometry=geom.reindex(table["parcel_id"]).to_numpy(),
                            crs=parcels.crs)


def summary_lines(loop, zones, lots) -> list[str]:
    """Plain lines under the coverage table: contradictions, zones, lots."""
    c = loop.county
    kinds = loop.contradictions["kind"].value_counts()
    kind_text = ", ".join(f"{k} {v}" for k, v in kinds.sort_index().items()) or "none"
    lines = [(f"闭环 closed loop {loop.year}: {_pct(c['coverage_closed'])} of "
              f"{c['class3_mu']:,.1f} 亩 class-3 land closed; {_pct(c['coverage_min'])} at the "
              f"minimum stage ({'+'.join(loop.min_stages)}) counts as controlled in the rate"),
             f"矛盾 contradictions: {kind_text} (control_contradictions.csv)"]
    products = sorted({p for t in zones.zones["controlled_products"] for p in str(t).split(",")
                       if p})
    lines.append(f"管控区 product zones: {len(zones.zones)} zone(s), "
                 f"{zones.zones['area_mu'].sum():,.1f} 亩, products controlled: "
                 f"{', '.join(products) or 'none'} (zone_notice.csv, product_zones.kml)")
    if lots is not None:
        risk = lots["risk"].value_counts()
        lines.append("粮食批次 grain lots: " + ", ".join(f"{k} {v}" for k, v in risk.items())
                     + " (lot_screening.csv)")
    if len(loop.released):
        lines.append(f"解除 released: {len(loop.released)} parcel(s) of the previous loop are "
                     "no longer class 3 (control_released.csv)")
    return lines


def print_coverage(table: pd.DataFrame, min_stages) -> None:
    """Township coverage of the closed loop (rich table), county last."""
    from rich.markup import escape
    from rich.table import Table

    from farmland.cli.output import console

    t = Table(title="严格管控类闭环管理 / Strict-control closed loop (亩 mu)")
    for title in ("乡镇 Township", "严格管控 class 3", "已闭环 closed", "最低环节 min. stage",
                  "闭环率 closed", "覆盖率 min.", "矛盾 contra."):
        t.add_column(title, justify="left" if title.startswith("乡镇") else "right")
    last = len(table) - 1
    for i, r in enumerate(table.to_dict(orient="records")):
        t.add_row(escape(str(r["township"])), f"{r['class3_mu']:,.1f}", f"{r['closed_mu']:,.1f}",
                  f"{r['meets_min_mu']:,.1f}", _pct(r["coverage_closed"]),
                  _pct(r["coverage_min"]), str(r["n_contradictions"]),
                  style="bold" if i == last else None, end_section=i == last - 1)
    console.print(t)
    console.print(f"目标 target 100 %; 最低环节 minimum stage = {'+'.join(min_stages)}")


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * float(v):.1f} %"
