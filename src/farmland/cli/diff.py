"""``farmland diff``: compare two classification runs parcel by parcel."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import click
import pandas as pd
from rich.markup import escape
from rich.table import Table

from farmland.cli import output_dir_option, overwrite_option
from farmland.cli.output import console
from farmland.io.write import csv_writer, json_writer, refuse_existing, write_outputs
from farmland.runs import folder

_LABELS = {"1": "1 优先保护", "2": "2 安全利用", "3": "3 严格管控",
           "unclassified": "未分类 unclass.", "absent": "不存在 absent"}


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--workspace", type=click.Path(dir_okay=False), default=None,
              help="Run-history GeoPackage holding the runs given by id (R0001).")
@click.option("--measures-a", "measures_a", type=click.Path(exists=True), default=None,
              help="Measures ledger for run A.")
@click.option("--measures-b", "measures_b", type=click.Path(exists=True), default=None,
              help="Measures ledger for run B (default: the ledger of run A).")
@click.option("--closed-loop-a", "closed_loop_a", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="Strict-control closed-loop ledger 严格管控闭环台账 of run A, as farmland rate "
                   "--closed-loop: class-3 land counts as controlled only where the loop "
                   "reached the minimum stages.")
@click.option("--closed-loop-b", "closed_loop_b", type=click.Path(exists=True, dir_okay=False),
              default=None,
              help="Closed-loop ledger of run B (default: run A's when --measures-b is not "
                   "given).")
@click.option("--loop-min-stages", default=None,
              help="Stages the loop needs, comma-separated (default: each run's rules "
                   "profile, designated,inspected).")
@click.option("--mapping", type=click.Path(exists=True), default=None,
              help="Column-mapping file for the measures and closed-loop ledgers (TOML/JSON).")
@click.option("--target", type=click.FloatRange(0, 1), default=0.91, show_default=True,
              help="Target rate (share).")
@output_dir_option()
@overwrite_option
def command(run_a, run_b, workspace, measures_a, measures_b, closed_loop_a, closed_loop_b,
            loop_min_stages, mapping, target, output, overwrite):
    """Compare RUN_A with RUN_B (run ids in --workspace, classification.gpkg files or
    their folders): class flows in 亩, the cause of every changed parcel, and why the
    safe-utilisation rate moved.

    两次分类逐图斑对比：类别流向（亩）、每个变化图斑的原因、安全利用率变化的来源。

    Writes OUTPUT/changes.csv, changes.gpkg (layer ``changes``, for a map), flows.csv,
    effects.csv and diff.json; loop_changes.csv when both runs' folders hold a
    ``farmland control`` output.
    """
    from farmland.errors import InputError
    from farmland.runs.diff import diff_runs
    from farmland.runs.folder import open_run

    out = Path(output)
    refuse_existing((out / n for n in folder.DIFF_FILES), overwrite=overwrite)
    parcels_a, crops_a, manifest_a = open_run(run_a, workspace=workspace)
    parcels_b, crops_b, manifest_b = open_run(run_b, workspace=workspace)
    ledger_a = _read(measures_a, mapping)
    ledger_b = _read(measures_b, mapping)
    if closed_loop_b is None and measures_b is None:
        closed_loop_b = closed_loop_a            # one ledger for both runs, as the measures
    if (closed_loop_a or closed_loop_b) and not (closed_loop_a and closed_loop_b
                                                 and measures_a):
        raise InputError("a closed-loop ledger for one run only, or without --measures-a: "
                         "the two rates would not be counted alike",
                         fix="give --closed-loop-a and --closed-loop-b with --measures-a and "
                             "--measures-b, or no closed-loop ledger")
    loop_a = loop_b = None
    if closed_loop_a and closed_loop_b:
        loop_a = _loop(run_a, workspace, parcels_a, crops_a, manifest_a, ledger_a,
                       closed_loop_a, loop_min_stages, mapping)
        loop_b = _loop(run_b, workspace, parcels_b, crops_b, manifest_b,
                       ledger_b if ledger_b is not None else ledger_a, closed_loop_b,
                       loop_min_stages, mapping)
    result = diff_runs(parcels_a, parcels_b, measures_a=ledger_a, measures_b=ledger_b,
                       crops_a=crops_a, crops_b=crops_b, manifest_a=manifest_a,
                       manifest_b=manifest_b, samples_a=_samples(run_a),
                       samples_b=_samples(run_b), target=target,
                       loop_ok_a=loop_a and loop_a.loop_ok(),
                       loop_ok_b=loop_b and loop_b.loop_ok())
    if result.rates_compared:
        from farmland.cli.rate import check_loop_year
        check_loop_year(loop_a, result.rate_a.year, closed_loop_a)
        check_loop_year(loop_b, result.rate_b.year, closed_loop_b)
    print_flows(result.flows, run_a, run_b)
    loops = _loop_changes(run_a, run_b, workspace)
    for line in decomposition_lines(result) + cause_lines(result) + loop_lines(loops):
        click.echo(line)
    rel = folder.portable_path
    summary = result.to_dict() | {"run_a": rel(run_a, out), "run_b": rel(run_b, out),
                                  "measures_a": measures_a and rel(measures_a, out),
                                  "measures_b": measures_b and rel(measures_b, out),
                                  "closed_loop_ledger_a": closed_loop_a and rel(closed_loop_a,
                                                                                out),
                                  "closed_loop_ledger_b": closed_loop_b and rel(closed_loop_b,
                                                                                out),
                                  "loop_changes": _loop_summary(loops)}
    layer = result.changes_layer()
    write_outputs(out, {
        folder.CHANGES: csv_writer(result.changes),
        folder.CHANGES_GPKG: lambda p: _write_layer(p, folder.CHANGES_LAYER, layer),
        folder.FLOWS: csv_writer(result.flows, index=True),
        folder.EFFECTS: csv_writer(result.effects),
        folder.DIFF_JSON: json_writer(summary),
        **({folder.LOOP_CHANGES: csv_writer(loops)} if loops is not None else {}),
    }, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def _loop(ref, workspace, parcels, crops, manifest, measures, path, min_stages, mapping):
    """The run's closed loop as ``farmland rate --closed-loop`` computes it: the ledger's
    year, the rules' minimum stages, the previous loop found through the workspace."""
    from farmland.cli.rate import rate_loop

    where, text = ref, str(ref)
    if folder.RUN_ID.match(text) and not Path(text).exists():
        # a workspace run: its recorded folder (else the workspace's) and its place in
        # the run history, for the previous loop
        known = folder.output_folder(text, workspace)
        where = known if known is not None and known.is_dir() else \
            Path(workspace).resolve().parent
        rel_ws = os.path.relpath(Path(workspace).resolve(), Path(where).resolve())
        manifest = manifest | {"run": {"id": text, "workspace": rel_ws}}
    return rate_loop(where, parcels, crops, manifest, measures, path, None, min_stages,
                     mapping)


def _loop_changes(run_a: str, run_b: str, workspace: str | None) -> pd.DataFrame | None:
    """Closed-loop status changes when both runs' folders hold control_parcels.csv."""
    from farmland.control import loop_changes

    tables = []
    for ref in (run_a, run_b):
        where = folder.output_folder(ref, workspace)
        path = where / folder.CONTROL_PARCELS if where is not None else None
        if path is None or not path.is_file():
            return None
        tables.append(pd.read_csv(path, dtype={"parcel_id": str}, encoding="utf-8-sig"))
    return loop_changes(*tables)


def _loop_summary(loops: pd.DataFrame | None) -> dict | None:
    if loops is None:
        return None
    return {k: int(v) for k, v in loops["change"].value_counts().sort_index().items()}


def loop_lines(loops: pd.DataFrame | None) -> list[str]:
    """Closed-loop status changes (only when both runs have a control step)."""
    from farmland.control import transition_counts

    if loops is None:
        return []
    counts = transition_counts(loops)
    top = "; ".join(f"{r.status_a} → {r.status_b} {r.n_parcels}"
                    for r in counts.head(6).itertuples(index=False))
    return [f"闭环状态变化 closed-loop status, {len(loops):,} class-3 parcel(s) in either run: "
            + ", ".join(f"{k} {v}" for k, v in _loop_summary(loops).items())
            + f" (loop_changes.csv); most common: {top}"]


def _write_layer(path: Path, name: str, layer: pd.DataFrame) -> None:
    """One-layer GeoPackage; its "wrote" log line would name the staging folder, and the
    command names the output folder itself."""
    from farmland.io.write import write_gpkg_layers

    logger = logging.getLogger("farmland.io.write")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        write_gpkg_layers(path, {name: layer})
    finally:
        logger.setLevel(level)


def _samples(ref: str) -> pd.DataFrame | None:
    """Soil samples layer of a classification file or folder; ``None`` for a run id
    (a workspace keeps no samples) or a file without one."""
    import pyogrio

    text = str(ref)
    if folder.RUN_ID.match(text) and not Path(text).exists():
        return None
    path = folder.classification_path(text)
    if not path.is_file() or "samples" not in {str(n) for n in pyogrio.list_layers(path)[:, 0]}:
        return None
    return pyogrio.read_dataframe(path, layer="samples")


def _read(path: str | None, mapping: str | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from farmland.io.readers import read_measures
    return read_measures(path, mapping=mapping)


def _pct(x: float) -> str:
    return "undefined" if math.isnan(x) else f"{100 * x:.2f} %"


def _pp(x: float) -> str:
    return "undefined" if math.isnan(x) else f"{100 * x:+.2f} pp"


def decomposition_lines(result) -> list[str]:
    """The two rates (county) and the two effects that make up their difference.

    The counterfactual rate behind the effects (B's classes with A's ledger) is not
    printed: it is no rate of any year.
    """
    from farmland.runs.diff import NO_LEDGER

    if not result.rates_compared:
        return [(f"安全利用率 safe-utilisation rate: {NO_LEDGER} (give --measures-a and "
                 "--measures-b)")]
    a, b = result.rate_a, result.rate_b
    years = "" if a.year is None or b.year is None else \
        f" ({a.year})" if a.year == b.year else f" ({a.year} → {b.year})"
    return [
        (f"安全利用率 safe-utilisation rate, {a.county_name}{years}: "
         f"rate A {_pct(a.rate)} → rate B {_pct(b.rate)} ({_pp(b.rate - a.rate)})"),
        (f"  类别调整影响 reclassification effect: {_pp(result.reclassification_effect)}"
         "  — the class changes alone, run A's measures and crop samples held fixed"),
        (f"  措施台账影响 measures effect:          {_pp(result.measures_effect)}"
         "  — the change of measures and crop samples alone, run B's classes held fixed"),
        (("  闭环 closed loop counted in both rates, as farmland rate --closed-loop")
         if all(result.closed_loop) else
         ("  闭环台账 closed-loop ledger: none given — class-3 land counts as controlled by "
          "its measure alone, as farmland rate without --closed-loop (give --closed-loop-a "
          "and --closed-loop-b)")),
    ]


def cause_lines(result) -> list[str]:
    """Changed parcels by cause (parcels and 亩)."""
    from farmland.runs.diff import CAUSE_LABELS

    counts = result.cause_counts()
    lines = [f"{len(result.changes):,} parcel(s) changed, by cause 变化原因:"]
    for cause, n, mu in counts.itertuples(name=None):
        lines.append(f"  {n:>8,} parcel(s) {mu:>12,.1f} 亩  {CAUSE_LABELS[cause]} ({cause})")
    if len(result.changes) and not result.samples_layers:
        lines.append("  (no samples layers — runs from a workspace keep none: causes come "
                     "from the sample_ids columns, new samples are not located)")
    return lines


def print_flows(flows: pd.DataFrame, run_a: str, run_b: str) -> None:
    """Class-flow matrix in 亩 (rows: run A, columns: run B)."""
    t = Table(title=f"类别流转 / Class flows (亩): rows {escape(run_a)} → columns {escape(run_b)}")
    t.add_column("A \\ B")
    for c in flows.columns:
        t.add_column(_LABELS[c], justify="right")
    for label, row in flows.iterrows():
        t.add_row(_LABELS[label], *[f"{v:,.1f}" for v in row])
    console.print(t)
