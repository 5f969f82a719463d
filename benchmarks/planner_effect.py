"""Realised effect of sampling plans on truth-known counties (issue 15, item 4).

For every scenario × seed of :mod:`farmland.validation.scenarios` the county is
classified, N = 5 % of its samples are planned with each mode (uncertainty, coverage,
combined, random), the truth is sampled there with the scenario's lab, the county is
classified again (the first run's variograms) and the misclassified area is compared
with the truth before and after, next to the reduction the planner predicted
(:mod:`farmland.validation.planner_effect`). Prints Markdown tables:

* mean over seeds per scenario and mode, and the mean over scenarios: realised and
  predicted reduction of misclassified 亩 inside the parcels classified before, the same
  for the whole county (unclassified = wrong), and for the parcels holding a new point;
* the item-4 targets;
* for the uncertainty plans, the same by the class of the first run (misclassified 亩
  before, what the planner's model expected of them, realised and predicted reduction),
  and how far and which way the kriged means of the points' neighbours moved against
  the pre-posterior's N(0, 1 − r²) (:func:`farmland.validation.planner_effect.
  movement_by_class`; per-parcel rows in ``details.parquet``).

Usage::

    python benchmarks/planner_effect.py [--scenario plumes karst] [--seeds 1 2 3 4 5]
                                        [--modes uncertainty random] [--rules FILE]
                                        [--random-draws 10] [--lab-draws 10]
                                        [--out out/planner_effect]
    python benchmarks/planner_effect.py --tables out/a/plans.csv out/b/plans.csv

``--tables`` only prints the tables of rows written before (e.g. one scenario per run,
to keep each run short). ``--random-draws R`` averages R random plans per county (each
sampled and classified; the first is the single draw of earlier tables), so the random
baseline's mean is not one draw's luck; ``--lab-draws L`` samples every plan's points L
times (new within-field and lab errors) and averages what the L reports remove. A county
takes 30–60 s on the 2-core machine (most of it the
five classification runs; an uncertainty plan 2–20 s, more where samples are sparse).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

from farmland.validation import (
    PLAN_MODES,
    SCENARIOS,
    plan_target_check,
    planner_effect,
    summarise_plans,
)
from farmland.validation.planner_effect import BY_CLASS, movement_by_class

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark script
from validation import markdown as validation_markdown

COLUMNS = {"realised": "realised", "predicted": "predicted", "ratio": "predicted / realised",
           "realised_all": "realised, county", "predicted_all": "predicted, county",
           "realised_own": "realised, own parcels", "predicted_own": "predicted, own parcels",
           "misclassified_before": "misclassified before", "n_points": "points",
           "plan_seconds": "plan s"}


def markdown(frame: pd.DataFrame, digits: int = 1) -> str:
    """The harness's Markdown table (benchmarks/validation.py), in 亩 with separators."""
    return validation_markdown(frame, digits, thousands=True)


def class_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    """One row per class of the first run: the uncertainty plans' mean over scenarios."""
    if not set(BY_CLASS) <= set(summary):
        return None
    mean = summary[(summary["scenario"] == "mean") & (summary["mode"] == "uncertainty")]
    if mean.empty:
        return None
    row = mean.iloc[0]
    return pd.DataFrame([{"class today": c, "misclassified before": row[f"wrong_{c}"],
                          "expected by the model": row[f"expected_wrong_{c}"],
                          "realised": row[f"realised_{c}"], "predicted": row[f"predicted_{c}"]}
                         for c in (1, 2, 3)])


def print_movement(details: pd.DataFrame) -> None:
    """How far and which way the neighbours of the uncertainty plans' points moved."""
    table = movement_by_class(details)
    if table.empty:
        return
    print("\n### Uncertainty plans: the move of the neighbours' kriged means\n")
    print("Interpolated parcels near the new points (not holding one), by class of the first "
          "run; the move (m' − m)/σ read from p_class_1 before and after. `bias`: mean move "
          "÷ the mean predicted sd (+ = towards class ≥ 2); `spread`: mean squared move ÷ the "
          "predicted 1 − r² (1 = as the pre-posterior says).\n")
    print(validation_markdown(table.rename(columns={"area_mu": "亩"}), 2, thousands=True))


def print_tables(results: pd.DataFrame) -> None:
    summary = summarise_plans(results)
    seeds = sorted(results["seed"].unique())
    print(f"## Planner effect: {results['scenario'].nunique()} scenario(s) × seeds "
          f"{' '.join(map(str, seeds))}, N = 5 % of the samples\n")
    print("Reductions of misclassified 亩 (positive = fewer misclassified), mean over seeds; "
          "`inside` = parcels classified before the plan.\n")
    table = summary[["scenario", "mode", *COLUMNS]].rename(columns=COLUMNS)
    table["predicted / realised"] = table["predicted / realised"].round(2)
    print(markdown(table) + "\n")
    targets = plan_target_check(summary)
    targets["met"] = targets["met"].map({True: "met", False: "not met"})
    print("### Item-4 targets\n")
    print(markdown(targets[["target", "description", "value", "threshold", "met"]], digits=2))
    by_class = class_table(summary)
    if by_class is not None:
        print("\n### Uncertainty plans by the class of the first run (mean over scenarios)\n")
        print("Inside classified parcels: misclassified 亩 before and what the planner's model "
              "expected of them, then the realised and the predicted reduction.\n")
        print(markdown(by_class))
    for column, what in (("draws", "Plans"), ("lab_draws", "Lab reports of a plan")):
        if column in results and (results[column] > 1).any():
            counts = results.groupby("mode")[column].max()
            print(f"\n{what} averaged per county: " + ", ".join(
                f"{m} {int(n)}" for m, n in counts.items()))
    spread = results.groupby("mode")["realised"].agg(["std", "count"])
    print("\nSpread of the realised reduction between counties (inside, 亩): " + ", ".join(
        f"{m} sd {r['std']:.0f} (n = {int(r['count'])}, standard error of the mean "
        f"{r['std'] / r['count'] ** 0.5:.0f})" for m, r in spread.iterrows()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--parcels", type=int, default=3000)
    parser.add_argument("--refit", action="store_true",
                        help="refit the variograms in the second classification")
    parser.add_argument("--modes", nargs="+", default=list(PLAN_MODES))
    parser.add_argument("--rules", default=None, help="rules profile (TOML) of both runs")
    parser.add_argument("--random-draws", type=int, default=1,
                        help="random plans averaged per county (default 1)")
    parser.add_argument("--lab-draws", type=int, default=1,
                        help="lab reports of each plan averaged (default 1)")
    parser.add_argument("--out", type=Path, default=Path("out/planner_effect"))
    parser.add_argument("--tables", nargs="+", type=Path, default=None,
                        help="print the tables of plans.csv files written before")
    args = parser.parse_args(argv)
    if args.tables:
        print_tables(pd.concat([pd.read_csv(p) for p in args.tables], ignore_index=True))
        saved = [p.with_name("details.parquet") for p in args.tables]
        if all(p.exists() for p in saved):
            print_movement(pd.concat([pd.read_parquet(p) for p in saved], ignore_index=True))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("farmland").setLevel(logging.ERROR)
    logging.getLogger("farmland.validation").setLevel(logging.INFO)
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    details: list[pd.DataFrame] = []
    results = planner_effect(args.scenario, args.seeds, n_parcels=args.parcels,
                             modes=args.modes, rules=args.rules, refit=args.refit,
                             details=details, random_draws=args.random_draws,
                             lab_draws=args.lab_draws)
    wall = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    results.round(4).to_csv(args.out / "plans.csv", index=False)
    every = pd.concat(details, ignore_index=True)
    every.to_parquet(args.out / "details.parquet", index=False)
    print_tables(results)
    print_movement(every)
    print(f"\nWall time {wall:.0f} s for {results[['scenario', 'seed']].drop_duplicates().shape[0]}"
          f" counties ({os.cpu_count()} cores, load average {load:.1f} at the start); wrote "
          f"{args.out}/plans.csv and details.parquet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
