"""Batched ordinary kriging in a moving neighbourhood (the numerical core of LocalKriging).

Coordinates are metres in one projected CRS. Each target gets the ordinary
kriging system of its k nearest samples, in covariance form with
C(h) = sill − γ(h)::

    [C  1] [w]   [c0]
    [1ᵀ 0] [μ] = [1 ]

mean = wᵀz, variance σ² = C(0) − wᵀc0 − μ (clipped ≥ 0).

Systems are solved for batches of targets at once. Targets are first ordered by
their neighbour set: on a grid much finer than the sample spacing many cells share
one set, so one matrix inverse serves them all (only c0 differs). A batch with
few repeated sets is solved directly with ``np.linalg.solve``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.spatial import cKDTree

from farmland.geostats.variogram import VariogramModel

logger = logging.getLogger(__name__)

#: bytes of working memory per kriging batch (bounds peak memory, see batch_size)
BATCH_MEMORY = 256 * 2**20
#: a batch whose distinct neighbour sets are at most this share of its targets is
#: solved through one inverse per set (measured break-even: about 0.65)
SHARED_SET_SHARE = 0.5
#: targets per chunk when listing neighbour sets
QUERY_CHUNK = 65_536


def batch_size(k: int) -> int:
    """Targets per batch so that about six (k+1)² float64 arrays fit in BATCH_MEMORY."""
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


def _set_keys(sets: np.ndarray) -> np.ndarray:
    """A 64-bit hash per sorted neighbour row (equal rows, equal keys)."""
    mult = np.random.default_rng(12345).integers(1, 2**63, size=sets.shape[1], dtype=np.uint64) | 1
    with np.errstate(over="ignore"):
        return (sets.astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)


def _solve_batch(
    model: VariogramModel, xy: np.ndarray, targets: np.ndarray, sets: np.ndarray, keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(B, k+1) solutions [w; μ] and right-hand sides of one batch.

    Targets sharing a neighbour set share one matrix inverse.
    """
    rhs = kriging_rhs(model, xy, targets, sets)
    _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    shared = len(first) <= SHARED_SET_SHARE * len(keys) and np.array_equal(
        sets, sets[first][which]
    )  # the equality check guards against a hash collision
    if not shared:
        return _solve(kriging_matrices(model, xy, sets), rhs), rhs
    inverse = _inverse(kriging_matrices(model, xy, sets[first]))
    return np.einsum("bij,bj->bi", inverse[which], rhs), rhs


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

    Returns
    -------
    numpy.ndarray
        (3, m): mean, variance (≥ 0), μ; NaN where a target has no neighbour.
    """
    out = np.full((3, len(targets)), np.nan)
    if len(targets) == 0:
        return out
    sets = neighbour_sets(tree, targets, k, radius, exclude)
    keys = _set_keys(sets)
    order = np.argsort(keys, kind="stable")
    step = batch_size(sets.shape[1])
    n = len(xy)
    for start in range(0, len(order), step):
        rows = order[start : start + step]
        part_sets, part_targets = sets[rows], targets[rows]
        sol, rhs = _solve_batch(model, xy, part_targets, part_sets, keys[rows])
        found = part_sets < n
        w, mu = sol[:, :-1], sol[:, -1]
        out[0, rows] = np.einsum(
            "bk,bk->b", w, np.where(found, z[np.where(found, part_sets, 0)], 0)
        )
        out[1, rows] = np.maximum(model.sill - np.einsum("bk,bk->b", w, rhs[:, :-1]) - mu, 0.0)
        out[2, rows] = mu
        out[:, rows[~found.any(axis=1)]] = np.nan
    return out
