"""What a sampling plan would change: distance to the nearest sample, farmland cells
without a sample, and the expected uncertain area, per township and for the county,
before and after the plan (the table ``farmland plan`` prints and writes as
``plan_effect.csv``)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.classes import parcel_area_mu
from farmland.crs import require_metric, same_crs
from farmland.sampling.modes import CorrelationKernel, correlation_kernel, reduce_uncertainty
from farmland.sampling.planner import DEFAULT_RANGE_M, change_probability
from farmland.sampling.zones import farmland_cells, sample_cells, usable_samples
from farmland.vocabulary import COUNTY, townships_of

__all__ = ["plan_effect"]


def plan_effect(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    plan: gpd.GeoDataFrame,
    *,
    cell_size: float = 1000.0,
    townships: gpd.GeoDataFrame | pd.DataFrame | None = None,
    variogram_range: float | None = None,
    variogram=None,
) -> pd.DataFrame:
    """Before/after figures of a plan per township and for the county (last row).

    Distances run from each parcel's representative point to the nearest sample,
    weighted by the parcel's 亩; cells are ``cell_size`` squares aligned to multiples
    of it holding farmland (a cell counts in every township with farmland in it; the
    county counts it once); uncertain area = Σ P(change) · 亩 with the planner's
    update (the kernel stored on the plan, else ``variogram``/``variogram_range``).

    Returns
    -------
    pandas.DataFrame
        ``township``, ``farmland_mu``, ``n_samples``, ``n_new``, ``mean_dist_before_m``,
        ``mean_dist_after_m``, ``p95_dist_before_m``, ``p95_dist_after_m``,
        ``uncovered_cells_before``, ``uncovered_cells_after``, ``uncertain_mu_before``,
        ``uncertain_mu_after``.
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
    kernel = (plan.attrs.get("kernel") if variogram is None and variogram_range is None
              else None) or correlation_kernel(variogram=variogram,
                                               variogram_range=variogram_range,
                                               default_range=DEFAULT_RANGE_M)
    u0 = change_probability(parcels, old)["p_change"].to_numpy() * mu
    u1 = _uncertainty_after(u0, rep, parcels, new, new_xy, kernel)
    cells = farmland_cells(parcels, cell_size)
    cells["township"] = town[cells["pos"]]
    filled0 = sample_cells(old, cell_size)
    filled1 = filled0 | sample_cells(new, cell_size) if len(new) else filled0
    rows = [_effect_row(name, town == name, mu, d0, d1, u0, u1, cells, filled0, filled1,
                        old, new, parcels) for name in _township_order(town, townships)]
    rows.append(_effect_row(COUNTY, np.ones(len(town), bool), mu, d0, d1, u0, u1, cells,
                            filled0, filled1, old, new, parcels))
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


def _uncertainty_after(u0: np.ndarray, rep: np.ndarray, parcels: gpd.GeoDataFrame,
                       plan: gpd.GeoDataFrame, new_xy: np.ndarray,
                       kernel: CorrelationKernel) -> np.ndarray:
    u = u0.copy()
    if not len(new_xy):
        return u
    pos = pd.Series(np.arange(len(parcels)), index=parcels["parcel_id"].astype(str))
    pos = pos[~pos.index.duplicated()]
    own = (plan["parcel_id"].astype(str).map(pos).fillna(-1).astype(int).to_numpy()
           if "parcel_id" in plan else np.full(len(new_xy), -1))
    tree = cKDTree(rep)
    for xy, o in zip(new_xy, own):
        reduce_uncertainty(u, tree, rep, int(o), xy, kernel)
    return u


def _effect_row(name, mask, mu, d0, d1, u0, u1, cells, filled0, filled1, old, new,
                parcels) -> dict:
    c = cells.loc[mask[cells["pos"].to_numpy()]].drop_duplicates(["ix", "iy"])
    keys = list(zip(c["ix"], c["iy"]))
    in_town = (lambda pts: len(pts)) if name == COUNTY else (
        lambda pts: _count_in(pts, parcels, mask))
    return {
        "township": name, "farmland_mu": round(float(mu[mask].sum()), 4),
        "n_samples": in_town(old), "n_new": in_town(new),
        "mean_dist_before_m": _wmean(d0[mask], mu[mask]),
        "mean_dist_after_m": _wmean(d1[mask], mu[mask]),
        "p95_dist_before_m": _wquantile(d0[mask], mu[mask], 0.95),
        "p95_dist_after_m": _wquantile(d1[mask], mu[mask], 0.95),
        "uncovered_cells_before": sum(k not in filled0 for k in keys),
        "uncovered_cells_after": sum(k not in filled1 for k in keys),
        "uncertain_mu_before": round(float(u0[mask].sum()), 4),
        "uncertain_mu_after": round(float(u1[mask].sum()), 4),
    }


def _count_in(points: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, mask: np.ndarray) -> int:
    """Points whose nearest parcel is in ``mask`` (the township)."""
    if not len(points):
        return 0
    tree = shapely.STRtree(parcels.geometry.values)
    _, p_idx = tree.query_nearest(points.geometry.values, all_matches=False)
    return int(mask[p_idx].sum())


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
