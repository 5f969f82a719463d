"""Ordinary kriging in a moving neighbourhood (the numerical core of LocalKriging).

Coordinates are metres in one projected CRS. Each target gets the ordinary
kriging system of its k nearest samples, in covariance form with
C(h) = sill − γ(h)::

    [C  1] [w]   [c0]
    [1ᵀ 0] [μ] = [1 ]

mean = wᵀz, variance σ² = C(0) − wᵀc0 − μ (clipped ≥ 0).

The neighbour search (:func:`neighbourhoods`) lists every target's k nearest samples
and groups the targets by identical neighbour sets: on a grid much finer than the
sample spacing many cells share one set. It depends on the sample locations only, so
variables measured at the same samples share one search (``neighbours=``). The
systems are then solved by a compiled kernel (:mod:`farmland.geostats.kernels`): one
Cholesky factorisation per set, one triangular solve per target. A set whose matrix
is singular (near-coincident samples without a nugget) is solved here with numpy's
LU solver, by least squares if that fails.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numba
import numpy as np
from scipy.spatial import cKDTree

from farmland.geostats.kernels import (
    MODEL_CODES,
    first_present,
    group_starts,
    krige_groups,
    set_keys,
)
from farmland.geostats.variogram import VariogramModel

logger = logging.getLogger(__name__)

#: targets per chunk when listing neighbour sets
QUERY_CHUNK = 65_536
#: targets per numpy batch when singular sets are solved outside the kernel
FALLBACK_BATCH = 4096
#: one parallel kernel at a time: the kernels use every core already, and numba's
#: fallback threading layer (workqueue) aborts on concurrent calls from threads
_KERNEL_LOCK = threading.Lock()


#: memory budget (bytes) of one batch of kriging systems in the planner's variance update
BATCH_MEMORY = 256 * 2**20


def batch_size(k: int) -> int:
    """Targets per batch so that about six (k+1)² float64 arrays fit in BATCH_MEMORY
    (the planner's variance update, :mod:`farmland.geostats.variance`)."""
    return max(256, BATCH_MEMORY // (6 * 8 * (k + 1) ** 2))


def nearest_samples(
    tree: cKDTree,
    targets: np.ndarray,
    k: int,
    radius: float | None,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest samples within ``radius`` metres; missing ones have distance inf and index n.

    With ``exclude`` (one sample row per target), that sample is dropped (leave-one-out).
    """
    k_query = min(k + (exclude is not None), tree.n)
    bound = np.inf if radius is None else float(radius)
    dist, idx = tree.query(targets, k=k_query, distance_upper_bound=bound, workers=-1)
    dist, idx = dist.reshape(len(targets), -1), idx.reshape(len(targets), -1)
    if exclude is not None:
        order = np.argsort(idx == exclude[:, None], axis=1, kind="stable")  # self moves last
        dist = np.take_along_axis(dist, order, axis=1)[:, : k_query - 1]
        idx = np.take_along_axis(idx, order, axis=1)[:, : k_query - 1]
    return dist, idx


def _shape_inplace(h: np.ndarray, model: VariogramModel) -> np.ndarray:
    """The model's structure function s(h) rising 0 → 1 (see farmland.geostats.variogram), in place."""
    h *= 1.0 / model.range_
    if model.name == "spherical":
        np.minimum(h, 1.0, out=h)
        g = h * h
        g *= -0.5
        g += 1.5
        g *= h
        return g
    if model.name == "gaussian":
        h *= h
    np.multiply(h, -3.0, out=h)
    np.exp(h, out=h)
    return np.subtract(1.0, h, out=h)


def _structured_covariance(h: np.ndarray, model: VariogramModel) -> np.ndarray:
    """(sill − nugget)·(1 − s(h)), computed over ``h`` in place (the nugget is added by callers)."""
    g = _shape_inplace(h, model)
    np.subtract(1.0, g, out=g)
    g *= model.partial_sill
    return g


def kriging_matrices(model: VariogramModel, xy: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(B, k+1, k+1) left-hand sides for neighbour rows ``idx`` (index n = missing).

    A missing neighbour gets a decoupled unit row and column, so its weight is 0
    and the matrix stays regular.
    """
    found = idx < len(xy)
    rows = np.where(found, idx, 0)
    b, k = rows.shape
    x, y = xy[rows, 0], xy[rows, 1]
    d = np.subtract(x[:, :, None], x[:, None, :])
    d *= d
    dy = np.subtract(y[:, :, None], y[:, None, :])
    dy *= dy
    d += dy
    del dy
    np.sqrt(d, out=d)
    a = np.empty((b, k + 1, k + 1))
    cov = _structured_covariance(d, model)
    cov *= found[:, :, None] & found[:, None, :]
    a[:, :k, :k] = cov
    del d, cov
    diag = np.arange(k)
    a[:, diag, diag] = np.where(found, model.sill, 1.0)
    a[:, :k, k] = found
    a[:, k, :k] = found
    a[:, k, k] = 0.0
    return a


def kriging_rhs(
    model: VariogramModel, xy: np.ndarray, targets: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """(B, k+1) right-hand sides [c0; 1]; c0 = C(target − neighbour), 0 for missing ones."""
    found = idx < len(xy)
    nb = xy[np.where(found, idx, 0)]
    dist = np.hypot(nb[:, :, 0] - targets[:, None, 0], nb[:, :, 1] - targets[:, None, 1])
    c0 = _structured_covariance(dist.copy(), model)
    c0 += np.where(dist == 0, model.nugget, 0.0)
    rhs = np.ones((len(idx), idx.shape[1] + 1))
    rhs[:, :-1] = np.where(found, c0, 0.0)
    return rhs


def _solve(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched solve; a singular stack (e.g. near-coincident samples) falls back to lstsq."""
    try:
        return np.linalg.solve(a, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        logger.warning("singular kriging system in a batch; solving it by least squares")
        return np.stack([np.linalg.lstsq(m, r, rcond=None)[0] for m, r in zip(a, rhs, strict=True)])


def _inverse(a: np.ndarray) -> np.ndarray:
    """Batched inverse of kriging systems (the planner's variance update,
    :mod:`farmland.geostats.variance`); a singular stack falls back to the pseudo-inverse."""
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        logger.warning("singular kriging system in a batch; using the pseudo-inverse")
        return np.linalg.pinv(a)


def neighbour_sets(
    tree: cKDTree, targets: np.ndarray, k: int, radius: float | None, exclude: np.ndarray | None
) -> np.ndarray:
    """(m, k') int32 neighbour rows of every target, each row sorted (index n = missing)."""
    n_cols = min(k, tree.n - (exclude is not None))
    sets = np.empty((len(targets), n_cols), dtype=np.int32)
    for start in range(0, len(targets), QUERY_CHUNK):
        part = slice(start, start + QUERY_CHUNK)
        ex = None if exclude is None else exclude[part]
        sets[part] = np.sort(nearest_samples(tree, targets[part], k, radius, ex)[1], axis=1)
    return sets


@dataclass(frozen=True)
class Neighbourhoods:
    """The k nearest samples of every target, with targets grouped by identical sets.

    Attributes
    ----------
    sets
        (m, k') int32 sample rows of each target's neighbours, each row sorted; the
        index n (number of samples) marks a missing neighbour (beyond the radius).
    order, starts
        The targets ``order[starts[g]:starts[g + 1]]`` share one neighbour set.
    n_samples
        n, the number of samples searched.
    """

    sets: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    n_samples: int

    @property
    def n_targets(self) -> int:
        return len(self.sets)


def neighbourhoods(
    tree: cKDTree,
    targets: np.ndarray,
    k: int,
    radius: float | None = None,
    exclude: np.ndarray | None = None,
) -> Neighbourhoods:
    """Search the k nearest samples of ``targets`` (metres) within ``radius`` and group them.

    ``exclude`` leaves one sample row out per target (leave-one-out cross-validation).
    """
    sets = neighbour_sets(tree, targets, k, radius, exclude)
    with _KERNEL_LOCK:
        keys = set_keys(sets)
    order = np.argsort(keys, kind="stable")
    return Neighbourhoods(sets, order, group_starts(sets, order), tree.n)


def subset_neighbourhoods(
    tree: cKDTree,
    targets: np.ndarray,
    k: int,
    radius: float | None,
    members: list[tuple[np.ndarray, int]],
) -> list[Neighbourhoods]:
    """The :func:`neighbourhoods` of several sample sets whose locations are rows of ``tree``,
    from one search.

    ``members``: per sample set, ``(lookup, n)`` — ``lookup`` maps each row of ``tree`` to
    the set's own row (-1 where the set has no sample there), ``n`` its number of rows. A
    set missing ``m`` of the tree's rows has its k nearest among the tree's ``k + m``
    nearest, so one search of ``k`` + the largest ``m`` serves every set: each keeps its
    first ``k`` present neighbours (by distance). The same sets as separate searches
    (which of two samples at exactly the same distance is the k-th may differ).
    """
    k_query = min(k + max(tree.n - n for _, n in members), tree.n)
    by_width: dict[int, list[int]] = {}  # sets of one width are listed by one kernel call
    for s, (_, n) in enumerate(members):
        by_width.setdefault(min(k, n), []).append(s)
    # the tree's "missing" index n maps to the last entry, -1
    lookups = np.stack([np.append(lookup, -1).astype(np.int32) for lookup, _ in members])
    missing = np.array([n for _, n in members], dtype=np.int64)
    monotone = np.array([bool(np.all(np.diff(row[row >= 0]) > 0)) for row in lookups])
    # one array per set (each is freed when its variable is done), filled through a
    # chunk-sized buffer per width
    sets = [np.empty((len(targets), min(k, n)), dtype=np.int32) for _, n in members]
    for start in range(0, len(targets), QUERY_CHUNK):
        part = slice(start, start + QUERY_CHUNK)
        idx = nearest_samples(tree, targets[part], k_query, radius)[1]
        for w, chosen in by_width.items():
            block = np.empty((len(chosen), len(idx), w), dtype=np.int32)
            with _KERNEL_LOCK:
                first_present(idx, lookups[chosen], missing[chosen], monotone[chosen], block)
            for s, rows in zip(chosen, block, strict=True):
                sets[s][part] = rows
    found = []
    for (_, n), member_sets in zip(members, sets, strict=True):
        with _KERNEL_LOCK:
            keys = set_keys(member_sets)
        order = np.argsort(keys, kind="stable")
        found.append(Neighbourhoods(member_sets, order, group_starts(member_sets, order), n))
    return found


def unique_locations(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(coords, axis=0, return_inverse=True, return_counts=True)`` of (n, 2)
    coordinates (inverse flattened), by one lexsort: the same rows, sorted by x then y,
    several times sooner. Coordinates with a zero (where 0.0 and -0.0 would be one
    location with either sign kept) or not finite go through ``np.unique`` itself."""
    if coords.ndim != 2 or coords.shape[1] != 2 or not len(coords) or (coords == 0).any() \
            or not np.isfinite(coords).all():
        unique, location, counts = np.unique(coords, axis=0, return_inverse=True,
                                             return_counts=True)
        return unique, location.ravel(), counts
    order = np.lexsort((coords[:, 1], coords[:, 0]))
    ordered = coords[order]
    new = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    group = np.cumsum(new) - 1
    location = np.empty(len(coords), dtype=np.int64)
    location[order] = group
    return ordered[new], location, np.bincount(group)


def subset_search(coords: list[np.ndarray], targets: np.ndarray, k: int,
                  radius: float | None) -> list[Neighbourhoods] | None:
    """:func:`subset_neighbourhoods` of sample sets at different but nearly the same
    locations (a variable that lost a few outlier values): their union searched once for k
    + the most locations one set lacks; ``None`` when a set lacks more than k of them."""
    union, inverse, _ = unique_locations(np.vstack(coords))
    if max(len(union) - len(c) for c in coords) > k:
        return None
    members, start = [], 0
    for c in coords:
        lookup = np.full(len(union), -1, dtype=np.int64)
        lookup[inverse.ravel()[start:start + len(c)]] = np.arange(len(c))
        members.append((lookup, len(c)))
        start += len(c)
    return subset_neighbourhoods(cKDTree(union), targets, k, radius, members)


def ordinary_kriging(
    model: VariogramModel,
    xy: np.ndarray,
    z: np.ndarray,
    tree: cKDTree,
    targets: np.ndarray,
    *,
    k: int,
    radius: float | None = None,
    exclude: np.ndarray | None = None,
    neighbours: Neighbourhoods | None = None,
) -> np.ndarray:
    """Kriging mean, variance and Lagrange multiplier at every target.

    Parameters
    ----------
    model
        Variogram of the values ``z``.
    xy, z, tree
        Sample coordinates (metres, no duplicates), values and their KD-tree.
    targets
        (m, 2) locations, metres.
    k, radius
        Neighbourhood: k nearest samples within ``radius`` metres (None: any distance).
    exclude
        Optional sample row per target to leave out (cross-validation).
    neighbours
        The :func:`neighbourhoods` of ``targets`` among these samples, when already
        searched (for another variable measured at the same samples); ``k``,
        ``radius`` and ``exclude`` are then not used.

    Returns
    -------
    numpy.ndarray
        (3, m): mean, variance (≥ 0), μ; NaN where a target has no neighbour.
    """
    out = np.full((3, len(targets)), np.nan)
    if len(targets) == 0:
        return out
    nb = neighbours or neighbourhoods(tree, targets, k, radius, exclude)
    if nb.n_targets != len(targets) or nb.n_samples != len(xy):
        raise ValueError(f"neighbourhoods of {nb.n_targets} targets among {nb.n_samples} "
                         f"samples do not fit {len(targets)} targets and {len(xy)} samples")
    failed = np.zeros(len(nb.starts) - 1, dtype=bool)
    with _KERNEL_LOCK:
        krige_groups(np.ascontiguousarray(xy, dtype=float),
                     np.ascontiguousarray(z, dtype=float), nb.sets, nb.order, nb.starts,
                     np.ascontiguousarray(targets, dtype=float), MODEL_CODES[model.name],
                     float(model.nugget), float(model.partial_sill), float(model.range_), out,
                     failed, 64 * numba.get_num_threads())
    if failed.any():
        group = np.repeat(failed, np.diff(nb.starts))
        _solve_singular(model, xy, z, targets, nb.sets, nb.order[group], out)
    return out


def _solve_singular(model: VariogramModel, xy: np.ndarray, z: np.ndarray, targets: np.ndarray,
                    sets: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """Targets whose covariance matrix is (nearly) singular, by numpy's LU solver (least
    squares when exactly singular), in batches."""
    logger.warning("%d target(s) have a (nearly) singular kriging system (near-coincident "
                   "samples without a nugget?): solved by LU / least squares", len(rows))
    n = len(xy)
    for start in range(0, len(rows), FALLBACK_BATCH):
        part = rows[start : start + FALLBACK_BATCH]
        part_sets = sets[part]
        rhs = kriging_rhs(model, xy, targets[part], part_sets)
        sol = _solve(kriging_matrices(model, xy, part_sets), rhs)
        found = part_sets < n
        w, mu = sol[:, :-1], sol[:, -1]
        out[0, part] = np.einsum("bk,bk->b", w, np.where(found, z[np.where(found, part_sets, 0)],
                                                          0))
        out[1, part] = np.maximum(model.sill - np.einsum("bk,bk->b", w, rhs[:, :-1]) - mu, 0.0)
        out[2, part] = mu
        out[:, part[~found.any(axis=1)]] = np.nan
