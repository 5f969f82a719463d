"""Fit the class-probability calibration map on the validation harness (issue 15).

Classifies the truth-known counties of every scenario for the *fitting* seeds (default
4–9: 30 counties, none of them among the seeds 1–3 the README's validation table is
measured on) with the shipped rules profile but ``calibration = "none"``, fits the
monotone map of :mod:`farmland.classify.calibration` on their parcels' raw
``p_class_1..3`` against the truth, and writes it to ``--table`` (default the shipped
``src/farmland/classify/calibration.csv``). Then it classifies the *held-out* seeds
(default 1–3) the same way and prints the pooled reliability of the raw and of the
calibrated probabilities there, with the largest gap a perfectly calibrated predictor
shows on the same parcels (:func:`farmland.validation.metrics.calibration_floor`).
The map does not change any class, so the held-out classes are those of the shipped
profile.

Usage::

    python benchmarks/calibration.py [--fit-seeds 4 5 6 7 8 9] [--test-seeds 1 2 3]
                                     [--table PATH] [--parcels 3000]

About 3 minutes on the 2-core machine (45 counties).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from farmland.classify.calibration import fit_calibration
from farmland.validation import SCENARIOS, validate
from farmland.validation.metrics import pooled_calibration

SRC = Path(__file__).resolve().parents[1] / "src" / "farmland"
TABLE = SRC / "classify" / "calibration.csv"
PROFILE = SRC / "rules" / "county_practice.toml"


def raw_profile(folder: Path) -> Path:
    """The shipped profile with ``calibration = "none"`` (the raw probabilities)."""
    text = PROFILE.read_text(encoding="utf-8")
    if 'calibration = "harness"' not in text:
        raise SystemExit("the shipped profile has no calibration = \"harness\" line to turn off")
    path = folder / "raw.toml"
    path.write_text(text.replace('calibration = "harness"', 'calibration = "none"'),
                    encoding="utf-8")
    return path


def predictions(seeds, rules: Path, parcels: int) -> pd.DataFrame:
    """farmland's per-parcel predictions on every scenario × seed."""
    frames: list[pd.DataFrame] = []
    validate(list(SCENARIOS), seeds, n_parcels=parcels, rules=rules, baselines=(),
             predictions=frames, compare_shipped=False)
    pred = pd.concat(frames, ignore_index=True)
    return pred[pred["method"] == "farmland"].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-seeds", nargs="+", type=int, default=[4, 5, 6, 7, 8, 9])
    parser.add_argument("--test-seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--parcels", type=int, default=3000)
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    start, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        rules = raw_profile(Path(tmp))
        fit = predictions(args.fit_seeds, rules, args.parcels)
        test = predictions(args.test_seeds, rules, args.parcels)
    calibration = fit_calibration(fit, fit["true_class"], fit["area_mu"])
    table = calibration.to_frame()
    tmp_path = args.table.with_suffix(".csv.tmp")
    table.to_csv(tmp_path, index=False)
    os.replace(tmp_path, args.table)
    print(f"fitted on {fit.groupby(['scenario', 'seed']).ngroups} counties "
          f"({len(fit)} parcels, seeds {' '.join(map(str, args.fit_seeds))}): "
          f"{(table['event'] == 'class_ge2').sum()} + {(table['event'] == 'class3').sum()} "
          f"knots -> {args.table}")
    probs = test[["p_class_1", "p_class_2", "p_class_3"]]
    q = pd.DataFrame(dict(zip(probs.columns, calibration.apply(*(probs[c] for c in probs)))))
    print(f"\nheld-out seeds {' '.join(map(str, args.test_seeds))} "
          f"({test.groupby(['scenario', 'seed']).ngroups} counties), pooled, area-weighted:\n")
    print("| probabilities | gap p_class_1 | gap p_class_2 | gap p_class_3 | largest | "
          "floor (perfectly calibrated) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, frame in (("raw", probs), ("calibrated", q)):
        pooled = pooled_calibration(frame, test["true_class"], test["area_mu"])
        gaps = " | ".join(f"{pooled[f'gap_{k}']:.3f}" for k in (1, 2, 3))
        print(f"| {name} | {gaps} | {pooled['gap']:.3f} | {pooled['floor']:.3f} |")
    print(f"\n{time.perf_counter() - start:.0f} s ({os.cpu_count()} cores, load {load:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
