"""Geometric anisotropy: a variogram whose range depends on the direction.

Contamination carried by an irrigation canal, a river or a prevailing wind varies slowly
along that direction and fast across it. Geometric anisotropy models this with one
variogram whose range is ``range_`` along a major axis (``azimuth``, degrees clockwise
from grid north, 0 ≤ azimuth < 180) and ``range_ / ratio`` across it. Kriging with it is
ordinary (isotropic) kriging in a *kriging space*: the coordinates rotated so the major
axis is the first one, the second stretched by ``ratio``; a distance there is
√(h_major² + (ratio · h_minor)²) metres, the distance the variogram is read at. The
neighbour search runs in that space too, so a target's k nearest samples lie in an
ellipse along the major axis (the search ellipse of GSLIB).

Which direction and ratio, if any (:func:`fit_anisotropy`): the variogram is fitted
again in the kriging space of every azimuth in :data:`AZIMUTHS` at ratio 2, then at the
best azimuth with every ratio in :data:`RATIOS`; each fit is scored by its leave-one-out
kriging error (RMSE on the working scale, at most :data:`LOO_TARGETS` targets). The best
is kriged with when it lowers the isotropic error by at least :data:`MIN_GAIN`;
otherwise the variogram stays isotropic. Above :data:`SEARCH_SAMPLES` samples the
search runs on a seeded random subset of that size (a direction is a county-wide
property) and the chosen anisotropy is then fitted on all samples. A cheaper search that
turned the isotropic fit without refitting it (the range ellipse of the same area) was
tried and dropped: with a near-zero nugget its leave-one-out errors chose directions at
random (test_anisotropy's directed field: 157.5° instead of 45°). The rule and its
figures on the validation harness: docs/decisions.md "Anisotropy".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

__all__ = ["AZIMUTHS", "LOO_TARGETS", "MIN_GAIN", "RATIOS", "SEARCH_SAMPLES",
           "fit_anisotropy", "kriging_space"]

#: major-axis directions tried, degrees clockwise from grid north
AZIMUTHS = (0.0, 22.5, 45.0, 67.5, 90.0, 112.5, 135.0, 157.5)
#: ratios tried at the best azimuth (the first pass uses 2)
RATIOS = (1.5, 2.0, 3.0, 4.0)
#: the leave-one-out RMSE must fall by at least this share for anisotropy to be kept
MIN_GAIN = 0.05
#: leave-one-out targets per candidate (a seeded random subset above this)
LOO_TARGETS = 1000
#: samples the direction is searched on (a seeded random subset above this)
SEARCH_SAMPLES = 2000


def kriging_space(xy: np.ndarray, ratio: float, azimuth: float) -> np.ndarray:
    """(n, 2) coordinates in the kriging space of an anisotropy: (along the major axis,
    across it × ``ratio``), metres. ``ratio`` 1 returns the coordinates unchanged."""
    xy = np.asarray(xy, dtype=float)
    if ratio == 1.0:
        return xy
    t = np.deg2rad(azimuth)
    s, c = np.sin(t), np.cos(t)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([x * s + y * c, (x * c - y * s) * ratio], axis=-1)


def _loo_rmse(model, coords: np.ndarray, values: np.ndarray, k: int,
              rows: np.ndarray) -> float:
    """Leave-one-out kriging RMSE at ``rows`` of the locations, in ``model``'s space."""
    # imported here: farmland.geostats.variogram imports this module, kriging imports it
    from farmland.geostats.kriging import ordinary_kriging, unique_locations

    space = kriging_space(coords, model.ratio, model.azimuth)
    unique, location, counts = unique_locations(space)
    if len(unique) < len(space):   # two locations one by rounding in this space: averaged
        values = np.bincount(location, weights=values) / counts
        space, rows = unique, np.unique(location[rows])
    out = ordinary_kriging(model, space, values, cKDTree(space), space[rows], k=k,
                           exclude=rows)
    err = out[0] - values[rows]
    return float(np.sqrt(np.nanmean(err * err)))


def fit_anisotropy(coords: np.ndarray, values: np.ndarray, isotropic, *, k: int,
                   fit: Callable[[np.ndarray, np.ndarray], object], seed: int = 0):
    """The variogram to krige with: ``isotropic`` or an anisotropic refit (module docstring).

    Parameters
    ----------
    coords, values
        Distinct sample locations (metres) and their working-scale values.
    isotropic
        The :class:`~farmland.geostats.variogram.VariogramModel` fitted on ``coords``.
    k
        Kriging neighbours.
    fit
        (kriging-space coordinates, values) → a variogram fitted there (isotropic;
        raising :class:`~farmland.geostats.variogram.VariogramFitError` rules the
        candidate out).
    seed
        Seed of the search subset and the leave-one-out targets.
    """
    n = len(coords)
    if n <= k + 1:
        return isotropic
    rng = np.random.default_rng(seed)
    # the direction is a property of the whole county: searched on at most SEARCH_SAMPLES
    whole = n <= SEARCH_SAMPLES
    sub = np.arange(n) if whole else np.sort(rng.choice(n, SEARCH_SAMPLES, replace=False))
    xy, z = coords[sub], values[sub]
    rows = (np.arange(len(sub)) if len(sub) <= LOO_TARGETS else
            np.sort(rng.choice(len(sub), LOO_TARGETS, replace=False)))
    iso = isotropic if whole else _fitted(fit, xy, z, 1.0, 0.0) or isotropic
    models = {(1.0, 0.0): iso}
    scores = {(1.0, 0.0): _loo_rmse(iso, xy, z, k, rows)}

    def trial(ratio: float, azimuth: float) -> None:
        model = _fitted(fit, xy, z, ratio, azimuth)
        if model is not None:
            models[(ratio, azimuth)] = model
            scores[(ratio, azimuth)] = _loo_rmse(model, xy, z, k, rows)

    for azimuth in AZIMUTHS:
        trial(2.0, azimuth)
    turned = [key for key in scores if key[0] != 1.0]
    if turned:
        best = min(turned, key=scores.get)[1]
        for ratio in RATIOS:
            if ratio != 2.0:
                trial(ratio, best)
    key = min(scores, key=scores.get)
    if key[0] == 1.0 or not scores[key] <= (1.0 - MIN_GAIN) * scores[(1.0, 0.0)]:
        return isotropic
    model = models[key] if whole else _fitted(fit, coords, values, *key)
    if model is None:
        return isotropic
    log.info("anisotropy: ratio %g along azimuth %g° (leave-one-out RMSE %.4g against "
             "%.4g isotropic)", *key, scores[key], scores[(1.0, 0.0)])
    return model


def _fitted(fit, xy: np.ndarray, z: np.ndarray, ratio: float, azimuth: float):
    """The variogram fitted in the kriging space of (``ratio``, ``azimuth``), or ``None``."""
    from farmland.geostats.variogram import VariogramFitError

    try:
        return replace(fit(kriging_space(xy, ratio, azimuth), z), ratio=ratio, azimuth=azimuth)
    except VariogramFitError:
        return None
