"""The permutation test for spatial structure behind a fitted variogram.

A fitted curve through the noise of a pure-nugget variogram often looks structured, so
:func:`farmland.geostats.variogram.fit_sample_variogram` asks first whether nearby samples
are more alike than random ones: :func:`structure_p_value` at the distances of
:func:`structure_lags`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["STRUCTURE_PERMUTATIONS", "structure_lags", "structure_p_value"]

#: relabellings of the permutation test (p resolves to 1 / (this + 1))
STRUCTURE_PERMUTATIONS = 199


def structure_lags(coords: np.ndarray, max_lag: float) -> np.ndarray:
    """Distances (metres) at which :func:`structure_p_value` looks for structure.

    Twice the median nearest-neighbour spacing, then doubling, up to a third of
    ``max_lag`` (always included). Chosen from the locations only, never the values,
    so testing at every one of them and taking the best (with the min-p adjustment)
    keeps the test exact. A short range is seen at the short distances, a long one at
    the long distances; one fixed distance (the old third of ``max_lag``: 11 km on the
    demo) drowns a 4 km range in pairs beyond it.
    """
    coords = np.asarray(coords, dtype=float)
    top = max_lag / 3
    if len(coords) < 2:
        return np.array([top])
    spacing, _ = cKDTree(coords).query(coords, k=2, workers=-1)
    start = 2.0 * float(np.median(spacing[:, 1]))
    if not start > 0 or start >= top:
        return np.array([top])
    lags = start * 2.0 ** np.arange(int(np.floor(np.log2(top / start))) + 1)
    return np.append(lags[lags < top], top)


def structure_p_value(
    pairs, values: np.ndarray, *, short_lags: np.ndarray | float,
    n_permutations: int = STRUCTURE_PERMUTATIONS, seed: int = 0,
) -> float:
    """Permutation p-value of "no spatial structure" (Monte Carlo min-p test).

    ``pairs`` has index arrays ``i``, ``j`` and their distances ``dist`` (metres), as
    the variogram's sample pairs.

    Statistic at each distance d of ``short_lags``: mean ½(zᵢ − zⱼ)² over pairs
    closer than d metres. Under pure nugget the values are exchangeable between
    locations, so relabelling them at random (same pairs) draws from the null
    distribution. The observed labelling and the relabellings are ranked at each
    distance; each one's smallest rank-p over the distances is its min-p, and the
    returned p is the share of them whose min-p is at most the observed one
    (Westfall & Young's adjustment: testing at several distances does not make
    structure easier to "find"). Small p: nearby samples are more alike than random
    ones at some distance.
    """
    cuts = np.sort(np.atleast_1d(np.asarray(short_lags, dtype=float)))
    short = pairs.dist <= cuts[-1]
    i, j = pairs.i[short], pairs.j[short]
    if len(i) == 0:
        return 1.0
    group = np.searchsorted(cuts, pairs.dist[short], side="left")
    counts = np.cumsum(np.bincount(group, minlength=len(cuts)))
    rng = np.random.default_rng(seed)
    stats = np.empty((n_permutations + 1, len(cuts)))
    for row in range(n_permutations + 1):  # row 0: the observed labelling
        z = values if row == 0 else rng.permutation(values)
        sums = np.bincount(group, weights=(z[i] - z[j]) ** 2, minlength=len(cuts))
        with np.errstate(invalid="ignore", divide="ignore"):
            stats[row] = np.cumsum(sums) / counts
    stats = np.where(counts > 0, stats, np.inf)  # a distance with no pair: never small
    # rank-p of each labelling at each distance: share of labellings at most as extreme
    rank_p = (stats[None, :, :] <= stats[:, None, :]).sum(axis=1) / len(stats)
    min_p = rank_p.min(axis=1)
    return float(np.mean(min_p <= min_p[0]))
