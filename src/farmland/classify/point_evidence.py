"""A parcel's own samples as evidence combined with its neighbourhood (issue 15).

County practice (``[points] rule = "override"``) gives a parcel holding usable samples
the class of its points: any class-3 point makes it class 3, else the most frequent
point class. One lab value near a threshold then decides the parcel alone, although it
carries the lab's error and the parcel's variation around the sampled spot (the
variogram's nugget). ``rule = "evidence"`` weighs the parcel's own values against what
the other samples say about the spot, per class-driving element on the log scale:

* **prior** — the ordinary kriging of ln Z at the centroid of the parcel's own samples
  from the *other* samples (its own left out), with the run's fitted variogram: mean
  ``m``, point variance ``v``;
* **measurement** — the parcel's own values ``y₁..yₙ`` (ln mg/kg), each with error
  variance ``τ² = max(s·c₀, ln(1 + cv²))``: ``c₀`` the nugget, ``s`` =
  ``[points] error_share`` the share of it that is measurement error (lab error and the
  parcel's variation around the sampled spot) rather than real variation between
  spots, ``cv`` = ``[points] error_cv`` a floor (what the lab's duplicates say; fitted
  nuggets of 0 occur and would make one sample a perfect measurement). The error part
  of the nugget is the measurement's, so the prior variance of the true value is
  ``σ²_p = v − min(τ², c₀)``;
* **posterior** — precision-weighted: ``1/σ² = 1/σ²_p + n/τ²``,
  ``μ = σ² (m/σ²_p + Σy/τ²)``. Without a kriging prior (the element fell back to IDW,
  or no other sample is in reach) the own values alone: ``μ = ȳ``, ``σ² = τ²/n``.

The class probabilities follow from the posterior as for interpolated cells
(:func:`farmland.geostats.estimators.class_probabilities`, thresholds of the own
samples' pH and land use, the strictest when they differ), and the class from the same
decision rule (``[interpolation] decision``: the risk thresholds or the posterior
median). The strict override stays: with ``strict_override = true`` a parcel holding a
point above the intervention value is class 3 whatever the evidence says. With
``[points] evidence_lowers = false`` the points' own class (the majority) is a floor:
the evidence may raise a parcel, never lower it. A parcel the evidence classes otherwise
than its points' majority gets the rule code ``points:evidence`` and the QA flag
``evidence_not_point_class_<c>`` naming the points' class; where the evidence agrees
the rule stays ``points:majority`` (the ``p_class_*`` are the posterior's either way).
Evaluation units other than the parcel keep the county rule (a unit's class is the
unit's points', by definition).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shapely

from farmland.classify.risk import CellRule, risk_classes
from farmland.classify.samples import _thresholds
from farmland.geostats.estimators import (
    LocalKriging,
    class_probabilities,
    exceedance_probability,
)
from farmland.geostats.kriging import Neighbourhoods, ordinary_kriging
from farmland.geostats.surfaces import interpolation_values
from farmland.rules import Rules
from farmland.standards import CLASS_ELEMENTS

__all__ = ["DEFAULTS", "apply_point_evidence", "evidence_classes", "extra_neighbours",
           "posterior"]

log = logging.getLogger(__name__)

#: ``[points]`` keys of this rule and their values when a rules object lacks them (a
#: profile read by :func:`farmland.rules.load_rules` has the shipped values; without the
#: key the rule is county practice)
DEFAULTS = {"rule": "override", "error_share": 1.0, "error_cv": 0.2, "evidence_lowers": False}


def extra_neighbours(samples: pd.DataFrame, rules: Rules) -> int:
    """How many neighbours beyond ``k`` the rule can reach from a parcel: the kriging from
    the *other* samples takes the k nearest after leaving out up to this many own ones
    (the most usable samples one parcel holds; 0 when the rule is off). The incremental
    re-classification widens its reach by it (:mod:`farmland.runs.incremental`)."""
    if {**DEFAULTS, **rules["points"]}["rule"] != "evidence" or "parcel_id" not in samples:
        return 0
    ids = samples.loc[samples["usable"].to_numpy(bool), "parcel_id"].dropna()
    return int(ids.value_counts().max()) if len(ids) else 0


def posterior(own: np.ndarray, prior_mean: np.ndarray, prior_var: np.ndarray,
              nugget: np.ndarray, *, error_share: float, error_cv: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of ln Z at each parcel (see the module docstring).

    Parameters
    ----------
    own
        (p, m) the parcels' own values, ln mg/kg (NaN pads parcels with fewer than m).
    prior_mean, prior_var
        (p,) kriging mean and point variance (nugget included) of ln Z from the other
        samples; NaN where there is none.
    nugget
        (p,) or scalar nugget c₀ of the element's variogram (NaN or 0 without one).
    error_share, error_cv
        ``s`` and the floor ``cv`` of the measurement error.

    Returns
    -------
    mean, var
        (p,); NaN where neither a prior nor an own value exists.
    """
    own = np.atleast_2d(np.asarray(own, float))
    c0 = np.nan_to_num(np.broadcast_to(np.asarray(nugget, float), prior_mean.shape), nan=0.0)
    tau2 = np.maximum(error_share * c0, np.log1p(error_cv**2))
    n = np.isfinite(own).sum(axis=1)
    total = np.nansum(own, axis=1)
    prior_ok = np.isfinite(prior_mean) & np.isfinite(prior_var)
    # the error part of the nugget is the measurement's, not the soil's (never both)
    var_p = np.maximum(np.where(prior_ok, prior_var, 1.0) - np.minimum(tau2, c0), 1e-12)
    precision = np.where(prior_ok, 1.0 / var_p, 0.0) + n / tau2
    with np.errstate(divide="ignore", invalid="ignore"):
        var = 1.0 / precision
        mean = var * (np.where(prior_ok, prior_mean / var_p, 0.0) + total / tau2)
    none = ~prior_ok & (n == 0)
    return np.where(none, np.nan, mean), np.where(none, np.nan, var)


def evidence_classes(moments: dict[str, tuple[np.ndarray, np.ndarray]],
                     screen: dict[str, np.ndarray], interv: dict[str, np.ndarray],
                     rule: CellRule) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Class, class probabilities and driving element of parcels from posteriors.

    ``moments``: element -> (mean, var) of ln Z (NaN: unknown, counted below the
    screening value); ``screen``/``interv``: element -> thresholds (mg/kg). The class is
    that of ``rule.decision``: ``"risk"`` by the probabilities, ``"median"`` by exp(mean)
    against the thresholds (worst element). The driver is the element most likely above
    the threshold of the class (None for class 1).
    """
    p_screen, p_interv, median_cls = {}, {}, []
    for el, (mean, var) in moments.items():
        known = np.isfinite(mean) & np.isfinite(var) & np.isfinite(screen[el])
        m, v = np.where(known, mean, 0.0), np.where(known, var, 0.0)
        p_screen[el] = np.where(known, exceedance_probability(
            m, v, np.where(known, screen[el], 1.0)), 0.0)
        cut = np.where(np.isfinite(interv[el]), interv[el], np.inf)
        p_interv[el] = np.where(known & np.isfinite(cut),
                                exceedance_probability(m, v, np.where(np.isfinite(cut), cut, 1.0)),
                                0.0)
        median = np.where(known, np.exp(m), 0.0)
        median_cls.append(np.where(median > cut, 3, np.where(known & (median > screen[el]),
                                                              2, 1)))
    probs = class_probabilities(p_screen, p_interv)
    if rule.decision == "risk":
        cls = risk_classes(*probs, tau3=rule.risk_class3, tau2=rule.risk_class2).astype(int)
    else:
        cls = np.max(median_cls, axis=0)
    names = np.array(list(moments), dtype=object)
    by_screen = names[np.argmax(np.column_stack(list(p_screen.values())), axis=1)]
    by_interv = names[np.argmax(np.column_stack(list(p_interv.values())), axis=1)]
    driver = np.where(cls == 3, by_interv, np.where(cls == 2, by_screen, None))
    return cls, probs, driver


def apply_point_evidence(out, usable: pd.DataFrame, standard, rules: Rules, models) -> None:
    """Re-class the parcels the point majority classed (``points:majority``) by evidence,
    in place on ``out``, when the rules say ``[points] rule = "evidence"``.

    ``models`` is the run's ``variable -> estimator`` factory (``None`` when nothing was
    interpolated: the own values then stand alone, with their error). Parcels of the
    strict override keep class 3; with ``strict_override = false`` their class 3 is a
    majority and is re-classed too.
    """
    opts = {**DEFAULTS, **rules["points"]}
    if opts["rule"] != "evidence":
        return
    if "unit_id" in out:
        log.info("evaluation units: the point rule stays the county's (class of the unit's "
                 "points); [points] rule = \"evidence\" applies to parcels alone")
        return
    rows = np.flatnonzero(out["rule"].eq("points:majority").to_numpy())
    mask = usable["parcel_id"].isin(set(out["parcel_id"].iloc[rows])).to_numpy()
    if not len(rows) or not mask.any():
        return
    own, usable_row = usable[mask], np.flatnonzero(mask)
    pos = pd.Series(np.arange(len(rows)), index=out["parcel_id"].iloc[rows].to_numpy())
    target = pos.reindex(own["parcel_id"]).to_numpy()
    slot = own.groupby(target).cumcount().to_numpy()
    width = int(slot.max()) + 1
    xy_own = shapely.get_coordinates(own.geometry.values)
    centre = np.column_stack([np.bincount(target, weights=xy_own[:, i], minlength=len(rows))
                              for i in (0, 1)]) / np.bincount(target, minlength=len(rows))[:, None]
    xy = shapely.get_coordinates(usable.geometry.values)
    landuse = own["landuse_used"].to_numpy(dtype=object)
    ph = own["ph"].to_numpy(dtype=float, na_value=np.nan)
    strictest = rules.get("points", "missing_ph") == "strictest_band"
    moments, screen, interv = {}, {}, {}
    for el in CLASS_ELEMENTS:
        values = interpolation_values(usable, el) if el in usable else np.full(len(usable),
                                                                                np.nan)
        raw = pd.to_numeric(own[el], errors="coerce").to_numpy(dtype=float, na_value=np.nan) \
            if el in own else np.full(len(own), np.nan)
        logs = np.full((len(rows), width), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs[target, slot] = np.where(raw > 0, np.log(raw), np.nan)
        mean, var, nugget = _prior(models, el, xy, values, centre, target, slot, width,
                                   usable_row)
        moments[el] = posterior(logs, mean, var, nugget, error_share=opts["error_share"],
                                error_cv=opts["error_cv"])
        screen[el] = _strictest(_thresholds(standard.screening_values, el, landuse, ph,
                                            strictest), target, len(rows))
        interv[el] = _strictest(_thresholds(lambda e, _lu, p: standard.intervention_values(e, p),
                                            el, landuse, ph, strictest), target, len(rows))
    evidence, probs, driver = evidence_classes(moments, screen, interv,
                                               CellRule.from_rules(rules["interpolation"]))
    cls = _flag_floor(own, target, evidence, rules)
    if not opts["evidence_lowers"]:  # the points' class is a floor: evidence only raises
        points = out["soil_class"].to_numpy(dtype=float, na_value=0)[rows].astype(int)
        cls = np.maximum(cls, points)
        driver = np.where(cls > evidence, out["driving_element"].to_numpy(dtype=object)[rows],
                          driver)
    _write(out, rows, cls, probs, driver)


def _prior(models, el, xy, values, centre, target, slot, width, usable_row):
    """Kriging mean, point variance and nugget at the parcels from the other samples
    (NaN where the element has no kriging model)."""
    nan = np.full(len(centre), np.nan)
    est = models(el) if models is not None else None
    if not isinstance(est, LocalKriging):
        return nan, nan, nan
    ok = np.isfinite(values)
    if ok.sum() < 2:
        return nan, nan, nan
    est.fit(xy[ok], values[ok])
    if est.fallback_ is not None:
        return nan, nan, nan
    rank = np.cumsum(ok) - 1  # usable row -> row among the fitted values
    own_rows = np.full((len(centre), width), -1, dtype=np.int64)
    fitted = ok[usable_row]
    own_rows[target[fitted], slot[fitted]] = est.sample_location_[rank[usable_row[fitted]]]
    centre = est.space(centre)   # the variogram's kriging space (anisotropy)
    nb = _neighbourhoods_without(est, centre, own_rows)
    out = ordinary_kriging(est.variogram_, est.coords_, est.values_, est.tree_, centre,
                           k=est.k, neighbours=nb)
    return out[0], out[1], np.full(len(centre), float(est.variogram_.nugget))


def _neighbourhoods_without(est: LocalKriging, targets: np.ndarray,
                            exclude: np.ndarray) -> Neighbourhoods:
    """The k nearest samples of each target leaving out its rows in ``exclude`` (−1 pads),
    grouped by identical sets as :func:`farmland.geostats.kriging.neighbourhoods` does."""
    n = est.tree_.n
    k_query = min(est.k + exclude.shape[1], n)
    radius = np.inf if est.search_radius is None else float(est.search_radius)
    dist, idx = est.tree_.query(targets, k=k_query, distance_upper_bound=radius)
    dist, idx = dist.reshape(len(targets), -1), idx.reshape(len(targets), -1)
    dropped = (idx[:, :, None] == exclude[:, None, :]).any(axis=2)
    dist = np.where(dropped, np.inf, dist)
    order = np.argsort(dist, axis=1, kind="stable")[:, : min(est.k, k_query)]
    idx = np.where(np.isinf(np.take_along_axis(dist, order, axis=1)), n,
                   np.take_along_axis(idx, order, axis=1))
    sets = np.sort(idx, axis=1).astype(np.int32)
    _, group = np.unique(sets, axis=0, return_inverse=True)
    group = group.ravel()
    by_group = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(group[by_group])) + 1, [len(group)]])
    return Neighbourhoods(sets, by_group, starts.astype(np.int64), n)


def _strictest(values: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    """Per parcel the lowest of its own samples' thresholds (NaN when none has one)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, target, np.where(np.isfinite(values), values, np.inf))
    return np.where(np.isfinite(out), out, np.nan)


def _flag_floor(own: pd.DataFrame, target: np.ndarray, cls: np.ndarray, rules: Rules):
    """Class 2 at least where a flag element (Cu, Ni, Zn, organics) raised an own point
    (``flag_elements_raise_class``): the evidence covers the class-driving metals only."""
    if not rules.get("points", "flag_elements_raise_class"):
        return cls
    metal = np.column_stack([own[f"class_{el}"].fillna(0).to_numpy(dtype=int)
                             for el in CLASS_ELEMENTS if f"class_{el}" in own])
    raised = own["point_class"].fillna(0).to_numpy(dtype=int) > metal.max(axis=1)
    floor = np.bincount(target, weights=raised, minlength=len(cls)) > 0
    return np.where(floor, np.maximum(cls, 2), cls)


def _write(out, rows: np.ndarray, cls: np.ndarray, probs: tuple, driver: np.ndarray) -> None:
    point_class = out["soil_class"].to_numpy(dtype=float, na_value=np.nan)[rows]
    col = out.columns.get_loc
    out.iloc[rows, col("soil_class")] = cls
    # the rule that decided: the points' majority when the evidence agrees with it
    out.iloc[rows, col("rule")] = np.where(cls != point_class, "points:evidence",
                                           "points:majority")
    out.iloc[rows, col("driving_element")] = driver
    for c, p in enumerate(probs, start=1):
        out.iloc[rows, col(f"p_class_{c}")] = p
    out.iloc[rows, col("class_confidence")] = np.column_stack(probs)[np.arange(len(rows)),
                                                                    cls - 1]
    changed = np.flatnonzero(point_class != cls)
    for i in changed:
        out.iat[rows[i], col("qa_flags")].append(f"evidence_not_point_class_{int(point_class[i])}")
    if len(changed):
        log.info("point evidence: %d of %d parcels with samples classed otherwise than their "
                 "points (own values weighed against the neighbourhood)", len(changed), len(rows))
