"""The point rule with measurement error on the validation grid (issue 15).

Every county of the grid (five scenarios × seeds 1, 2, 3, about 3 000 parcels) is
classified once through farmland's run with the shipped rules but the county-practice
point rule (the first setting), then the parcels holding
samples are re-classed from that run's parcels, samples and fitted variograms by
:func:`farmland.classify.point_evidence.apply_point_evidence` with each setting of
``[points]`` (``rule``, ``error_share``, ``error_cv``, ``evidence_lowers``) — the same
call ``classify_parcels`` makes, so every row scores the same samples and surfaces.
Prints the trade-off table (mean over scenarios of the seed means, area-weighted metrics
of :mod:`farmland.validation.metrics`) and, per scenario, the agreement on the parcels
holding samples.

Usage::

    python benchmarks/point_rule.py [--seeds 1 2 3] [--parcels 3000] [--out FILE.csv]
    python benchmarks/point_rule.py --tables FILE.csv   # the tables of rows written before

About two minutes on the shared 2-core machine (one classification per county).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from farmland.classify.point_evidence import apply_point_evidence
from farmland.rules import load_rules
from farmland.runs.pipeline import ClassificationInputs, classify_run
from farmland.standards import load_standard
from farmland.validation import SCENARIOS
from farmland.validation.harness import seed_means
from farmland.validation.metrics import class_metrics
from farmland.validation.synthetic import make_county

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark script
from validation import markdown

#: (label, [points] settings); the first row is county practice
SETTINGS = [("override (county practice)", {"rule": "override"})] + [
    (f"evidence, share {s:g}, cv {cv:g}{'' if lowers else ', raise only'}",
     {"rule": "evidence", "error_share": s, "error_cv": cv, "evidence_lowers": lowers})
    for lowers in (True, False) for s, cv in ((0.0, 0.2), (0.5, 0.2), (1.0, 0.2), (0.5, 0.3))]
METRICS = ["agreement", "class3_recall", "class3_precision", "contaminated_called_clean",
           "calibration_gap", "own_agreement", "own_contaminated_called_clean", "own_changed"]
HEADERS = {"agreement": "agreement", "class3_recall": "class-3 recall",
           "class3_precision": "class-3 precision", "contaminated_called_clean": "contaminated → 1",
           "calibration_gap": "calibration gap", "own_agreement": "agreement, sampled parcels",
           "own_contaminated_called_clean": "contaminated → 1, sampled parcels",
           "own_changed": "sampled parcels re-classed"}


def _rules(settings: dict, path: Path):
    lines = ["[points]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}"
                            for k, v in settings.items()]
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return load_rules(path)


def _scores(out, base, truth) -> dict:
    ids = out["parcel_id"].astype(str)
    t = truth["true_class"].reindex(ids).to_numpy(int)
    area = truth["area_mu"].reindex(ids).to_numpy(float)
    pred = out["final_class"].to_numpy(dtype=float, na_value=np.nan)
    scores = class_metrics(t, pd.array(pred, dtype="Int8"), area,
                           out[["p_class_1", "p_class_2", "p_class_3"]].reset_index(drop=True))
    own = base["rule"].str.startswith("points:").to_numpy()
    dirty = own & (t >= 2)
    scores["own_agreement"] = float(area[own & (pred == t)].sum() / area[own].sum())
    scores["own_contaminated_called_clean"] = float(area[dirty & (pred == 1)].sum()
                                                    / max(area[dirty].sum(), 1e-9))
    before = base["final_class"].to_numpy(dtype=float, na_value=np.nan)
    scores["own_changed"] = float((own & (pred != before)).sum() / max(own.sum(), 1))
    return scores


def evaluate(scenario: str, seed: int, n_parcels: int, std, rules: list) -> list[dict]:
    county = make_county(scenario, seed, n_parcels=n_parcels)
    with tempfile.TemporaryDirectory(prefix="farmland-points-") as tmp:
        folder = Path(tmp)
        county.parcels.to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG")
        county.samples.to_file(folder / "samples.gpkg", layer="samples", driver="GPKG")
        run = classify_run(ClassificationInputs(parcels=folder / "parcels.gpkg",
                                                samples=folder / "samples.gpkg", seed=seed),
                           rules=rules[0][1])  # county practice: every sampled parcel re-classed
    truth = county.truth.set_index("parcel_id")
    usable = run.samples[run.samples["usable"]]
    base, rows = run.parcels, []
    for label, profile in rules:
        out = base.copy()
        out["qa_flags"] = [f.split(";") if f else [] for f in out["qa_flags"]]
        apply_point_evidence(out, usable, std, profile, run.surfaces)
        out["final_class"] = out["soil_class"]  # no crops in the harness counties
        rows.append({"scenario": scenario, "seed": seed, "setting": label,
                     **_scores(out, base, truth)})
    return rows


def print_tables(results: pd.DataFrame, seeds) -> None:
    """The trade-off table (mean over scenarios) and the sampled parcels' agreement."""
    summary = seed_means(results, "setting", METRICS)
    mean = summary[summary["scenario"] == "mean"]
    print(f"## Point rule: {len(SCENARIOS)} scenarios × seeds {' '.join(map(str, seeds))}"
          ", mean over scenarios\n")
    print(markdown(mean[["setting", *METRICS]].rename(columns=HEADERS), digits=4) + "\n")
    own = summary[summary["scenario"] != "mean"].pivot(index="setting", columns="scenario",
                                                       values="own_agreement")
    print("### Agreement on the parcels holding samples, per scenario\n")
    print(markdown(own.reindex([s for s, _ in SETTINGS])[list(SCENARIOS)].reset_index()) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--parcels", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=None, help="CSV of the per-county rows")
    parser.add_argument("--tables", type=Path, default=None, help="print the tables of a CSV")
    args = parser.parse_args(argv)
    if args.tables:
        print_tables(pd.read_csv(args.tables), args.seeds)
        return 0
    logging.basicConfig(level=logging.ERROR)
    std = load_standard()
    load, start, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        rules = [(label, _rules(s, Path(tmp) / f"points{i}.toml"))
                 for i, (label, s) in enumerate(SETTINGS)]
        rows = [r for name in SCENARIOS for seed in args.seeds
                for r in evaluate(name, seed, args.parcels, std, rules)]
    results = pd.DataFrame(rows)
    print_tables(results, args.seeds)
    print(f"Wall time {time.perf_counter() - start:.0f} s, CPU {time.process_time() - cpu:.0f} s "
          f"({os.cpu_count()} cores, load average {load:.1f} at the start).")
    if args.out:
        results.round(6).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
