"""``farmland validate``: classify truth-known synthetic counties and score the classes."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import click
import pandas as pd
from rich.table import Table

from farmland.cli import output_dir_option, overwrite_option
from farmland.cli.output import console

VALIDATION_CSV = "validation.csv"
SUMMARY_CSV = "validation_summary.csv"
PLANS_CSV = "plans.csv"
PLANS_SUMMARY_CSV = "plans_summary.csv"
SCENARIO_CHOICES = ("plumes", "irrigation", "karst", "sparse", "noisy", "all")

_COLUMNS = (("agreement", "一致率 Agree."), ("class3_recall", "3类查全 C3 recall"),
            ("class3_precision", "3类查准 C3 prec."),
            ("contaminated_called_clean", "污染判1类 Contam.→1"),
            ("unclassified_share", "未分类 Unclass."), ("calibration_gap", "校准偏差 Calib. gap"),
            ("calibration_floor", "偏差下限 Gap floor"))


@click.command("validate")
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(SCENARIO_CHOICES),
              help="Scenario to run (repeatable; default all): plumes, irrigation, karst, "
                   "sparse, noisy.")
@click.option("--seed", "seeds", multiple=True, type=int,
              help="Seed of a synthetic county (repeatable; default 1 2 3).")
@click.option("--parcels", "n_parcels", type=click.IntRange(50), default=3000, show_default=True,
              help="Parcels per synthetic county (about).")
@click.option("--samples-per-km2", "density", type=click.FloatRange(0.1), default=4.0,
              show_default=True, help="Soil samples per km² of farmland (4 = a 500 m grid).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Rules profile (TOML) to validate; default the shipped county practice.")
@click.option("--plans", is_flag=True,
              help="Measure the sampling planner instead: plan 5 % more samples with each "
                   "mode, sample the truth there, reclassify, compare with the prediction.")
@click.option("--random-draws", type=click.IntRange(1), default=1, show_default=True,
              help="With --plans: random plans averaged per county (the random baseline).")
@click.option("--lab-draws", type=click.IntRange(1), default=1, show_default=True,
              help="With --plans: lab reports of each plan averaged (new field and lab "
                   "errors at the same points).")
@output_dir_option()
@overwrite_option
def command(scenarios, seeds, n_parcels, density, rules, plans, random_draws, lab_draws,
            output, overwrite):
    """Classify truth-known synthetic counties (enterprise plumes, an irrigation band,
    geogenic karst Cd, sparse townships, noisy labs) with farmland and with baselines
    (nearest sample, IDW), and score each against the truth, area-weighted.

    \b
    用已知真值的模拟县检验分类规则：一致率、严格管控类查全/查准、
    污染地判为优先保护类的比例、未分类比例和类别概率校准。

    Writes OUTPUT/validation.csv (one row per scenario × seed × method) and
    validation_summary.csv (mean over seeds, and the mean over scenarios per method).
    With --plans: OUTPUT/plans.csv (one row per scenario × seed × planning mode) and
    plans_summary.csv, the realised and predicted drop of misclassified area.
    """
    from farmland.io.write import csv_writer, refuse_existing, write_outputs
    from farmland.progress import track
    from farmland.validation import DEFAULT_SEEDS, summarise, target_check, validate
    from farmland.validation.harness import screen_line, screen_table

    out = Path(output)
    if not plans and (random_draws, lab_draws) != (1, 1):
        raise click.UsageError("--random-draws and --lab-draws average the planner's "
                               "draws: add --plans, or leave them out.")
    if plans:
        _plans(scenarios or None, seeds or DEFAULT_SEEDS, n_parcels, density, rules, out,
               overwrite, random_draws=random_draws, lab_draws=lab_draws)
        return
    refuse_existing((out / n for n in (VALIDATION_CSV, SUMMARY_CSV)), overwrite=overwrite)
    predictions: list[pd.DataFrame] = []
    with _classification_logs_quiet():
        results = validate(scenarios or None, seeds or DEFAULT_SEEDS, n_parcels=n_parcels,
                           rules=rules, samples_per_km2=density, predictions=predictions,
                           progress=lambda pairs: track(pairs, "验证 / Validating"))
    summary = summarise(results)
    print_summary(summary)
    for line in target_lines(target_check(summary,
                                          predictions=pd.concat(predictions,
                                                                ignore_index=True))):
        click.echo(line)
    for line in fallback_lines(results):
        click.echo(line)
    click.echo(screen_line(screen_table(results)))
    write_outputs(out, {VALIDATION_CSV: csv_writer(results.round(6)),
                        SUMMARY_CSV: csv_writer(summary.round(6))}, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def _plans(scenarios, seeds, n_parcels, density, rules, out: Path, overwrite: bool, *,
           random_draws: int = 1, lab_draws: int = 1) -> None:
    """``--plans``: the realised effect of sampling plans (issue 15 item 4)."""
    from farmland.io.write import csv_writer, refuse_existing, write_outputs
    from farmland.progress import track
    from farmland.validation import plan_target_check, planner_effect, summarise_plans

    refuse_existing((out / n for n in (PLANS_CSV, PLANS_SUMMARY_CSV)), overwrite=overwrite)
    with _classification_logs_quiet():
        results = planner_effect(scenarios, seeds, n_parcels=n_parcels, rules=rules,
                                 samples_per_km2=density, random_draws=random_draws,
                                 lab_draws=lab_draws,
                                 progress=lambda pairs: track(pairs, "加密效果 / Plans"))
    summary = summarise_plans(results)
    print_plans(summary)
    for row in plan_target_check(summary).itertuples(index=False):
        click.echo(f"  {row.description}: {_fmt(row.value)} ({row.threshold}) "
                   f"{'达标 met' if row.met else '未达标 not met'}")
    write_outputs(out, {PLANS_CSV: csv_writer(results.round(6)),
                        PLANS_SUMMARY_CSV: csv_writer(summary.round(6))}, overwrite=overwrite)
    click.echo(f"outputs: {out}")


def print_plans(summary: pd.DataFrame) -> None:
    """Realised and predicted drop of misclassified 亩 per scenario and mode."""
    table = Table(title="加密效果 / Plans against truth (drop of misclassified 亩, inside "
                        "classified parcels and county)")
    for title in ("情景 Scenario", "方式 Mode", "实际 Realised", "预计 Predicted",
                  "全县实际 County realised", "全县预计 County predicted"):
        table.add_column(title, justify="left" if "Scenario" in title or "Mode" in title
                         else "right")
    previous = None
    for row in summary.itertuples(index=False):
        first = row.scenario != previous
        if first and previous is not None:
            table.add_section()
        table.add_row(row.scenario if first else "", row.mode, f"{row.realised:,.0f}",
                      f"{row.predicted:,.0f}", f"{row.realised_all:,.0f}",
                      f"{row.predicted_all:,.0f}",
                      style="bold" if row.scenario == "mean" else None)
        previous = row.scenario
    console.print(table)


@contextlib.contextmanager
def _classification_logs_quiet() -> Iterator[None]:
    """Fifteen classification runs would log hundreds of lines: below -vv only errors of
    the classification modules are shown (the fallbacks are recorded in the CSV)."""
    root = logging.getLogger()
    if root.level <= logging.DEBUG:
        yield
        return
    package, own = logging.getLogger("farmland"), logging.getLogger("farmland.validation")
    levels = package.level, own.level
    package.setLevel(logging.ERROR)
    own.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.setLevel(levels[0])
        own.setLevel(levels[1])


def _fmt(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.3f}"


def print_summary(summary: pd.DataFrame) -> None:
    """Mean over seeds per scenario and method, the mean over scenarios last."""
    seeds = int(summary["n_seeds"].max()) if len(summary) else 0
    table = Table(title=f"验证 / Validation against truth (area-weighted, mean of {seeds} "
                        "seed(s))")
    table.add_column("情景 Scenario")
    table.add_column("方法 Method")
    for _, title in _COLUMNS:
        table.add_column(title, justify="right")
    previous = None
    for row in summary.itertuples(index=False):
        first = row.scenario != previous
        if first and previous is not None:
            table.add_section()
        table.add_row(row.scenario if first else "", row.method,
                      *[_fmt(getattr(row, c)) for c, _ in _COLUMNS],
                      style="bold" if row.scenario == "mean" else None)
        previous = row.scenario
    console.print(table)


def target_lines(targets: pd.DataFrame) -> list[str]:
    """One line per issue-15 target: farmland's mean over scenarios against the target."""
    names = {"class3_recall": "3类查全率 class-3 recall",
             "contaminated_called_clean": "污染判1类 contaminated called clean",
             "agreement": "一致率 agreement (vs best baseline)",
             "calibration_gap": "概率校准 calibration gap"}
    lines = ["目标 Issue-15 targets (farmland, mean over scenarios):"]
    for row in targets.itertuples(index=False):
        verdict = "达标 met" if row.met else "未达标 not met"
        basis = getattr(row, "basis", "mean over scenarios")
        note = "" if basis == "mean over scenarios" else f", {basis}"
        lines.append(f"  {names.get(row.metric, row.metric)}: {_fmt(row.value)} "
                     f"(target {row.target}{note}) {verdict}")
    return lines


def fallback_lines(results: pd.DataFrame) -> list[str]:
    """One line per farmland method (the profile validated, and the shipped one beside it)
    whose kriging fell back to IDW in some run: how many of its runs."""
    lines = []
    for method in ("farmland", "shipped_rules"):
        runs = results.loc[results["method"] == method, "kriging_fallbacks"]
        hit = int((runs.fillna("") != "").sum())
        if hit:
            lines.append(f"{method}: kriging fell back to IDW in {hit} of {len(runs)} run(s) "
                         "(column kriging_fallbacks)")
    return lines
