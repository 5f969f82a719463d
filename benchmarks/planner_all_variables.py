"""Would a pre-posterior over all six variables predict the planner's effect? (issue 15)

For each validation county (:mod:`farmland.validation`, 3 000 parcels) farmland
classifies it, the shipped planner places an ``uncertainty`` plan of 5 % of the samples,
the truth is sampled there with the scenario's lab and the county is classified again
with the first run's variograms (as ``benchmarks/planner_effect.py`` does). For the
interpolated parcels next to the new points (not holding one) it then compares the
realised drop in misclassified 亩 with three predictions:

* ``shipped`` — the planner's own (:func:`farmland.sampling.effect.parcel_effect`);
* ``mc_all`` — Monte Carlo over all six variables: at every cell each kriged variable's
  mean moves by N(0, σ² − σ'²) (σ'² its kriging variance with the plan's points, its own
  variogram; IDW fallbacks held fixed), the cells of a parcel together, the variables
  independently; the cell probabilities and area majority are the classification's own
  (``farmland.classify.interpolated``, private functions: they reproduce ``p_class``
  exactly, printed as ``check``), the loss 1 − p of the class decided;
* ``mc_cd`` — the same with Cd alone moving.

Usage::

    python benchmarks/planner_all_variables.py [--seeds 1] [--draws 16]

About 30 s per county on the 2-core machine. Results: benchmarks/README.md ("Where the
neighbours' moves come from", item 6).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from farmland.classify.interpolated import (
    _cell_classes,
    _distribution,
    _parcel_table,
    parcel_cells,
)
from farmland.classify.risk import CellRule
from farmland.geostats.surfaces import interpolation_inputs
from farmland.geostats.variance import kriging_variance
from farmland.rules import load_rules
from farmland.runs.pipeline import classify_run
from farmland.sampling.effect import parcel_effect
from farmland.standards import CLASS_ELEMENTS, load_standard
from farmland.validation.harness import counties
from farmland.validation.planner_effect import (
    county_inputs,
    harness_plan,
    misclassified,
    reclassify,
)

SCENARIOS = ("plumes", "irrigation", "karst", "sparse", "noisy")


class _Given:
    """An estimator that answers with a given (mean, variance) at the cells."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, log: bool):
        self.mean, self.var, self.log = mean, var, log

    def predict_distribution(self, coords):
        return self.mean, self.var

    def predict(self, coords):
        return np.exp(self.mean) if self.log else self.mean


def _classes(dists, coords, cell_landuse, std, rule, labels, n):
    """Parcel classes and ``p_class`` (n, 3) from per-variable cell distributions."""
    given = {v: _Given(m, s, v != "ph") for v, (m, s) in dists.items()}
    cell_class, driver, probs = _cell_classes(given, coords, cell_landuse, std, rule)
    table = _parcel_table(labels, cell_class, driver, probs, n, None)
    return (table["interp_class"].to_numpy(),
            table[["p_class_1", "p_class_2", "p_class_3"]].to_numpy())


def _loss(cls: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return 1 - probs[np.arange(len(cls)), np.clip(cls, 1, 3) - 1]


def county_row(county, draws: int) -> dict:
    rules, std = load_rules(), load_standard()
    rule = CellRule.from_rules(rules["interpolation"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = county_inputs(county, folder)
        first = classify_run(inputs, rules=rules)
        parcels, samples = first.parcels, first.samples
        usable = samples[samples["usable"].astype(bool)]
        plan, planned = harness_plan(county, first, "uncertainty", rules)
        predicted = parcel_effect(parcels, samples, plan, planned=planned)
        after = reclassify(county, plan, folder, inputs, rules, first.surfaces)
    truth = county.truth.set_index("parcel_id")["true_class"]
    area = parcels["area_mu"].to_numpy(float)
    realised = area * (misclassified(parcels, truth).astype(float) - misclassified(after, truth))
    own = parcels["parcel_id"].astype(str).isin(set(plan["parcel_id"].astype(str))).to_numpy()
    interp = parcels["rule"].astype(str).str.startswith("interpolated").to_numpy()
    cls = pd.to_numeric(parcels["final_class"], errors="coerce").to_numpy()
    near = interp & ~own & np.isfinite(cls)
    sel = np.flatnonzero(interp)
    coords, labels = parcel_cells(parcels.geometry.values[sel],
                                  rules.get("interpolation", "cell_size_m"))
    codes, uniques = pd.factorize(np.asarray(parcels["landuse"].to_numpy()[sel], dtype=object))
    cell_landuse = (codes[labels], uniques)
    xy, values = interpolation_inputs(usable)
    new_xy = shapely.get_coordinates(plan.geometry.values)
    dists, moves = {}, {}
    for v in ("ph", *CLASS_ELEMENTS):
        est = first.surfaces(v)
        ok = np.isfinite(values[v])
        est.fit(xy[ok], values[v][ok])
        mean, var = _distribution(est, coords, rule)
        dists[v] = (mean, var)
        model = getattr(est, "variogram_", None)
        if model is not None and getattr(est, "fallback_", None) is None:
            after_var = kriging_variance(model, np.vstack([xy[ok], new_xy]), coords, k=16)
            moves[v] = (np.maximum(var - after_var, 0.0), after_var)
        else:
            moves[v] = (np.zeros(len(mean)), var)
    n = len(sel)
    cls0, p0 = _classes(dists, coords, cell_landuse, std, rule, labels, n)
    loss0 = _loss(cls0, p0)
    check = float(np.nanmax(np.abs(
        p0 - parcels[["p_class_1", "p_class_2", "p_class_3"]].to_numpy(float)[sel])))
    rng = np.random.default_rng([county.seed, 77])
    gain = {}
    for variant, moving in (("mc_all", set(dists)), ("mc_cd", {"cd"})):
        total = np.zeros(n)
        for _ in range(draws):
            moved = {}
            for v, (mean, var) in dists.items():
                spread, after_var = moves[v]
                moved[v] = ((mean + rng.standard_normal(n)[labels] * np.sqrt(spread), after_var)
                            if v in moving else (mean, var))
            total += _loss(*_classes(moved, coords, cell_landuse, std, rule, labels, n))
        gain[variant] = np.zeros(len(parcels))
        gain[variant][sel] = area[sel] * (loss0 - total / draws)
    shipped = (predicted["misclassified_before"] - predicted["misclassified_after"]).to_numpy()
    row = {"scenario": county.scenario, "seed": county.seed, "check": check,
           "realised": realised[near].sum(), "shipped": shipped[near].sum(),
           "mc_all": gain["mc_all"][near].sum(), "mc_cd": gain["mc_cd"][near].sum()}
    for c in (1, 2):
        mine = near & (cls == c)
        row |= {f"realised_{c}": realised[mine].sum(), f"shipped_{c}": shipped[mine].sum(),
                f"mc_all_{c}": gain["mc_all"][mine].sum(), f"mc_cd_{c}": gain["mc_cd"][mine].sum()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--draws", type=int, default=16)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = []
    for county in counties(SCENARIOS, args.seeds, n_parcels=3000):
        rows.append(county_row(county, args.draws))
        print({k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items()},
              flush=True)
    mean = pd.DataFrame(rows).drop(columns=["scenario", "seed"]).mean()
    print(mean.round(1).to_string())
    print("predicted ÷ realised, neighbours: " + ", ".join(
        f"{k} {mean[k] / mean['realised']:.3f}" for k in ("shipped", "mc_all", "mc_cd")))


if __name__ == "__main__":
    main()
