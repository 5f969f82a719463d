"""Realised effect of sampling plans on truth-known counties (issue 15, item 4).

For each county (:func:`~farmland.validation.synthetic.make_county`) farmland classifies
the lab report as ``farmland classify`` would; then, for every planning mode, the planner
places N = 5 % of the existing samples (``farmland plan`` defaults: 250 m spacing,
coverage restricted to the sparse-data flags, the fitted variogram of the main driving
metal and the run's rules; the sample error a county knows from its QC duplicates,
:func:`sample_error_cv`), the truth is sampled at those points with the scenario's own
lab (within-field variation, lab error, gross errors, ``<DL``), and the county is
classified again with the old and new samples. Scored against the truth, area-weighted:

- misclassified 亩 inside the parcels the first run classified, before and after;
- misclassified 亩 of the whole county, an unclassified parcel counting as wrong;

and next to each the reduction the planner predicted for the plan
(:func:`farmland.sampling.effect.parcel_effect`).

**Same seed discipline.** Every mode samples the same county with lab errors drawn from
the same streams (``default_rng([seed, 5])`` and ``[seed, 5, scenario]``), so the k-th
point of two plans of N points gets the same error draws; ``random`` draws its points
with the county's seed, the coverage k-means starts from it too. With ``random_draws`` =
R > 1 the random baseline is R plans per county (the first with the county's seed, the
others with ``SeedSequence([seed, r])``), each sampled and classified, and its row is the
mean of the R (column ``draws``): one draw of 5 % random points is a noisy estimate of
what random points remove, and the item-4 ratio divides by it. With ``lab_draws`` = L > 1
every plan's points are sampled L times (the first from the stream above, then
``[seed, 5 + 1000·l]``: new within-field and lab errors at the same points), each report
classified, and the realised reductions are the mean: what a plan removes in expectation
over what the field team may bring back, not one report's luck.

**Fixed variograms.** The second classification reuses the first run's fitted models
(5 % more samples would barely move a variogram, and refitting would add to every
mode's realised effect a change that has nothing to do with where the points went);
``refit=True`` refits them, as a plain re-run of ``farmland classify`` would. It screens
outliers as ``farmland classify --variograms reuse`` does: the global and spatial rules,
then the leave-one-out rule with those models (before 2026-12-04 it skipped the
leave-one-out rule, so the first run's leave-one-out suspects were kriged again in every
mode's second classification).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.classify.parcels import classify_parcels
from farmland.classify.samples import classify_samples
from farmland.rules import load_rules
from farmland.runs.pipeline import (
    ClassificationInputs,
    classify_run,
    first_screen,
    leave_one_out_screen,
    read_inputs,
)
from farmland.sampling.effect import parcel_effect
from farmland.sampling.expected import main_variogram
from farmland.sampling.flags import flag_sparse
from farmland.sampling.planner import plan_sampling
from farmland.standards import load_standard
from farmland.validation.harness import counties, seed_means
from farmland.validation.scenarios import SCENARIOS
from farmland.validation.synthetic import (
    WITHIN_FIELD_SD,
    SyntheticCounty,
    lab_report_at,
)

__all__ = ["BY_CLASS", "PLAN_MODES", "PLAN_SHARE", "PLAN_TARGETS", "county_inputs",
           "draw_seed", "evaluate_plans", "harness_plan", "lab_part", "misclassified",
           "movement_by_class", "plan_target_check", "planner_effect", "reclassify",
           "sample_error_cv", "summarise_plans"]

log = logging.getLogger(__name__)

PLAN_MODES = ("uncertainty", "coverage", "combined", "random")
#: new points as a share of the existing samples
PLAN_SHARE = 0.05
_PLAN_PART = 5
#: per-class columns of :func:`evaluate_plans` (class of the first run)
BY_CLASS = tuple(f"{what}_{c}" for c in (1, 2, 3)
                 for what in ("wrong", "expected_wrong", "realised", "predicted"))
#: issue-15 item-4 targets: (description, check on the mean row)
PLAN_TARGETS = {
    "uncertainty_vs_coverage": "uncertainty removes ≥ 2× the misclassified 亩 of coverage "
                               "inside classified parcels",
    "uncertainty_vs_random": "uncertainty removes ≥ 4× the misclassified 亩 of random points "
                             "inside classified parcels",
    "combined_vs_coverage": "combined never worse than coverage on the whole county "
                            "(every scenario)",
    "prediction": "predicted reduction within a factor 1.5 of the realised one (uncertainty)",
}


def evaluate_plans(county: SyntheticCounty, *, share: float = PLAN_SHARE,
                   modes: Sequence[str] = PLAN_MODES, rules: str | Path | None = None,
                   refit: bool = False, details: list | None = None,
                   random_draws: int = 1, lab_draws: int = 1) -> pd.DataFrame:
    """Plan, sample and reclassify one county for every mode; one row per mode.

    Columns: ``scenario``, ``seed``, ``mode``, ``n_samples``, ``n_points``,
    ``classified_mu``, ``misclassified_before`` / ``realised`` / ``predicted`` (inside
    the parcels classified before, 亩), ``misclassified_all_before`` / ``realised_all`` /
    ``predicted_all`` (whole county, unclassified = wrong), ``realised_own`` /
    ``predicted_own`` (the parcels holding a new point), ``plan_seconds``, and per class
    c of the first run inside classified parcels ``wrong_c`` (misclassified 亩 before),
    ``expected_wrong_c`` (what the planner's model expected of them), ``realised_c`` and
    ``predicted_c`` (:data:`BY_CLASS`), ``draws`` (plans averaged: ``random_draws`` for
    ``random``, else 1), ``lab_draws`` (lab reports of each plan averaged). Reductions are
    positive when the plan removed misclassified area.

    With a list ``details``, one frame per mode is appended to it: one row per parcel
    with ``scenario``, ``seed``, ``mode``, ``parcel_id``, ``area_mu``, ``kind``,
    ``own`` (holds a new point), ``true_class``, ``class_before``/``class_after``,
    ``p1_before``/``p1_after`` (``p_class_1``), ``expected_before``/``expected_after``
    (the planner's expected misclassified 亩) and ``variance_ratio``
    (:func:`~farmland.sampling.effect.parcel_effect`); see :func:`movement_by_class`
    (with ``draw``, 0 … R − 1, for the random draws).
    """
    for name, value in (("random_draws", random_draws), ("lab_draws", lab_draws)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    rules_obj = load_rules(rules)
    with tempfile.TemporaryDirectory(prefix="farmland-plans-") as tmp:
        folder = Path(tmp)
        inputs = county_inputs(county, folder, rules=rules)
        first = classify_run(inputs, rules=rules_obj)
        rows = []
        for mode in modes:
            draws = random_draws if mode == "random" else 1
            rows.append(_mean_row([
                _mode_row(county, first, mode, share=share, folder=folder, inputs=inputs,
                          rules=rules_obj, refit=refit, details=details,
                          seed=draw_seed(county.seed, d), draw=d, lab_draws=lab_draws)
                for d in range(draws)]))
    out = pd.DataFrame(rows)
    log.info("plans %s seed %d: %s", county.scenario, county.seed,
             ", ".join(f"{r.mode} {r.realised:+.0f} 亩 (predicted {r.predicted:+.0f})"
                       for r in out.itertuples()))
    return out


def county_inputs(county: SyntheticCounty, folder: Path,
                  rules: str | Path | None = None) -> ClassificationInputs:
    """The county's parcels and lab report written to ``folder`` (``parcels.gpkg``,
    ``samples.gpkg``) as farmland reads them, and the inputs of a run on them."""
    county.parcels.to_file(folder / "parcels.gpkg", layer="parcels", driver="GPKG")
    county.samples.to_file(folder / "samples.gpkg", layer="samples", driver="GPKG")
    return ClassificationInputs(parcels=folder / "parcels.gpkg",
                                samples=folder / "samples.gpkg", rules=rules, seed=county.seed)


def harness_plan(county: SyntheticCounty, first, mode: str, rules, *,
                 share: float = PLAN_SHARE, seed: int | None = None):
    """``(plan, planned)`` of ``plan_sampling`` after the first run ``first`` of
    ``county``, as the harness plans: N = ``share`` of the usable samples, ``farmland
    plan``'s defaults (the sparse-data flags, the main variogram, the run's ``rules``), the
    sample error the county's QC duplicates give (:func:`sample_error_cv`), the planner's
    ``seed`` the county's unless given."""
    parcels, samples = first.parcels, first.samples
    n = max(1, round(share * int(samples["usable"].sum())))
    return plan_sampling(
        parcels, samples, n=n, mode=mode, flags=flag_sparse(parcels, samples),
        variogram=main_variogram(first.manifest["geostatistics"]["models"], parcels),
        rules=rules.as_dict(), sample_error_cv=sample_error_cv(county),
        seed=county.seed if seed is None else seed, return_effect=True)


def draw_seed(seed: int, draw: int) -> int:
    """The planner's seed of draw ``draw`` of a county: the county's seed for the first,
    then one 32-bit word of ``SeedSequence([seed, draw])``."""
    if draw == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(draw)]).generate_state(1)[0])


def lab_part(draw: int) -> int:
    """The lab stream (``part`` of :func:`~farmland.validation.synthetic.lab_report_at`) of
    lab draw ``draw``: the harness's plan stream for the first, so every mode's k-th point
    gets the same errors as before; ``_PLAN_PART + 1000·draw`` after it."""
    return _PLAN_PART + 1000 * int(draw)


def _mean_row(rows: list[dict]) -> dict:
    """One row for the plans ``rows`` of one county and mode: numbers averaged over them
    (``draws`` says how many), the rest from the first."""
    out = dict(rows[0])
    for key, value in out.items():
        if isinstance(value, float):
            out[key] = float(np.mean([r[key] for r in rows]))
    out["draws"] = len(rows)
    return out


def _mode_row(county: SyntheticCounty, first, mode: str, *, share: float, folder: Path,
              inputs: ClassificationInputs, rules, refit: bool,
              details: list | None = None, seed: int | None = None, draw: int = 0,
              lab_draws: int = 1) -> dict:
    """Plan with one mode after the first run ``first`` (parcels, samples, manifest,
    surfaces), sample the truth, reclassify and score; the planner's ``seed`` is the
    county's unless given. With ``lab_draws`` = L > 1 the plan's points are sampled L
    times (:func:`lab_part`), each report classified, and the realised reductions are
    their mean (``details`` keeps the first)."""
    truth = county.truth.set_index("parcel_id")["true_class"]
    parcels, samples = first.parcels, first.samples
    area = parcels["area_mu"].to_numpy(dtype=float)
    classified = parcels["final_class"].notna().to_numpy()
    start = time.perf_counter()
    plan, planned = harness_plan(county, first, mode, rules, share=share, seed=seed)
    seconds = time.perf_counter() - start
    predicted = parcel_effect(parcels, samples, plan, planned=planned)  # as `farmland plan`
    expected = predicted["misclassified_before"].to_numpy()
    gain = expected - predicted["misclassified_after"].to_numpy()
    afters = [reclassify(county, plan, folder, inputs, rules,
                          None if refit else first.surfaces, part=lab_part(r))
              for r in range(lab_draws)]
    after = afters[0]
    wrong0 = misclassified(parcels, truth)
    wrongs = [misclassified(a, truth) for a in afters]
    own = parcels["parcel_id"].astype(str).isin(set(plan["parcel_id"])).to_numpy()

    def drop(mask: np.ndarray) -> float:
        """Misclassified 亩 removed in ``mask``, mean over the lab draws."""
        before = area[mask & wrong0].sum()
        return float(np.mean([before - area[mask & w].sum() for w in wrongs]))

    today = _numbers(parcels["final_class"])
    if details is not None:
        ids = parcels["parcel_id"].astype(str)
        later = after.set_index(after["parcel_id"].astype(str)).reindex(ids)
        details.append(pd.DataFrame({
            "scenario": county.scenario, "seed": county.seed, "mode": mode, "draw": draw,
            "parcel_id": ids.to_numpy(), "area_mu": area,
            "kind": predicted["kind"].to_numpy(), "own": own,
            "true_class": truth.reindex(ids).to_numpy(float),
            "class_before": today, "class_after": _numbers(later["final_class"]),
            "p1_before": _numbers(parcels["p_class_1"]), "p1_after": _numbers(later["p_class_1"]),
            "expected_before": expected,
            "expected_after": predicted["misclassified_after"].to_numpy(),
            "variance_ratio": predicted["variance_ratio"].to_numpy()}))
    by_class = {}
    for c in (1, 2, 3):
        mine = today == c
        by_class |= {f"wrong_{c}": float(area[mine & wrong0].sum()),
                     f"expected_wrong_{c}": float(expected[mine].sum()),
                     f"realised_{c}": drop(mine), f"predicted_{c}": float(gain[mine].sum())}
    return {"scenario": county.scenario, "seed": county.seed, "mode": mode,
            "n_samples": int(samples["usable"].sum()), "n_points": len(plan),
            "classified_mu": float(area[classified].sum()),
            "misclassified_before": float(area[classified & wrong0].sum()),
            "realised": drop(classified), "predicted": float(gain[classified].sum()),
            "misclassified_all_before": float(area[wrong0].sum()),
            "realised_all": drop(np.ones(len(area), dtype=bool)),
            "predicted_all": float(gain.sum()),
            "realised_own": drop(own), "predicted_own": float(gain[own].sum()),
            "plan_seconds": round(seconds, 2), "lab_draws": lab_draws, **by_class}


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def movement_by_class(details: pd.DataFrame, mode: str = "uncertainty",
                      clip: float = 0.005) -> pd.DataFrame:
    """How the classes of interpolated parcels near a plan's points moved, against what the
    planner's Gaussian pre-posterior says, per class of the first run.

    For a parcel whose kriging variance fell to r² of today's, the pre-posterior says the
    kriged mean moves by ξ ~ N(0, 1 − r²) (today's standard deviation as unit). The move
    that happened is read from the latent cut of ``p_class_1`` before and after,
    z = Φ⁻¹(p1): (m' − m)/σ = z − r·z' (σ' = rσ; parcels with p1 within ``clip`` of 0 or
    1 before or after are left out, where z is not defined well). Columns: ``parcels``,
    ``area_mu``, ``bias`` (mean move ÷ the mean of its predicted standard deviation;
    + = towards a stricter class), ``spread`` (mean squared move ÷ mean predicted variance; 1 = as
    predicted). Area-weighted over the neighbours (parcels holding a new point are left
    out: their own sample decides them).
    """
    from scipy.special import ndtri

    d = details[(details["mode"] == mode) & (details["kind"] == "interpolated")
                & ~details["own"].astype(bool) & (details["variance_ratio"] < 1.0)]
    p0, p1 = d["p1_before"].to_numpy(float), d["p1_after"].to_numpy(float)
    ok = (np.minimum(p0, p1) > clip) & (np.maximum(p0, p1) < 1 - clip)
    p0, p1 = p0[ok], p1[ok]
    r2 = d["variance_ratio"].to_numpy(float)[ok]
    area = d["area_mu"].to_numpy(float)[ok]
    cls = d["class_before"].to_numpy(float)[ok]
    move = ndtri(p0) - np.sqrt(r2) * ndtri(p1)   # (m' − m)/σ, + = towards class ≥ 2
    rows = []
    for c in np.unique(cls[np.isfinite(cls)]):
        m = cls == c
        w, var = area[m], 1.0 - r2[m]
        rows.append({"class": int(c), "parcels": int(m.sum()), "area_mu": float(w.sum()),
                     "bias": float(np.average(move[m], weights=w)
                                   / np.average(np.sqrt(var), weights=w)),
                     "spread": float(np.average(move[m] ** 2, weights=w)
                                     / np.average(var, weights=w))})
    return pd.DataFrame(rows)


def sample_error_cv(county: SyntheticCounty) -> float:
    """What a county's QC duplicates would tell its planner: the lab's Cd repeatability
    combined with the within-field variation of a sample (CV of one sample against its
    parcel), e.g. 0.18 for a 15 % lab, 0.32 for the noisy 30 % lab."""
    var = np.log1p(SCENARIOS[county.scenario].lab_cv["cd"] ** 2) + WITHIN_FIELD_SD**2
    return float(np.sqrt(np.expm1(var)))


def misclassified(parcels: pd.DataFrame, truth: pd.Series) -> np.ndarray:
    """Misclassified or unclassified, per parcel (in the parcels' order)."""
    cls = _numbers(parcels["final_class"])
    true = truth.reindex(parcels["parcel_id"].astype(str)).to_numpy(dtype=float)
    return np.isnan(cls) | (cls != true)


def reclassify(county: SyntheticCounty, plan: gpd.GeoDataFrame, folder: Path,
                inputs: ClassificationInputs, rules, surfaces, *,
                part: int = _PLAN_PART) -> pd.DataFrame:
    """Classify the county again with the lab report (stream ``part``) of the plan's
    points added."""
    new = _plan_lab_report(county, plan, part=part)
    path = folder / "plan_samples.gpkg"
    new.to_file(path, layer="samples", driver="GPKG")
    both = ClassificationInputs(parcels=inputs.parcels, samples=[inputs.samples, path],
                                rules=inputs.rules, seed=inputs.seed)
    if surfaces is None:
        return classify_run(both, rules=rules).parcels
    std = load_standard()
    parcels, classified, surfaces = screened_samples(both, rules, surfaces, std)
    out, _, _ = classify_parcels(parcels, classified, rules=rules, interpolator=surfaces,
                                 standard=std)
    return out


def screened_samples(inputs: ClassificationInputs, rules, surfaces, standard):
    """(parcels, classified samples, surfaces) of ``inputs`` screened as ``farmland classify
    --variograms reuse`` screens them with the models ``surfaces``: the global and spatial
    outlier rules, then the leave-one-out rule (without it the first run's leave-one-out
    suspects would be kriged again)."""
    parcels, samples, _ = read_inputs(inputs, rules=rules)
    samples, outliers = first_screen(samples, standard, rules, inputs.outliers)
    classified = classify_samples(samples, parcels=parcels, standard=standard, rules=rules)
    classified, surfaces, _, _ = leave_one_out_screen(
        samples, classified, outliers, surfaces, parcels=parcels, standard=standard,
        rules=rules, mode=inputs.outliers, keep=frozenset(surfaces.models))
    return parcels, classified, surfaces


def _plan_lab_report(county: SyntheticCounty, plan: gpd.GeoDataFrame, *,
                     part: int = _PLAN_PART) -> gpd.GeoDataFrame:
    """What the scenario's lab reports at the plan's points (ids ``N001``…)."""
    return lab_report_at(county, shapely.get_coordinates(plan.geometry.values), part=part,
                         prefix="N")


def planner_effect(scenarios: Iterable[str] | str | None = None,
                   seeds: Iterable[int] = (1, 2, 3), *, n_parcels: int = 3000,
                   share: float = PLAN_SHARE, modes: Sequence[str] = PLAN_MODES,
                   rules: str | Path | None = None, refit: bool = False,
                   progress: Callable[[list], Iterable] | None = None,
                   details: list | None = None, random_draws: int = 1,
                   lab_draws: int = 1, **county_options) -> pd.DataFrame:
    """:func:`evaluate_plans` on every scenario × seed (rows concatenated; ``details``,
    ``random_draws`` and ``lab_draws`` as there)."""
    return pd.concat([evaluate_plans(county, share=share, modes=modes, rules=rules, refit=refit,
                                     details=details, random_draws=random_draws,
                                     lab_draws=lab_draws)
                      for county in counties(scenarios, seeds, n_parcels=n_parcels,
                                             progress=progress, **county_options)],
                     ignore_index=True)


def summarise_plans(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per scenario × mode, then a ``mean`` row per mode (mean of the
    scenario means); ``ratio`` = predicted / realised inside classified parcels."""
    numeric = ["n_points", "misclassified_before", "realised", "predicted",
               "misclassified_all_before", "realised_all", "predicted_all", "realised_own",
               "predicted_own", "plan_seconds"]
    numeric += [c for c in BY_CLASS if c in results]
    out = seed_means(results, "mode", numeric)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["predicted"] / out["realised"]
    return out


def plan_target_check(summary: pd.DataFrame) -> pd.DataFrame:
    """The item-4 targets on the summary: ``target``, ``value``, ``met``."""
    mean = summary[summary["scenario"] == "mean"].set_index("mode")
    per = summary[summary["scenario"] != "mean"]

    def at(mode: str, col: str) -> float:
        return float(mean.loc[mode, col]) if mode in mean.index else float("nan")

    def ratio(a: float, b: float) -> float:
        # a baseline that removed nothing (0 亩) gives no ratio: not met, not a crash
        return a / b if b != 0 else float("nan")

    u = at("uncertainty", "realised")
    rows = [("uncertainty_vs_coverage", ratio(u, at("coverage", "realised")), ">= 2"),
            ("uncertainty_vs_random", ratio(u, at("random", "realised")), ">= 4")]
    comb = per[per["mode"] == "combined"].set_index("scenario")["realised_all"]
    cov = per[per["mode"] == "coverage"].set_index("scenario")["realised_all"]
    worst = float((comb - cov.reindex(comb.index)).min()) if len(comb) else float("nan")
    rows.append(("combined_vs_coverage", worst, ">= 0"))
    rows.append(("prediction", ratio(at("uncertainty", "predicted"), u), "1/1.5 .. 1.5"))
    out = []
    for key, value, target in rows:
        if key == "prediction":
            met = 1 / 1.5 <= value <= 1.5
        else:
            met = value >= float(target.split()[-1])
        out.append({"target": key, "description": PLAN_TARGETS[key], "value": value,
                    "threshold": target, "met": bool(met and np.isfinite(value))})
    return pd.DataFrame(out)
