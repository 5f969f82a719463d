"""Local hot spots of soil metals: Getis–Ord Gi* and local Moran's I at sample points.

Weights are the k nearest samples (default 8): binary with the sample itself included
for Gi* (Getis & Ord 1992, Ord & Getis 1995), row-standardised for local Moran's I
(Anselin 1995). The statistics (``gi_z``, ``moran_i``, the quadrant) come from
:mod:`esda` on a :class:`libpysal.graph.Graph`. Their pseudo p-values come from
conditional randomisation — the sample's own value held fixed, its k neighbours drawn
at random from the other n − 1 values — done here, vectorised, in esda's own scheme
(one table of random draws shared by all samples): esda's loop copies the data once per
sample, which is quadratic in n (about 15 s per statistic and element at 100 000
samples). Given the same draws, farmland's p-values are esda's (tested).

With binary k-NN weights both statistics depend on the random draw only through the sum
of the drawn neighbours' values, so one sum serves both and their pseudo p-values are
the same number (local Moran's is 1 when the sample equals the mean exactly).
p-values are two-sided: twice the share of draws at least as extreme on the observed
side, ties counted on both sides; Benjamini–Hochberg adjusts them across the samples of
an element.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from farmland.errors import InputError
from farmland.sources.matrix import filled_values, present_metals

logger = logging.getLogger(__name__)

#: default number of nearest samples in a neighbourhood
DEFAULT_K = 8
#: default number of conditional permutations
DEFAULT_PERMUTATIONS = 999
#: draws × samples held in memory at once by the permutation engine
_CHUNK_CELLS = 2_000_000
#: Moran quadrants in esda's (PySAL) numbering 1..4
QUADRANTS = ("HH", "LH", "LL", "HL")
#: output columns of :func:`local_hotspots`
HOTSPOT_COLUMNS = ("sample_id", "element", "value", "gi_z", "gi_p", "gi_q", "hotspot",
                   "moran_i", "moran_p", "moran_q", "quadrant")


def knn_neighbours(xy: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """The k nearest other points of every point.

    Parameters
    ----------
    xy
        (n, 2) coordinates in metres (a projected CRS).
    k
        Neighbours per point; ``k < n``.

    Returns
    -------
    numpy.ndarray
        (n, k) int array of row positions, nearest first, never the point itself (points
        at the same place are each other's neighbours).
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    _, found = cKDTree(xy).query(xy, k=k + 1)
    not_self = found != np.arange(n)[:, None]
    # a point not among its own k + 1 nearest (more than k coincident points) loses the last
    not_self[not_self.all(axis=1), -1] = False
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(found, order, axis=1)


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values).

    Parameters
    ----------
    p
        p-values in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``q_(i) = min_{j ≥ i} p_(j) · n / j`` over the sorted p, capped at 1, in the order
        of ``p``; a sample is significant at false discovery rate α when q ≤ α.
    """
    # imported here: scipy.stats takes ≈ 0.6 s to import, and every process that draws a
    # map or reads a run imports this module without testing hot spots
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p.copy()
    return false_discovery_control(p, method="bh")


def random_draws(n: int, k: int, permutations: int, seed: int) -> np.ndarray:
    """The conditional-randomisation draws shared by all samples (esda's scheme).

    Row r holds k distinct positions among the n − 1 values other than sample i; position
    j means value ``j`` if ``j < i`` else ``j + 1``.

    Returns
    -------
    numpy.ndarray
        (permutations, k) int64.
    """
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n - 1, size=k, replace=False) for _ in range(permutations)])


def tail_counts(y: np.ndarray, observed: np.ndarray,
                draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many random neighbour sums are ≥ and ≤ each sample's observed sum.

    The random sum of sample i in draw r is ``Σ_m y_(−i)[draws[r, m]]`` with ``y_(−i)``
    the values without sample i. Sorting a draw's positions, that sum is
    ``A_r + Σ_{m: pos < i} (y[pos] − y[pos + 1])``: a constant plus a prefix sum that
    changes only where i passes one of the k positions, so every sample's sum is looked
    up instead of gathered (cost ~ 3·n·permutations, not n·permutations·k).

    Parameters
    ----------
    y
        (n,) values.
    observed
        (n,) sum of each sample's k neighbours (itself excluded).
    draws
        (permutations, k) output of :func:`random_draws`.

    Returns
    -------
    n_ge, n_le
        (n,) counts of draws with sum ≥ and ≤ the observed one; differences below
        1e-10 · k · max|y| are ties.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    n_perm, k = draws.shape
    pos = np.sort(draws, axis=1)
    base = y[pos + 1].sum(axis=1)
    prefix = np.concatenate([np.zeros((n_perm, 1)), np.cumsum(y[pos] - y[pos + 1], axis=1)],
                            axis=1).ravel()
    row_offset = np.arange(n_perm) * (k + 1)
    tol = 1e-10 * k * float(np.max(np.abs(y)))
    n_ge, n_le = np.empty(n, np.int64), np.empty(n, np.int64)
    chunk = max(1, _CHUNK_CELLS // n_perm)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        size = stop - start
        before = (pos < start).sum(axis=1)
        inside = (pos >= start) & (pos < stop)
        steps = np.bincount((pos[inside] - start + 1) * n_perm + np.nonzero(inside)[0],
                            minlength=(size + 1) * n_perm).reshape(size + 1, n_perm)
        rank = before + np.cumsum(steps, axis=0)[:size]
        sums = base + prefix[row_offset + rank]
        obs = observed[start:stop, None]
        n_ge[start:stop] = (sums >= obs - tol).sum(axis=1)
        n_le[start:stop] = (sums <= obs + tol).sum(axis=1)
    return n_ge, n_le


def _graph(neighbours: np.ndarray) -> object:
    """Binary libpysal graph of an (n, k) neighbour table."""
    from libpysal.graph import Graph

    n, k = neighbours.shape
    return Graph.from_arrays(np.repeat(np.arange(n), k), neighbours.ravel(), np.ones(n * k))


def _esda_statistics(y: np.ndarray, graph: object) -> tuple[np.ndarray, ...]:
    """Gi* z-score, local Moran's I and quadrant code (esda, no permutations)."""
    import esda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gi = esda.G_Local(y, graph, transform="B", star=True, permutations=0)
        moran = esda.Moran_Local(y, graph, transformation="r", permutations=0)
    return np.asarray(gi.Zs), np.asarray(moran.Is), np.asarray(moran.q)


def local_statistics(values: np.ndarray, neighbours: np.ndarray, *,
                     permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> pd.DataFrame:
    """Gi* and local Moran's I with conditional-permutation p-values.

    Parameters
    ----------
    values
        (n,) values of one variable (farmland passes natural-log concentrations).
    neighbours
        (n, k) positions of each sample's k neighbours, itself excluded (for example
        :func:`knn_neighbours`); weights are binary (Gi*, self weight 1) and
        row-standardised (Moran).
    permutations
        Number of random neighbourhoods per sample.
    seed
        Seed of the draws; the same seed gives the same p-values.

    Returns
    -------
    pandas.DataFrame
        One row per value: ``gi_z`` (Ord & Getis 1995 z-score of Gi*), ``gi_p`` (two-sided
        pseudo p, ``min(1, 2 (m + 1) / (permutations + 1))`` with m the draws at least as
        extreme on the observed side), ``upper`` (True when the neighbours' sum lies in the
        upper tail of its draws), ``moran_i``, ``moran_p`` and ``moran_quadrant`` (HH, LH,
        LL, HL by the signs of the value and of its spatial lag, before any test).
    """
    neighbours = np.asarray(neighbours)
    return _statistics(np.asarray(values, dtype=float), neighbours, _graph(neighbours),
                       permutations, seed)


def _statistics(y: np.ndarray, neighbours: np.ndarray, graph: object, permutations: int,
                seed: int) -> pd.DataFrame:
    n, k = neighbours.shape
    if len(y) != n or np.isnan(y).any():
        raise ValueError("values must have one number (no NaN) per row of neighbours")
    # Gi (1992) needs a positive variable with a natural origin; its z-score (1995) does
    # not change under a shift, so esda gets the values shifted to start at 1
    gi_z, moran_i, quadrant = _esda_statistics(y - y.min() + 1.0, graph)
    n_ge, n_le = tail_counts(y, y[neighbours].sum(axis=1), random_draws(n, k, permutations, seed))
    gi_p = np.minimum(1.0, 2.0 * (np.minimum(n_ge, n_le) + 1) / (permutations + 1))
    moran_p = np.where(y == y.mean(), 1.0, gi_p)
    return pd.DataFrame({"gi_z": gi_z, "gi_p": gi_p, "upper": n_ge <= n_le,
                         "moran_i": moran_i, "moran_p": moran_p,
                         "moran_quadrant": np.asarray(QUADRANTS, dtype=object)[quadrant - 1]})


def _xy(samples: pd.DataFrame) -> np.ndarray:
    geometry = getattr(samples, "geometry", None)
    crs = getattr(samples, "crs", None)
    if geometry is None or crs is None or not crs.is_projected:
        raise InputError(f"soil samples must be points in a projected metric CRS, got {crs}",
                         fix="read them with farmland.io.read_soil_samples (it reprojects)")
    return np.column_stack([geometry.x.to_numpy(), geometry.y.to_numpy()])


def _classify(stats: pd.DataFrame, alpha: float) -> pd.DataFrame:
    gi_sig = stats["gi_q"].to_numpy() <= alpha
    hot = gi_sig & (stats["gi_z"].to_numpy() > 0) & stats["upper"].to_numpy()
    cold = gi_sig & (stats["gi_z"].to_numpy() < 0) & ~stats["upper"].to_numpy()
    stats["hotspot"] = np.where(hot, "hot", np.where(cold, "cold", "ns"))
    stats["quadrant"] = np.where(stats["moran_q"].to_numpy() <= alpha,
                                 stats["moran_quadrant"].to_numpy(), "ns")
    return stats


def local_hotspots(samples: pd.DataFrame, elements: Sequence[str] | None = None, *,
                   k: int = DEFAULT_K, permutations: int = DEFAULT_PERMUTATIONS,
                   alpha: float = 0.05, log: bool = True, seed: int = 0,
                   mdl: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Hot and cold spots (Gi*) and local Moran clusters of each metal at the samples.

    Parameters
    ----------
    samples
        Soil samples as :func:`farmland.io.read_soil_samples` returns them: points in a
        projected metric CRS, ``sample_id``, element columns in mg/kg, ``<el>_censored``.
    elements
        Metals to test; default: those of cd, hg, as, pb, cr, cu, ni, zn present.
    k
        Nearest samples forming a neighbourhood.
    permutations
        Conditional permutations per sample (the smallest possible p is
        2 / (permutations + 1)).
    alpha
        False discovery rate; a sample is significant when its BH q-value ≤ ``alpha``.
    log
        Test natural-log concentrations (default) instead of mg/kg.
    seed
        Seed of the random draws (each element uses the same seed).
    mdl
        Detection limits (mg/kg) replacing the shipped ones; an ND without a number
        counts as MDL/2.

    Returns
    -------
    pandas.DataFrame
        One row per sample and element with a value: ``sample_id, element, value``
        (mg/kg), ``gi_z, gi_p, gi_q`` (q: BH-adjusted across the element's samples),
        ``hotspot`` (``hot``/``cold`` when q ≤ alpha and z and the permutation tail agree,
        else ``ns``), ``moran_i, moran_p, moran_q``, ``quadrant`` (HH, LH, LL, HL when
        ``moran_q ≤ alpha``, else ``ns``). Elements in the order of ``elements``, samples
        in input order. Missing values are left out; an element with fewer than k + 2
        values or no variation is skipped (logged).

    Raises
    ------
    InputError
        Samples not in a projected CRS, an element column missing.
    """
    xy = _xy(samples)
    chosen = present_metals(samples) if elements is None else tuple(elements)
    values, missing = filled_values(samples, chosen, mdl)
    ids = samples["sample_id"].to_numpy()
    frames, neighbourhoods = [], {}
    for j, el in enumerate(chosen):
        keep = ~missing[:, j]
        x = values[keep, j]
        if keep.sum() < k + 2 or np.ptp(x) == 0:
            logger.warning("%s: %d value(s)%s; no hot spots computed", el, int(keep.sum()),
                           "" if keep.sum() < k + 2 else " all equal")
            continue
        if (~keep).any():
            logger.info("%s: %d sample(s) without a value left out", el, int((~keep).sum()))
        key = keep.tobytes()
        if key not in neighbourhoods:  # elements measured on the same samples share them
            neighbours = knn_neighbours(xy[keep], k)
            neighbourhoods = {key: (neighbours, _graph(neighbours))}
        stats = _statistics(np.log(x) if log else x, *neighbourhoods[key], permutations, seed)
        stats["gi_q"] = fdr_bh(stats["gi_p"].to_numpy())
        stats["moran_q"] = fdr_bh(stats["moran_p"].to_numpy())
        stats.insert(0, "value", x)
        stats.insert(0, "element", el)
        stats.insert(0, "sample_id", ids[keep])
        frames.append(_classify(stats, alpha))
        logger.info("%s: %d hot, %d cold sample(s) at FDR %.2f (k = %d, %d permutations)", el,
                    int((stats["hotspot"] == "hot").sum()), int((stats["hotspot"] == "cold").sum()),
                    alpha, k, permutations)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in HOTSPOT_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(HOTSPOT_COLUMNS)]
