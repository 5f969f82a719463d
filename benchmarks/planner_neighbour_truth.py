"""How far does a new sample move its neighbours' kriged means, and how far should it? (issue 15)

For each validation county (:mod:`farmland.validation`, 3 000 parcels) farmland
classifies it, the shipped planner places an ``uncertainty`` plan of 5 % of the samples
and the truth is sampled there with the scenario's lab; the samples are screened as in the
harness's second classification (``screened_samples``, the first run's models), as
``benchmarks/planner_effect.py`` does. For every kriged variable, at the representative point of each interpolated parcel
that holds no new point, it then kriges with the first run's variogram from the samples
before (mean m, variance σ²) and from the samples with the plan's points (m′, σ′²), and
compares with the parcel's true mean T (ln for metals; the truth's arithmetic parcel mean):

* ``slope`` — least-squares slope of the error before, T − m, on the move m′ − m. The
  kriging model says 1 (the new mean is the best estimate of T, so what is left, T − m′,
  does not correlate with the move); above 1 the new mean moves too little;
* ``move ÷ model`` — mean squared move over the mean variance drop σ² − σ′² (the
  model's variance of the move, the pre-posterior's input);
* ``error ÷ σ²`` and ``error ÷ (σ² − c₀)`` — mean squared error before over the point
  variance and over the variance with the nugget c₀ taken off (the nugget share ν the
  planner takes as measurement error and short-range variation a parcel mean averages out);
* ``bias`` — mean error T − m before.

Rows are bins of the variance drop 1 − σ′²/σ² (neighbours close to a new point drop more);
a second table gives the same per scenario, all drops above 0.01 together.

Usage::

    python benchmarks/planner_neighbour_truth.py [--seeds 1 2]

About 7 s per county on the 2-core machine. Results: benchmarks/README.md ("The
neighbours' truth against the kriging update").
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from farmland.geostats.surfaces import VARIABLES, interpolation_inputs
from farmland.rules import load_rules
from farmland.runs.pipeline import ClassificationInputs, classify_run
from farmland.sampling.expected import main_variogram
from farmland.sampling.flags import flag_sparse
from farmland.sampling.planner import plan_sampling
from farmland.standards import load_standard
from farmland.validation.harness import counties
from farmland.validation.planner_effect import (
    _plan_lab_report,
    sample_error_cv,
    screened_samples,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark script
from validation import markdown

SCENARIOS = ("plumes", "irrigation", "karst", "sparse", "noisy")
BINS = ((0.01, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, 1.0))


def county_moves(county) -> pd.DataFrame:
    """One row per interpolated parcel without a new point: per kriged variable the mean
    and variance before and after, the nugget and the truth."""
    rules = load_rules()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        county.parcels.to_file(folder / "p.gpkg", layer="parcels", driver="GPKG")
        county.samples.to_file(folder / "s.gpkg", layer="samples", driver="GPKG")
        first = classify_run(ClassificationInputs(parcels=folder / "p.gpkg",
                                                  samples=folder / "s.gpkg", seed=county.seed),
                             rules=rules)
        parcels, samples = first.parcels, first.samples
        n = max(1, round(0.05 * int(samples["usable"].sum())))
        plan = plan_sampling(
            parcels, samples, n=n, mode="uncertainty", flags=flag_sparse(parcels, samples),
            variogram=main_variogram(first.manifest["geostatistics"]["models"], parcels),
            rules=rules.as_dict(), sample_error_cv=sample_error_cv(county), seed=county.seed)
        new = _plan_lab_report(county, plan)
        new.to_file(folder / "n.gpkg", layer="samples", driver="GPKG")
        both = ClassificationInputs(parcels=folder / "p.gpkg",
                                    samples=[folder / "s.gpkg", folder / "n.gpkg"],
                                    seed=county.seed)
        _, later_samples, _ = screened_samples(both, rules, first.surfaces, load_standard())
    keep = ~parcels["parcel_id"].astype(str).isin(set(plan["parcel_id"].astype(str))).to_numpy()
    keep &= parcels["rule"].astype(str).str.startswith("interpolated").to_numpy()
    parcels = parcels[keep]
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    truth = county.truth.set_index("parcel_id").reindex(parcels["parcel_id"].astype(str))
    out = pd.DataFrame({"scenario": np.repeat(county.scenario, len(parcels))})
    before = interpolation_inputs(samples[samples["usable"].astype(bool)])
    later = interpolation_inputs(later_samples[later_samples["usable"].astype(bool)])
    for var in VARIABLES:
        model = first.surfaces.models.get(var)
        if model is None or isinstance(model, str):  # not kriged (an IDW fallback)
            continue
        moments = []
        for xy, values in (before, later):
            ok = np.isfinite(values[var])
            est = first.surfaces(var)  # the run's estimator: its model, k and scale
            moments.append(est.fit(xy[ok], values[var][ok])._moments(rep)[:2])
        (m0, v0), (m1, v1) = moments
        t = truth[var].to_numpy(float)
        out[f"{var}_error"] = (t if var == "ph" else np.log(t)) - m0
        out[f"{var}_move"] = m1 - m0
        out[f"{var}_v0"], out[f"{var}_v1"], out[f"{var}_c0"] = v0, v1, model.nugget
    return out


def table(moves: pd.DataFrame, bins=BINS, group: str | None = None) -> pd.DataFrame:
    """Per variable (and ``group`` column) and bin of the variance drop: the figures of
    the module docstring."""
    if group is not None:
        return pd.concat([table(part, bins).assign(**{group: key}).set_index(group).reset_index()
                          for key, part in moves.groupby(group, sort=False)], ignore_index=True)
    rows = []
    for var in VARIABLES:
        if f"{var}_move" not in moves:
            continue
        v0, v1, c0 = (moves[f"{var}_{k}"].to_numpy(float) for k in ("v0", "v1", "c0"))
        err, move = moves[f"{var}_error"].to_numpy(float), moves[f"{var}_move"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            drop = 1 - v1 / v0
        ok = np.isfinite(err) & np.isfinite(move) & np.isfinite(drop)
        for lo, hi in bins:
            m = ok & (drop > lo) & (drop <= hi)
            if m.sum() < 30:
                continue
            rows.append({"variable": var, "variance drop": f"{lo:g}–{hi:g}", "parcels": int(m.sum()),
                         "slope": np.sum(err[m] * move[m]) / np.sum(move[m] ** 2),
                         "move ÷ model": np.mean(move[m] ** 2) / np.mean(v0[m] - v1[m]),
                         "error ÷ σ²": np.mean(err[m] ** 2) / np.mean(v0[m]),
                         "error ÷ (σ² − c₀)": np.mean(err[m] ** 2) / np.mean(v0[m] - c0[m]),
                         "nugget share": np.mean(c0[m] / v0[m]), "bias": np.mean(err[m])})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    moves = pd.concat([county_moves(c) for c in counties(SCENARIOS, args.seeds, n_parcels=3000)],
                      ignore_index=True)
    print(markdown(table(moves), 2))
    print()
    print(markdown(table(moves, ((0.01, 1.0),), group="scenario"), 2))


if __name__ == "__main__":
    main()
