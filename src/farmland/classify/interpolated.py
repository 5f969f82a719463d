"""Class shares of parcels from interpolated surfaces (domain.md §3.2).

Each class-driving element and pH is interpolated onto the cells of a raster that
covers the parcels (cell centres inside a parcel belong to it); every cell is
classified with its parcel's land-use column and the interpolated pH; a parcel's
shares are the fractions of its cells in each class. Parcels smaller than a cell
get one pseudo-cell at a point inside them, and so, when ``point_below_cells`` is
set, do parcels smaller than that many cells. When the interpolator gives a
log-normal distribution (kriging), per-cell exceedance probabilities of the screening
and intervention values are combined into class probabilities and averaged per parcel.
Kriged variables measured at the same samples share one neighbour search
(:func:`farmland.geostats.estimators.share_neighbours`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import shapely

from farmland.classify.risk import CellRule, band_probabilities, risk_classes
from farmland.geostats.estimators import share_neighbours
from farmland.geostats.rasters import polygon_cells
from farmland.standards import CLASS_ELEMENTS

log = logging.getLogger(__name__)


def parcel_cells(geoms: np.ndarray, cell_size: float, *,
                 point_below_cells: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Centres of raster cells inside each parcel.

    Parameters
    ----------
    geoms
        Array of (Multi)Polygons in a metric CRS.
    cell_size
        Cell side in metres; the grid is aligned to multiples of ``cell_size``.
    point_below_cells
        Parcels whose area is under this many cells (``cell_size``² m² each) get one
        point inside them instead of their cells (0: every parcel gets its cells).

    Returns
    -------
    coords, labels
        ``coords`` (m, 2) cell centres in metres; ``labels`` (m,) the index of the
        parcel in ``geoms`` each cell belongs to. Every parcel has at least one cell
        (a point inside it when no cell centre falls in it).
    """
    n = len(geoms)
    if n == 0:
        return np.empty((0, 2)), np.empty(0, dtype=np.int64)
    gridded = np.arange(n)
    if point_below_cells > 0:
        gridded = np.flatnonzero(shapely.area(geoms) >= point_below_cells * cell_size**2)
    coords, labels = polygon_cells(geoms[gridded], cell_size)
    labels = gridded[labels]
    missing = np.flatnonzero(np.bincount(labels, minlength=n) == 0)
    if len(missing):
        pts = shapely.point_on_surface(geoms[missing])
        coords = np.vstack([coords, shapely.get_coordinates(pts)])
        labels = np.concatenate([labels, missing])
    return coords, labels


def interpolated_classes(
    geoms: np.ndarray,
    landuse: np.ndarray,
    sample_xy: np.ndarray,
    sample_values: dict[str, np.ndarray],
    *,
    standard,
    make_estimator: Callable[[str], object],
    cell_size: float,
    rule: CellRule | None = None,
    point_below_cells: float = 0.0,
) -> pd.DataFrame:
    """Class shares, majority class and class probabilities of parcels from surfaces.

    Parameters
    ----------
    geoms, landuse
        Parcel polygons (metric CRS) and their land use (schema vocabulary).
    sample_xy
        (n, 2) coordinates of usable soil samples, metres.
    sample_values
        ``"ph"`` and each class-driving element -> (n,) values (NaN = not measured).
    standard
        The loaded GB 15618 standard.
    make_estimator
        ``variable -> unfitted estimator`` with ``fit(coords, values)`` and
        ``predict(coords)`` (and optionally ``predict_distribution``).
    cell_size
        Raster cell side, metres.
    rule
        How cells are classed and how their probabilities are formed
        (:class:`~farmland.classify.risk.CellRule`; default: the kriged median, point
        variances, the band of the kriged pH).
    point_below_cells
        Parcels under this many cells of area are estimated at one point inside them
        rather than at their cells (0, the default: every parcel at its cells; see
        :func:`parcel_cells`).

    Returns
    -------
    pandas.DataFrame
        One row per parcel (positional, same order as ``geoms``): ``share_1..3``,
        ``interp_class`` (majority, ties to the stricter), ``interp_driver``,
        ``p_class_1..3`` and ``class_confidence`` (NaN without distributions),
        ``p_calibrated_1..3`` (the calibrated ``p_class``; NaN without a calibration),
        ``n_cells``.
    """
    coords, labels = parcel_cells(geoms, cell_size, point_below_cells=point_below_cells)
    n = len(geoms)
    log.info("interpolating pH and %s at %d cells (%.0f m) for %d parcels",
             "/".join(CLASS_ELEMENTS), len(coords), cell_size, n)
    estimators = {v: _fit(make_estimator(v), sample_xy, sample_values[v])
                  for v in ("ph", *CLASS_ELEMENTS)}
    saved = share_neighbours(estimators.values(), coords)
    if saved:
        log.info("one neighbour search served %d kriged variables", saved + 1)
    codes, uniques = pd.factorize(np.asarray(landuse, dtype=object))
    cell_landuse = (codes[labels], uniques)
    rule = rule or CellRule()
    cell_class, cell_driver, probs = _cell_classes(estimators, coords, cell_landuse, standard,
                                                   rule)
    if probs is not None and rule.calibration != "none":
        from farmland.classify.calibration import load_calibration
        calibration = load_calibration(rule.calibration)
    else:
        calibration = None
    return _parcel_table(labels, cell_class, cell_driver, probs, n, calibration)


def _cell_classes(estimators: dict, coords: np.ndarray, cell_landuse: tuple, standard,
                  rule: CellRule) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """Class (0 = not estimated), driving element (column of CLASS_ELEMENTS) and class
    probabilities (None without any kriging distribution) of every cell.

    ``cell_landuse`` is (code per cell, land uses) as from ``pandas.factorize``. Takes the
    fitted estimators out of ``estimators`` as it goes (each one's cached kriging
    results are freed once its element is done)."""
    ph_est = estimators.pop("ph")
    low, high = standard.ph_range
    ph = np.clip(ph_est.predict(coords), low, high)
    bands = _ph_bands(ph_est, coords, standard, rule)
    del ph_est
    classes = np.zeros((len(coords), len(CLASS_ELEMENTS)), dtype=np.int8)
    index = np.zeros_like(classes, dtype=float)
    p_screen, p_interv = {}, {}
    n_dist = 0
    for j, el in enumerate(CLASS_ELEMENTS):
        est = estimators.pop(el)
        dist = _distribution(est, coords, rule)
        # with a log-normal distribution the cell is classed by its median exp(m): it
        # classes more samples correctly in cross-validation than the (upward-corrected)
        # mean; without one (IDW) by the estimate itself
        value = np.exp(dist[0]) if dist is not None else est.predict(coords)
        screen = _screening_values(standard, el, cell_landuse, ph)
        interv = standard.intervention_values(el, ph)
        cls = np.where(value <= screen, 1, np.where(value <= interv, 2, 3))
        classes[:, j] = np.where(np.isfinite(value) & np.isfinite(screen), cls, 0)
        index[:, j] = value / screen
        p_screen[el] = (value > screen).astype(float)  # certain where no distribution
        p_interv[el] = (value > interv).astype(float)
        if dist is not None:
            mean, var = dist[0], _variance(est, dist[1], rule)
            known = np.isfinite(mean) & np.isfinite(var)
            ps, pi = _exceedances(mean, var, el, screen, interv, cell_landuse, bands, standard)
            p_screen[el][known], p_interv[el][known] = ps[known], pi[known]
            n_dist += 1
    # a cell with any element not estimated (0) carries no class
    missing = (classes == 0).any(axis=1)
    cell_class = np.where(missing, 0, classes.max(axis=1))
    cell_driver = np.argmax(classes * 1e7 + np.minimum(index, 1e6), axis=1)
    probs = None
    if n_dist:  # at least one element with a kriging distribution
        from farmland.geostats.estimators import class_probabilities
        probs = class_probabilities(p_screen, p_interv)
        if rule.decision == "risk":
            risky = risk_classes(*probs, tau3=rule.risk_class3, tau2=rule.risk_class2)
            cell_class = np.where(missing | (risky == 0), cell_class, risky)
    return cell_class, cell_driver, probs


def _parcel_table(labels: np.ndarray, cell_class: np.ndarray, cell_driver: np.ndarray,
                  probs: tuple | None, n: int, calibration=None) -> pd.DataFrame:
    """Shares, majority class and driver, mean class probabilities of the model
    (``p_class_*``) and through the calibration map when one is given
    (``p_calibrated_*``, else NaN), and confidence (of the model's)."""
    result = _shares(labels, cell_class, cell_driver, n)
    for c in (1, 2, 3):
        result[f"p_class_{c}"] = result[f"p_calibrated_{c}"] = np.nan
    if probs is not None:
        counts = np.bincount(labels, minlength=n)
        means = [np.bincount(labels, weights=p, minlength=n) / counts for p in probs]
        for c, p in enumerate(means, start=1):
            result[f"p_class_{c}"] = p
        if calibration is not None:
            for c, p in enumerate(calibration.apply(*means), start=1):
                result[f"p_calibrated_{c}"] = p
    picked = result["interp_class"].to_numpy()
    pmat = np.column_stack([np.full(n, np.nan),
                            result[["p_class_1", "p_class_2", "p_class_3"]].to_numpy()])
    result["class_confidence"] = pmat[np.arange(n), picked]
    return result


def _shares(labels: np.ndarray, cell_class: np.ndarray, cell_driver: np.ndarray,
            n: int) -> pd.DataFrame:
    """Per-parcel class shares, majority class (ties to the stricter) and driver."""
    per_class = np.column_stack([np.bincount(labels, weights=cell_class == c, minlength=n)
                                 for c in (1, 2, 3)])
    counts = per_class.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = per_class / counts[:, None]
    # majority with ties to the stricter class: scan from class 3 down
    majority = np.where(counts > 0, 3 - np.argmax(per_class[:, ::-1], axis=1), 0)
    in_class = cell_class == majority[labels]
    m = len(CLASS_ELEMENTS)
    driver_counts = np.bincount(labels[in_class] * m + cell_driver[in_class],
                                minlength=n * m).reshape(n, m)
    driver = np.array(CLASS_ELEMENTS, dtype=object)[np.argmax(driver_counts, axis=1)]
    return pd.DataFrame({
        "share_1": np.round(shares[:, 0], 4), "share_2": np.round(shares[:, 1], 4),
        "share_3": np.round(shares[:, 2], 4), "interp_class": majority.astype(np.int8),
        "interp_driver": np.where(majority >= 2, driver, None), "n_cells": counts.astype(int),
    })


def _variance(estimator, var: np.ndarray, rule: CellRule) -> np.ndarray:
    """The kriging variance of a point, or of the noise-free surface ("parcel": the
    fitted nugget taken off)."""
    if rule.probabilities != "parcel":
        return var
    nugget = getattr(getattr(estimator, "variogram_", None), "nugget", None)
    return var if nugget is None else np.maximum(var - float(nugget), 0.0)


def _ph_bands(ph_est, coords: np.ndarray, standard, rule: CellRule):
    """(P(band) per cell, one pH per band) when pH uncertainty is on and pH was kriged."""
    if not rule.ph_uncertainty:
        return None
    dist = _distribution(ph_est, coords)
    if dist is None:
        return None
    return band_probabilities(dist[0], _variance(ph_est, dist[1], rule), standard.band_edges,
                              standard.ph_range)


def _exceedances(mean, var, el, screen, interv, cell_landuse, bands, standard):
    """P(Z > screening) and P(Z > intervention) of each cell; summed over the pH bands
    (each band's thresholds weighted by its probability) when ``bands`` is given."""
    from farmland.geostats.estimators import exceedance_probability

    if bands is None:
        return (exceedance_probability(mean, var, screen),
                exceedance_probability(mean, var, interv))
    probs, reps = bands
    ps, pi = np.zeros(len(mean)), np.zeros(len(mean))
    for b, ph_b in enumerate(reps):
        at = np.full(len(mean), ph_b)
        ps += probs[:, b] * exceedance_probability(
            mean, var, _screening_values(standard, el, cell_landuse, at))
        pi += probs[:, b] * exceedance_probability(
            mean, var, standard.intervention_values(el, at))
    return ps, pi


def _screening_values(standard, element: str, cell_landuse, ph: np.ndarray) -> np.ndarray:
    """``standard.screening_values`` of every cell, looked up once per distinct land use
    when ``cell_landuse`` is (code per cell, land uses) (code −1: missing, as "unknown");
    a plain array of land uses is passed through."""
    if not isinstance(cell_landuse, tuple):
        return standard.screening_values(element, cell_landuse, ph)
    codes, uniques = cell_landuse
    out = np.empty(len(codes))
    for i in range(-1, len(uniques)):
        cells = codes == i
        if cells.any():
            out[cells] = standard.screening_values(element, None if i < 0 else uniques[i],
                                                   ph[cells])
    return out


def _fit(estimator, xy: np.ndarray, values: np.ndarray):
    ok = np.isfinite(values)
    return estimator.fit(xy[ok], values[ok])


def _distribution(estimator, coords: np.ndarray, rule: CellRule | None = None):
    """(mean, variance) of ln Z when the estimator gives one, else None. After a kriging
    fallback to IDW, the IDW estimate with its cross-validated error variance when the
    rule says ``fallback_variance = "loo"`` (:mod:`farmland.geostats.fallback`)."""
    method = getattr(estimator, "predict_distribution", None)
    if method is None:
        return None
    try:
        mean, var = method(coords)
    except NotImplementedError:
        return None
    if not np.isfinite(mean).any():  # e.g. kriging fell back to IDW
        if rule is not None and rule.fallback_variance == "loo":
            from farmland.geostats.fallback import fallback_distribution
            return fallback_distribution(estimator, coords)
        return None
    return mean, var
