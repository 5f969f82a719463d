"""Validation grid of issue 15: farmland and the baselines on truth-known counties.

Runs every scenario of :mod:`farmland.validation.scenarios` (enterprise plumes,
irrigation band, geogenic karst Cd, sparse townships, noisy labs) for seeds 1, 2, 3
at about 3 000 parcels each, through farmland's own classification run and the
nearest-sample and IDW baselines on the same samples, and prints Markdown tables:

* mean over seeds per scenario and method (area-weighted metrics, see
  :mod:`farmland.validation.metrics`) and the mean over scenarios;
* the issue-15 targets for farmland (mean over scenarios);
* the pooled reliability of ``p_class_1..3`` (all counties, by tenth of probability);
* how often kriging fell back to IDW, and the wall time.

Usage::

    python benchmarks/validation.py [--seeds 1 2 3] [--parcels 3000] [--rules FILE]
                                    [--out out/validation]

Writes ``validation.csv``, ``validation_summary.csv`` and ``reliability.csv`` to
``--out``. Takes about a minute on the 2-core machine. ``farmland validate`` runs the
same grid from the command line (without the reliability tables).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import pandas as pd

from farmland.validation import (
    DEFAULT_SEEDS,
    SCENARIOS,
    reliability_table,
    summarise,
    target_check,
    validate,
)
from farmland.validation.harness import screen_table
from farmland.validation.metrics import pooled_calibration

COLUMNS = {"agreement": "agreement", "agreement_all": "agreement (all area)",
           "class3_recall": "class-3 recall", "class3_precision": "class-3 precision",
           "contaminated_called_clean": "contaminated → 1", "unclassified_share": "unclassified",
           "calibration_gap": "calibration gap", "calibration_floor": "floor",
           "seconds": "s / county"}


def markdown(frame: pd.DataFrame, digits: int = 3, *, thousands: bool = False) -> str:
    """A GitHub Markdown table (numbers to ``digits`` decimals, with thousands separators
    when ``thousands``; NaN as –)."""
    sep = "," if thousands else ""

    def cell(v):
        if isinstance(v, float):
            return "–" if pd.isna(v) else f"{v:{sep}.{digits}f}"
        return str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(frame.columns))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def pooled_reliability(predictions: list[pd.DataFrame]) -> pd.DataFrame:
    """Reliability of farmland's p_class_k pooled over every county (area-weighted)."""
    pred = pd.concat(predictions, ignore_index=True)
    pred = pred[pred["method"] == "farmland"]
    tables = []
    for k in (1, 2, 3):
        table = reliability_table(pred[f"p_class_{k}"], pred["true_class"] == k, pred["area_mu"])
        tables.append(table.assign(p_class=k))
    return pd.concat(tables, ignore_index=True)


def pooled_by_scenario(predictions: list[pd.DataFrame]) -> pd.DataFrame:
    """Largest calibration gap of farmland's p_class_k per scenario (its seeds pooled) and
    over all counties, with the floor of a perfectly calibrated predictor."""
    pred = pd.concat(predictions, ignore_index=True)
    pred = pred[pred["method"] == "farmland"]
    rows = []
    for name, part in [*pred.groupby("scenario", sort=False), ("all counties", pred)]:
        pooled = pooled_calibration(part, part["true_class"], part["area_mu"])
        rows.append({"scenario": name, "counties": part.groupby(["scenario", "seed"]).ngroups,
                     **{f"gap p_class_{k}": pooled[f"gap_{k}"] for k in (1, 2, 3)},
                     "largest": pooled["gap"], "floor": pooled["floor"]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--parcels", type=int, default=3000)
    parser.add_argument("--rules", default=None, help="rules profile (TOML) for farmland")
    parser.add_argument("--out", type=Path, default=Path("out/validation"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("farmland").setLevel(logging.ERROR)
    logging.getLogger("farmland.validation").setLevel(logging.INFO)

    load = os.getloadavg()[0]
    start = time.perf_counter()
    predictions: list[pd.DataFrame] = []
    results = validate(args.scenario, args.seeds, n_parcels=args.parcels, rules=args.rules,
                       predictions=predictions)
    wall = time.perf_counter() - start
    summary = summarise(results)
    reliability = pooled_reliability(predictions)

    table = summary[["scenario", "method", *COLUMNS]].rename(columns=COLUMNS)
    print(f"## Validation: {len(args.scenario)} scenario(s) × seeds "
          f"{' '.join(map(str, args.seeds))}, ~{args.parcels} parcels per county\n")
    print(markdown(table) + "\n")
    targets = target_check(summary, predictions=pd.concat(predictions, ignore_index=True))
    targets["met"] = targets["met"].map({True: "met", False: "not met"})
    print("### Issue-15 targets (farmland, mean over scenarios)\n")
    print(markdown(targets[["metric", "target", "value", "met", "basis"]]) + "\n")
    print("### Reliability of p_class_k (farmland, all counties pooled, area-weighted)\n")
    shown = reliability[reliability["area_share"] >= 0.01]
    print(markdown(shown[["p_class", "lower", "upper", "n_parcels", "area_share", "predicted",
                          "observed", "gap"]], digits=3) + "\n")
    print("### Calibration pooled per scenario (farmland; floor: a perfectly calibrated "
          "predictor on the same parcels)\n")
    print(markdown(pooled_by_scenario(predictions)) + "\n")
    print("### The outlier screen against the known gross errors (farmland, values summed "
          "over counties; flagged: left out of the surfaces)\n")
    print(markdown(screen_table(results)) + "\n")
    farm = results[results["method"] == "farmland"]
    fell = farm["kriging_fallbacks"].fillna("")
    counts = pd.Series([v for cell in fell for v in cell.split(",") if v]).value_counts()
    print(f"Kriging fell back to IDW in {int((fell != '').sum())} of {len(farm)} farmland runs "
          f"(variables: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'none'}).")
    print(f"Wall time {wall:.0f} s for {len(farm)} counties "
          f"({os.cpu_count()} cores, load average {load:.1f} at the start).")

    args.out.mkdir(parents=True, exist_ok=True)
    results.round(6).to_csv(args.out / "validation.csv", index=False, encoding="utf-8-sig")
    summary.round(6).to_csv(args.out / "validation_summary.csv", index=False,
                            encoding="utf-8-sig")
    reliability.round(6).to_csv(args.out / "reliability.csv", index=False, encoding="utf-8-sig")
    print(f"\nwrote {args.out}/validation.csv, validation_summary.csv, reliability.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
