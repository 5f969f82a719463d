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
from farmland.io.write import (
    csv_ready,
    csv_writer,
    json_writer,
    refuse_existing,
    write_gpkg_layers,
    write_outputs,
)
from farmland.rules import load_rules
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
@click.option("--accounting", type=click.Choice(["official", "parcel_verified", "measures_only"]),
              default=None,
              help="How treated class-2 land counts (domain.md §4): official = own crop samples, "
                   "else the township's crop compliance rate; parcel_verified = own compliant "
                   "samples only; measures_only = every treated parcel. Default: the rules "
                   "profile of the classification run ('official'). All three are reported.")
@click.option("--min-township-samples", type=click.IntRange(1), default=None,
              help="Crop samples a township needs for its own compliance rate (else the "
                   "county's). Default: the rules profile (5).")
@click.option("--no-count-unverified", "no_count_unverified", is_flag=True, hidden=True,
              help="Older name of --accounting parcel_verified.")
@click.option("--closed-loop", "closed_loop", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="Strict-control closed-loop ledger 严格管控闭环台账: class-3 land counts as "
                   "controlled (D) only where the loop reached --loop-min-stages.")
@click.option("--loop-min-stages", default=None,
              help="Stages the loop needs, comma-separated (default: the rules profile, "
                   "designated,inspected).")
@click.option("--order", type=click.Choice(["area", "risk"]), default="area", show_default=True,
              help="Order of the class-2 rows of the gap plan (class 3 always comes first).")
@output_dir_option()
@overwrite_option
def command(classification, measures, mapping, workspace, year, target, accounting,
            min_township_samples, no_count_unverified, closed_loop, loop_min_stages, order,
            output, overwrite):
    """Safe-utilisation rate 安全利用率 of CLASSIFICATION (a classification.gpkg, its
    folder, or a run id in --workspace) against the measures ledger.

    Prints the rate per township and for the county with the gap to the target, the
    three accounting readings and the evidence behind every counted 亩, and writes
    OUTPUT/rate.csv, rate.json, gap_plan.csv, mismatches.csv, unknown_measures.csv,
    measures_on_class1.csv and the per-parcel accounting (rate_parcels.csv, rate.gpkg).
    The exit code is 0 whether or not the target is met.
    """
    from farmland.io.readers import read_measures
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rate.gap import close_gap
    from farmland.runs.folder import open_run

    out = Path(output)
    refuse_existing((out / n for n in folder.RATE_FILES), overwrite=overwrite)
    parcels, crops, manifest = open_run(classification, workspace=workspace)
    mode, min_samples = rate_settings(
        manifest, accounting or ("parcel_verified" if no_count_unverified else None),
        min_township_samples)
    ledger = read_measures(measures, mapping=mapping)
    loop = (rate_loop(classification, parcels, crops, manifest, ledger, closed_loop, year,
                      loop_min_stages, mapping) if closed_loop else None)
    result = safe_utilisation_rate(parcels, ledger, crops=crops, year=year, target=target,
                                   accounting=mode, min_township_samples=min_samples,
                                   loop_ok=None if loop is None else loop.loop_ok())
    check_loop_year(loop, result.year, closed_loop)
    plan = close_gap(parcels, result, order=order)
    print_rate_table(result.table, result.year)
    click.echo(verdict(result.county))
    for line in evidence_lines(result) + loop_lines(result, loop):
        click.echo(line)
    short = max(0.0, float(result.county["gap_mu"]) - float(plan["gain_mu"].sum()))
    click.echo(plan_line(plan, short))
    summary = result.to_dict() | {"classification": folder.portable_path(classification, out),
                                  "measures": folder.portable_path(measures, out),
                                  "gap_plan_order": order,
                                  "gap_plan_parcels": len(plan),
                                  "gap_plan_mu": float(plan["area_mu"].sum()),
                                  "gap_plan_gain_mu": float(plan["gain_mu"].sum()),
                                  "gap_plan_county_shortfall_mu": short,
                                  "closed_loop": _loop_record(result, loop, closed_loop, out)}
    write_outputs(out, {
        folder.RATE_CSV: csv_writer(csv_ready(result.table)),
        folder.RATE_JSON: json_writer(summary),
        folder.GAP_PLAN: csv_writer(csv_ready(plan)),
        folder.MISMATCHES: csv_writer(result.mismatches),
        folder.UNKNOWN_MEASURES: csv_writer(result.unknown_measures),
        folder.MEASURES_ON_CLASS1: csv_writer(result.measures_on_class1),
        folder.RATE_PARCELS: csv_writer(csv_ready(accounting_table(result))),
        folder.RATE_GPKG: lambda p: write_gpkg_layers(p, {"accounting": accounting_layer(
            result, parcels)}),
    }, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def rate_settings(manifest: dict, accounting: str | None = None,
                  min_township_samples: int | None = None) -> tuple[str, int]:
    """Accounting mode and minimum township crop samples: as given, else from the run's
    rules (manifest), else the built-in rules."""
    rules = ((manifest.get("rules") or {}).get("values") or {}).get("rate") or {}
    default = load_rules().sections["rate"]
    mode = accounting or rules.get("accounting") or default["accounting"]
    min_samples = (min_township_samples or rules.get("min_township_crop_samples")
                   or default["min_township_crop_samples"])
    return mode, int(min_samples)


def rate_loop(classification, parcels, crops, manifest, measures, ledger_path, year,
              min_stages, mapping):
    """The closed loop that gates D (farmland.cli.control.compute_loop); ``year`` None:
    the ledger's own (``farmland diff`` uses it too)."""
    from farmland.cli.control import compute_loop, control_rules, read_ledger

    led, loop_year = read_ledger(ledger_path, parcels, year, mapping)
    return compute_loop(classification, parcels, crops, manifest, led, loop_year,
                        min_stages=min_stages or control_rules(manifest)["min_stages"],
                        measures=measures)


def check_loop_year(loop, year, path) -> None:
    """Refuse a closed-loop ledger of another year than the accounting year."""
    from farmland.errors import InputError

    if loop is not None and year is not None and loop.year != int(year):
        raise InputError(f"the closed-loop ledger is of {loop.year}, the accounting year is "
                         f"{year}", file=path, fix="give --year, or the ledger of the "
                                                   "accounting year")


def _loop_record(result, loop, path, out):
    """What rate.json records about the closed loop (None without a ledger)."""
    if loop is None:
        return None
    c = result.county
    return {"ledger": folder.portable_path(path, out), "min_stages": list(loop.min_stages),
            "class3_meeting_min_mu": float(loop.county["meets_min_mu"]),
            "loop_incomplete_mu": float(c["loop_incomplete3_mu"]),
            "controlled3_mu": float(c["controlled3_mu"])}


def loop_lines(result, loop) -> list[str]:
    """How the closed loop gated D (nothing without a ledger)."""
    if loop is None:
        return [("闭环台账 closed-loop ledger: none given — class-3 land counts as controlled "
                 "by its measure alone (give --closed-loop)")]
    c = result.county
    return [(f"闭环 closed loop ({'+'.join(loop.min_stages)}): D counts "
             f"{float(c['controlled3_mu']):,.1f} 亩; {float(c['loop_incomplete3_mu']):,.1f} 亩 "
             "with a strict-control measure but a loop below the minimum stage do not count")]


def evidence_lines(result) -> list[str]:
    """The three accounting readings side by side, and what backs the counted C."""
    c = result.county
    rates = "  ".join(f"{name} {_pct(c[f'rate_{name}'])}"
                      for name in ("official", "parcel_verified", "measures_only"))
    own, by_rate, none = (float(c[k]) for k in ("evidence_own_mu", "evidence_rate_mu",
                                                 "evidence_none_mu"))
    total = own + by_rate + none
    share = (lambda x: f"{100 * x / total:.1f} %") if total > 0 else (lambda x: "—")
    return [
        f"核算口径 accounting: {result.accounting} — 三种口径 readings: {rates}",
        (f"安全利用面积依据 evidence behind C ({total:,.1f} 亩): 自有农产品样品 own crop samples "
        f"{own:,.1f} 亩 ({share(own)}), 乡镇/全县达标率 compliance rate {by_rate:,.1f} 亩 "
        f"({share(by_rate)}), 无农产品数据 no crop data {none:,.1f} 亩 ({share(none)})"),
        f"严格管控类落实率 class-3 control {_pct(c['class3_control'])} / 目标 target 100 %"
        + (f"; {float(c['contradicted3_mu']):,.1f} 亩 controlled but a food crop exceeded "
           "(see mismatches)" if float(c["contradicted3_mu"]) > 0 else ""),
    ]


def _pct(value: float) -> str:
    return "—" if value is None or math.isnan(float(value)) else f"{100 * float(value):.1f} %"


def accounting_table(result) -> pd.DataFrame:
    """The per-parcel accounting (one row per parcel; counted 亩 in the accounting mode)."""
    cols = ["parcel_id", "township", "final_class", "area_mu", "measures", "status",
            "compliance_rate", "counted_mu", "counted_official", "counted_parcel_verified",
            "counted_measures_only", "crop_sampled", "crop_exceeds", "food_crop_exceeds"]
    return pd.DataFrame(result.parcels[cols])


def accounting_layer(result, parcels):
    """:func:`accounting_table` with the parcels' geometry (for QGIS and the map)."""
    import geopandas as gpd

    table = accounting_table(result)
    if not isinstance(parcels, gpd.GeoDataFrame) or parcels.geometry.isna().all():
        return table
    geom = parcels.set_index(parcels["parcel_id"].astype(str)).geometry
    return gpd.GeoDataFrame(table, geometry=geom.reindex(table["parcel_id"]).to_numpy(),
                            crs=parcels.crs)


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
    is3 = plan["final_class"].eq(3)
    text = (f"gap plan 补齐方案 (gap_plan.csv): all {int(is3.sum())} uncontrolled class-3 "
            f"parcel(s) {plan.loc[is3, 'area_mu'].sum():,.1f} 亩 first, then "
            f"{int((~is3).sum())} class-2 parcel(s) {plan.loc[~is3, 'area_mu'].sum():,.1f} 亩 "
            f"(counting {plan.loc[~is3, 'gain_mu'].sum():,.1f} 亩)")
    if short_mu > 0:
        text += (f"; measures alone cannot reach the county target this year: still short by "
                 f"{short_mu:,.1f} 亩 (class-2 land with a crop exceedance, or without crop "
                 "evidence in this accounting, cannot count this year)")
    return text


def print_rate_table(table: pd.DataFrame, year: int | None) -> None:
    """Township rows, then the county total (bold)."""
    t = Table(title=f"安全利用率 / Safe-utilisation rate {year or ''} (面积 亩 / areas in mu)")
    cols = [("乡镇 Township", "left"), ("安全利用 A2", "right"), ("严格管控 A3", "right"),
            ("计入 C", "right"), ("自有样品 own", "right"), ("按达标率 by rate", "right"),
            ("管控 D", "right"), ("利用率 rate", "right"), ("管控率 cl.3", "right"),
            ("缺口 gap", "right")]
    for title, justify in cols:
        t.add_column(title, justify=justify)
    rows = pd.concat([table.loc[table["level"] != "county"], table.loc[table["level"] == "county"]])
    last = len(rows) - 1
    for i, r in enumerate(rows.to_dict(orient="records")):
        t.add_row(escape(str(r["name"])), f"{r['area2_mu']:,.1f}", f"{r['area3_mu']:,.1f}",
                  f"{r['achieved2_mu']:,.1f}", f"{r['verified2_mu']:,.1f}",
                  f"{r['by_rate2_mu']:,.1f}", f"{r['controlled3_mu']:,.1f}",
                  _pct(r["rate"]), _pct(r["class3_control"]), f"{r['gap_mu']:,.1f}",
                  style="bold" if i == last else None, end_section=i == last - 1)
    console.print(t)
    console.print(f"目标 target {100 * float(rows['target'].iloc[-1]):.0f} %; 按达标率 = treated "
                  "class-2 area without own crop samples, counted at its township's (or the "
                  "county's) crop compliance rate")
