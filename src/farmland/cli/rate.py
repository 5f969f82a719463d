"""``farmland rate``: safe-utilisation rate per township and county, gap to target."""

from __future__ import annotations

import math
from pathlib import Path

import click
import pandas as pd
from rich.markup import escape
from rich.table import Table

from farmland.cli import output_dir_option, overwrite_option
from farmland.cli.output import console
from farmland.io.write import csv_writer, json_writer, refuse_existing, write_outputs
from farmland.runs import folder


@click.command("rate")
@click.argument("classification")
@click.option("--measures", "measures", required=True, type=click.Path(exists=True),
              help="Measures ledger 措施台账 (CSV/XLSX; parcel id, measure type/class, year).")
@click.option("--mapping", type=click.Path(exists=True), default=None,
              help="Column-mapping file for the measures (TOML/JSON).")
@click.option("--workspace", type=click.Path(dir_okay=False), default=None,
              help="Run-history GeoPackage, when CLASSIFICATION is a run id (R0003).")
@click.option("--year", type=int, default=None,
              help="Accounting year (default: the latest year in the measures).")
@click.option("--target", type=click.FloatRange(0, 1), default=0.91, show_default=True,
              help="Target rate (share).")
@click.option("--no-count-unverified", "no_count_unverified", is_flag=True,
              help="Do not count class-2 area with a measure but no crop sample of the year.")
@click.option("--order", type=click.Choice(["area", "risk"]), default="area", show_default=True,
              help="Gap plan order: largest first (fewest parcels) or class 3 first.")
@output_dir_option()
@overwrite_option
def command(classification, measures, mapping, workspace, year, target, no_count_unverified,
            order, output, overwrite):
    """Safe-utilisation rate 安全利用率 of CLASSIFICATION (a classification.gpkg, its
    folder, or a run id in --workspace) against the measures ledger.

    Prints the rate per township and for the county with the gap to the target, and
    writes OUTPUT/rate.csv, rate.json, gap_plan.csv, mismatches.csv,
    unknown_measures.csv and measures_on_class1.csv. The exit code is 0 whether or not
    the target is met.
    """
    from farmland.io.readers import read_measures
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rate.gap import close_gap
    from farmland.runs.folder import open_run

    out = Path(output)
    refuse_existing((out / n for n in folder.RATE_FILES), overwrite=overwrite)
    parcels, crops, _ = open_run(classification, workspace=workspace)
    ledger = read_measures(measures, mapping=mapping)
    result = safe_utilisation_rate(parcels, ledger, crops=crops, year=year, target=target,
                                   count_unverified=not no_count_unverified)
    plan = close_gap(parcels, result, order=order)
    print_rate_table(result.table, result.year)
    click.echo(verdict(result.county))
    short = max(0.0, float(result.county["gap_mu"]) - float(plan["area_mu"].sum()))
    click.echo(plan_line(plan, short))
    summary = result.to_dict() | {"classification": folder.portable_path(classification, out),
                                  "measures": folder.portable_path(measures, out),
                                  "gap_plan_order": order,
                                  "gap_plan_parcels": len(plan),
                                  "gap_plan_mu": float(plan["area_mu"].sum()),
                                  "gap_plan_county_shortfall_mu": short}
    write_outputs(out, {
        folder.RATE_CSV: csv_writer(result.table),
        folder.RATE_JSON: json_writer(summary),
        folder.GAP_PLAN: csv_writer(plan),
        folder.MISMATCHES: csv_writer(result.mismatches),
        folder.UNKNOWN_MEASURES: csv_writer(result.unknown_measures),
        folder.MEASURES_ON_CLASS1: csv_writer(result.measures_on_class1),
    }, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def verdict(county: pd.Series) -> str:
    """One plain sentence on the county target."""
    rate = county["rate"]
    if math.isnan(rate):
        return ("安全利用率无法计算（无安全利用类/严格管控类耕地）/ rate undefined: "
                "no class-2 or class-3 land")
    if bool(county["met"]):
        return (f"目标已达成 / target met: {100 * rate:.1f} % ≥ "
                f"{100 * county['target']:.0f} %")
    return (f"目标未达成 / target NOT met: {100 * rate:.1f} % < {100 * county['target']:.0f} %, "
            f"gap {county['gap_mu']:,.1f} 亩 ({county['gap_hm2']:,.2f} hm²)")


def plan_line(plan: pd.DataFrame, short_mu: float) -> str:
    """What the gap plan proposes, and what it cannot close."""
    if plan.empty and short_mu <= 0:
        return "gap plan: nothing to add"
    text = (f"gap plan 补齐方案: {len(plan)} parcel(s), {plan['area_mu'].sum():,.1f} 亩 "
            "(gap_plan.csv)")
    if short_mu > 0:
        text += (f"; measures alone cannot reach the county target this year: still short by "
                 f"{short_mu:,.1f} 亩 (class-2 land with a crop exceedance, or without crop "
                 "samples under --no-count-unverified, cannot count this year)")
    return text


def print_rate_table(table: pd.DataFrame, year: int | None) -> None:
    """Township rows, then the county total (bold)."""
    t = Table(title=f"安全利用率 / Safe-utilisation rate {year or ''} (面积 亩 / areas in mu)")
    cols = [("乡镇 Township", "left"), ("安全利用 A2", "right"), ("严格管控 A3", "right"),
            ("达标 counted", "right"), ("未核实 unverified", "right"),
            ("利用率 rate", "right"), ("目标 target", "right"), ("缺口 gap", "right")]
    for title, justify in cols:
        t.add_column(title, justify=justify)
    rows = pd.concat([table.loc[table["level"] != "county"], table.loc[table["level"] == "county"]])
    last = len(rows) - 1
    for i, r in enumerate(rows.to_dict(orient="records")):
        rate = "—" if math.isnan(r["rate"]) else f"{100 * r['rate']:.1f} %"
        t.add_row(escape(str(r["name"])), f"{r['area2_mu']:,.1f}", f"{r['area3_mu']:,.1f}",
                  f"{r['numerator_mu']:,.1f}", f"{r['unverified2_mu']:,.1f}", rate,
                  f"{100 * r['target']:.0f} %", f"{r['gap_mu']:,.1f}",
                  style="bold" if i == last else None, end_section=i == last - 1)
    console.print(t)
