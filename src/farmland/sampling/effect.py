"""What a sampling plan would change: distance to the nearest sample, farmland cells
without a sample, the expected misclassified area and the expected area whose class
changes, per township and for the county, before and after the plan (the table
``farmland plan`` prints and writes as ``plan_effect.csv``).

The expected figures come from the planner's own calculation
(:class:`~farmland.sampling.expected.ExpectedEffect`): the plan's points are committed
in priority order, each lowering the kriging variance where it joins a neighbourhood
and giving its parcel its own (noisy) sample.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.classes import parcel_area_mu
from farmland.crs import require_metric, same_crs
from farmland.sampling.expected import (
    INTERPOLATED,
    UNCLASSIFIED,
    EffectSettings,
    ExpectedEffect,
)
from farmland.sampling.modes import EDGE_DISTANCE_M, candidate_points, candidate_spacing
from farmland.sampling.planner import PlannedEffect, candidate_effect
from farmland.sampling.zones import farmland_cells, sample_cells, usable_samples
from farmland.vocabulary import COUNTY, townships_of

__all__ = ["parcel_effect", "plan_effect"]

#: kind of a parcel in :func:`parcel_effect`
KIND_NAMES = {INTERPOLATED: "interpolated", UNCLASSIFIED: "unclassified", 2: "fixed"}


def plan_effect(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    plan: gpd.GeoDataFrame,
    *,
    cell_size: float = 1000.0,
    townships: gpd.GeoDataFrame | pd.DataFrame | None = None,
    variogram_range: float | None = None,
    variogram=None,
    rules=None,
    planned: PlannedEffect | None = None,
) -> pd.DataFrame:
    """Before/after figures of a plan per township and for the county (last row).

    Distances run from each parcel's representative point to the nearest sample,
    weighted by the parcel's 亩; cells are ``cell_size`` squares aligned to multiples
    of it holding farmland (a cell counts in every township with farmland in it; the
    county counts it once). The expected misclassified area and class changes are
    those of :func:`parcel_effect` (the settings stored on the plan, else
    ``variogram``/``variogram_range``/``rules``; ``planned`` as there).

    Returns
    -------
    pandas.DataFrame
        ``township``, ``farmland_mu``, ``n_samples``, ``n_new``, ``mean_dist_before_m``,
        ``mean_dist_after_m``, ``p95_dist_before_m``, ``p95_dist_after_m``,
        ``uncovered_cells_before``, ``uncovered_cells_after``,
        ``misclassified_mu_before``, ``misclassified_mu_after`` (expected misclassified
        亩 of interpolated and unclassified parcels, an unclassified parcel counting as
        misclassified), ``class_change_mu`` (亩 expected to change class).
    """
    require_metric(parcels)
    parcels = parcels.loc[~(parcels.geometry.isna() | parcels.geometry.is_empty)]
    old = same_crs(usable_samples(samples), parcels, "samples")
    new = same_crs(plan, parcels, "plan") if len(plan) else plan
    old_xy = shapely.get_coordinates(old.geometry.values) if len(old) else np.zeros((0, 2))
    new_xy = shapely.get_coordinates(new.geometry.values) if len(new) else np.zeros((0, 2))
    both = np.vstack([old_xy, new_xy])
    town = townships_of(parcels).to_numpy()
    mu = parcel_area_mu(parcels).to_numpy(dtype=float)
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    d0, d1 = _nearest(rep, old_xy), _nearest(rep, both)
    per = parcel_effect(parcels, samples, plan, variogram_range=variogram_range,
                        variogram=variogram, rules=rules, planned=planned)
    u0, u1 = per["misclassified_before"].to_numpy(), per["misclassified_after"].to_numpy()
    change = per["class_change"].to_numpy()
    cells = farmland_cells(parcels, cell_size)
    cells["township"] = town[cells["pos"]]
    filled0 = sample_cells(old, cell_size)
    filled1 = filled0 | sample_cells(new, cell_size) if len(new) else filled0
    # one grouping per table, not a mask over every parcel and cell per township (that
    # grew as townships × parcels: quadratic at province scale)
    parcel_rows = pd.Series(np.arange(len(town))).groupby(town, sort=False).indices
    cell_rows = cells.groupby("township", sort=False).indices
    none = np.zeros(0, dtype=np.int64)
    n_old, n_new = _count_by_township(old, parcels, town), _count_by_township(new, parcels, town)
    rows = [_effect_row(name, parcel_rows[name], mu, d0, d1, (u0, u1, change),
                        cells.iloc[cell_rows.get(name, none)], filled0, filled1,
                        (n_old.get(name, 0), n_new.get(name, 0)))
            for name in _township_order(town, townships)]
    rows.append(_effect_row(COUNTY, np.arange(len(town)), mu, d0, d1, (u0, u1, change), cells,
                            filled0, filled1, (len(old), len(new))))
    return pd.DataFrame(rows)


def _township_order(town: np.ndarray, townships) -> list[str]:
    names = sorted(set(town))
    if townships is None or "township" not in townships:
        return names
    given = [t for t in townships["township"].astype(str) if t in set(names)]
    return list(dict.fromkeys(given + names))


def _nearest(points: np.ndarray, samples: np.ndarray) -> np.ndarray:
    if not len(samples):
        return np.full(len(points), np.nan)
    return cKDTree(samples).query(points)[0]


def parcel_effect(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame,
                  plan: gpd.GeoDataFrame, *, variogram_range: float | None = None,
                  variogram=None, rules=None,
                  planned: PlannedEffect | None = None) -> pd.DataFrame:
    """Expected misclassified 亩 of every parcel before and after a plan.

    The plan's points are committed in ``priority`` order into the planner's
    :class:`~farmland.sampling.expected.ExpectedEffect`, evaluated at the planner's
    candidate grid (``plan.attrs["planner"]``: spacing and edge distance, else 100 m
    and 5 m). ``planned`` (from ``plan_sampling(..., return_effect=True)`` with these
    parcels and samples) is that effect already committed: it is used when it holds
    this plan's points, parcels, samples and settings, and nothing is computed again.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``parcels``: ``parcel_id``, ``kind`` (``interpolated``,
        ``unclassified``, ``fixed``), ``area_mu``, ``misclassified_before``,
        ``misclassified_after`` and ``class_change`` (亩), ``variance_ratio`` (σ'²/σ² of
        the kriging variance after the plan, 亩-weighted over the parcel's evaluation
        points; NaN where the plan cannot move the parcel's probabilities).
    """
    require_metric(parcels)
    parcels = parcels.loc[~(parcels.geometry.isna() | parcels.geometry.is_empty)]
    settings = plan.attrs.get("effect")
    if settings is None or variogram is not None or variogram_range is not None or rules:
        settings = EffectSettings.from_rules(rules, variogram=variogram,
                                             variogram_range=variogram_range)
    old = same_crs(usable_samples(samples), parcels, "samples")
    old_xy = shapely.get_coordinates(old.geometry.values) if len(old) else np.zeros((0, 2))
    new_xy, own = _priority_points(plan, parcels)
    if planned is not None and planned.matches(len(parcels), old_xy, new_xy, own, settings):
        effect, before = planned.effect, planned.before
    else:
        effect, before = _committed_effect(parcels, old_xy, new_xy, own, settings,
                                           plan.attrs.get("planner", {}))
    return pd.DataFrame({
        "parcel_id": parcels["parcel_id"].astype(str).to_numpy(),
        "kind": [KIND_NAMES[k] for k in effect.kind],
        "area_mu": parcel_area_mu(parcels).to_numpy(dtype=float),
        "misclassified_before": before, "misclassified_after": effect.parcel_totals(),
        "class_change": effect.parcel_totals(effect.change_probability()),
        "variance_ratio": effect.variance_ratio(),
    }, index=parcels.index)


def _priority_points(plan: gpd.GeoDataFrame,
                     parcels: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The plan's points (metres, the parcels' CRS) in ``priority`` order and the
    positions of their parcels."""
    if not len(plan):
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    new = same_crs(plan, parcels, "plan")
    order = (np.argsort(new["priority"].to_numpy(), kind="stable") if "priority" in new
             else np.arange(len(new)))
    return (shapely.get_coordinates(new.geometry.values)[order],
            _plan_parcels(new.iloc[order], parcels))


def _committed_effect(parcels: gpd.GeoDataFrame, old_xy: np.ndarray, new_xy: np.ndarray,
                      own: np.ndarray, settings: EffectSettings,
                      info: dict) -> tuple[ExpectedEffect, np.ndarray]:
    """The planner's effect at its candidate grid (spacing and edge distance of ``info``)
    with the plan's points committed in order, and the parcels' totals before."""
    geoms = parcels.geometry.values
    spacing = candidate_spacing(geoms, info.get("candidate_spacing"))
    xy, owner = candidate_points(geoms, spacing=spacing,
                                 edge_distance=info.get("edge_distance", EDGE_DISTANCE_M))
    effect = candidate_effect(parcels, old_xy, xy, owner, settings)
    if len(new_xy):
        d, row = cKDTree(xy).query(new_xy)
        for p_xy, o, dist, r in zip(new_xy, own, d, row):
            effect.commit(p_xy, int(o), row=int(r) if dist == 0 else None)
    before, _ = effect.replay(settings.truth)     # as the planner reports its plans
    return effect, before


def _plan_parcels(plan: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> np.ndarray:
    """Position of each plan point's parcel (its ``parcel_id``, else the polygon holding
    it; −1 when none)."""
    pos = pd.Series(np.arange(len(parcels)), index=parcels["parcel_id"].astype(str))
    pos = pos[~pos.index.duplicated()]
    if "parcel_id" in plan:
        return plan["parcel_id"].astype(str).map(pos).fillna(-1).astype(int).to_numpy()
    pts, idx = shapely.STRtree(parcels.geometry.values).query(plan.geometry.values,
                                                              predicate="within")
    out = np.full(len(plan), -1)
    out[pts] = idx
    return out


def _effect_row(name, rows, mu, d0, d1, expected, cells, filled0, filled1, counts) -> dict:
    """Figures of one township (or the county): parcel positions ``rows`` (ascending),
    its ``cells`` rows, its (existing, new) sample counts."""
    u0, u1, change = expected
    c = cells.drop_duplicates(["ix", "iy"])
    keys = list(zip(c["ix"], c["iy"]))
    return {
        "township": name, "farmland_mu": round(float(mu[rows].sum()), 4),
        "n_samples": int(counts[0]), "n_new": int(counts[1]),
        "mean_dist_before_m": _wmean(d0[rows], mu[rows]),
        "mean_dist_after_m": _wmean(d1[rows], mu[rows]),
        "p95_dist_before_m": _wquantile(d0[rows], mu[rows], 0.95),
        "p95_dist_after_m": _wquantile(d1[rows], mu[rows], 0.95),
        "uncovered_cells_before": sum(k not in filled0 for k in keys),
        "uncovered_cells_after": sum(k not in filled1 for k in keys),
        "misclassified_mu_before": round(float(u0[rows].sum()), 4),
        "misclassified_mu_after": round(float(u1[rows].sum()), 4),
        "class_change_mu": round(float(change[rows].sum()), 4),
    }


def _count_by_township(points: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame,
                       town: np.ndarray) -> dict[str, int]:
    """Points per township of their nearest parcel."""
    if not len(points):
        return {}
    tree = shapely.STRtree(parcels.geometry.values)
    _, p_idx = tree.query_nearest(points.geometry.values, all_matches=False)
    names, n = np.unique(town[p_idx], return_counts=True)
    return dict(zip(names.tolist(), n.tolist()))


def _wmean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values)
    if not ok.any() or weights[ok].sum() <= 0:
        return float("nan")
    return round(float(np.average(values[ok], weights=weights[ok])), 1)


def _wquantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Weighted quantile: the smallest value whose cumulative weight share reaches ``q``."""
    ok = ~np.isnan(values)
    if not ok.any() or weights[ok].sum() <= 0:
        return float("nan")
    order = np.argsort(values[ok], kind="stable")
    v, w = values[ok][order], weights[ok][order]
    cum = np.cumsum(w) / w.sum()
    return round(float(v[np.searchsorted(cum, q - 1e-12)]), 1)
