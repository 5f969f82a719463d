"""Ordinary kriging variance without values: what planned sample locations would do.

The ordinary kriging variance of a target depends on where the samples of its
neighbourhood lie, not on what they measured. In the covariance form of
:mod:`farmland.geostats.kriging` (``C(h) = sill − γ(h)``, ``C(0) = sill``)::

    A = [C_SS  1]     r = [c_St]     σ² = C(0) − rᵀ A⁻¹ r
        [1ᵀ    0]         [  1 ]

(``A⁻¹ r = [w; μ]``, so this is ``C(0) − wᵀc − μ``). A planned point p joins the
neighbourhood S of a target t as one more row and column of A (a bordered
system); with ``u = [C_Sp; 1]`` the Schur complement gives the new variance
without solving again::

    σ²(S ∪ p) = σ²(S) − (C(t, p) − uᵀ A⁻¹ r)² / (C(0) − uᵀ A⁻¹ u)

where ``C(0) − uᵀ A⁻¹ u`` is the kriging variance of p itself from S, and
``uᵀ A⁻¹ r = C_Spᵀ w + μ``. :func:`neighbourhood_systems` keeps ``A⁻¹``,
``[w; μ]`` and σ² per target; :func:`variance_with_point` applies the update for
any number of (target, point) pairs. Coordinates are metres in one projected CRS;
variances are in the variogram's units (for log-kriged metals (ln mg/kg)²).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from farmland.geostats.kriging import (
    _inverse,
    batch_size,
    kriging_matrices,
    kriging_rhs,
    neighbour_sets,
)
from farmland.geostats.variogram import VariogramModel

__all__ = ["NeighbourhoodSystems", "covariance_at", "kriging_variance",
           "neighbourhood_systems", "variance_with_point"]

#: (target, point) pairs handled at once by variance_with_point (bounds memory: ~50 MB)
PAIR_CHUNK = 20_000

def covariance_at(model: VariogramModel, h: np.ndarray) -> np.ndarray:
    """C(h) = sill − γ(h): the partial sill's structured part, plus the nugget at h = 0."""
    h = np.asarray(h, dtype=float)
    return model.sill - model(h)


@dataclass
class NeighbourhoodSystems:
    """The ordinary kriging system of each target, ready for rank-one additions.

    ``sets`` (m, k) rows of the sample coordinates (``len(xy)`` = no neighbour),
    ``inverse`` (m, k+1, k+1) = A⁻¹, ``solution`` (m, k+1) = [w; μ], ``variance``
    (m,) = σ² (≥ 0); ``xy`` the sample coordinates the rows refer to.
    """

    xy: np.ndarray
    targets: np.ndarray
    sets: np.ndarray
    inverse: np.ndarray
    solution: np.ndarray
    variance: np.ndarray


def neighbourhood_systems(model: VariogramModel, xy: np.ndarray, targets: np.ndarray,
                          sets: np.ndarray) -> NeighbourhoodSystems:
    """Invert the kriging system of every target (neighbour rows ``sets`` into ``xy``)."""
    m, k = sets.shape
    inverse = np.empty((m, k + 1, k + 1))
    solution = np.empty((m, k + 1))
    variance = np.empty(m)
    step = batch_size(k)
    for start in range(0, m, step):
        part = slice(start, start + step)
        inv = _inverse(kriging_matrices(model, xy, sets[part]))
        rhs = kriging_rhs(model, xy, targets[part], sets[part])
        sol = np.einsum("bij,bj->bi", inv, rhs)
        inverse[part], solution[part] = inv, sol
        variance[part] = np.maximum(model.sill - np.einsum("bi,bi->b", sol, rhs), 0.0)
    return NeighbourhoodSystems(xy, np.asarray(targets, float), sets, inverse, solution,
                                variance)


def kriging_variance(model: VariogramModel, xy: np.ndarray, targets: np.ndarray, *,
                     k: int) -> np.ndarray:
    """Ordinary kriging variance at ``targets`` from the k nearest of ``xy`` (no values)."""
    targets = np.asarray(targets, dtype=float).reshape(-1, 2)
    if not len(xy):
        return np.full(len(targets), np.nan)
    sets = neighbour_sets(cKDTree(xy), targets, k, None, None)
    return neighbourhood_systems(model, xy, targets, sets).variance


def variance_with_point(systems: NeighbourhoodSystems, model: VariogramModel,
                        rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """σ² of target ``rows[i]`` with ``points[i]`` added to its neighbourhood.

    Parameters
    ----------
    systems
        From :func:`neighbourhood_systems`.
    model
        The variogram the systems were built with.
    rows
        (p,) target positions in ``systems``.
    points
        (p, 2) planned locations, metres; each must differ from its target's neighbours.

    Returns
    -------
    numpy.ndarray
        (p,) variances, ≥ 0 and ≤ the target's variance without the point.
    """
    rows = np.asarray(rows, dtype=np.int64)
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    out = np.empty(len(rows))
    for idx in _padded_groups(rows):            # (targets, pairs) positions, −1 = padding
        pad = idx < 0
        take = np.where(pad, idx.max(axis=1, keepdims=True), idx)
        out[idx[~pad]] = _group_variance(systems, model, rows[take[:, 0]], points[take])[~pad]
    return out


def _padded_groups(rows: np.ndarray):
    """Pair positions grouped by target: (targets, width) arrays padded with −1; targets
    of similar pair counts go together (width ≤ twice the count) and a group holds at
    most about :data:`PAIR_CHUNK` pairs."""
    order = np.argsort(rows, kind="stable")
    _, starts, counts = np.unique(rows[order], return_index=True, return_counts=True)
    width = 2 ** np.ceil(np.log2(counts)).astype(np.int64)
    for w in np.unique(width):
        mine = np.flatnonzero(width == w)
        step = max(1, PAIR_CHUNK // int(w))
        for g in range(0, len(mine), step):
            t = mine[g:g + step]
            k = np.arange(w)[None, :]
            idx = np.where(k < counts[t, None], starts[t, None] + k, -1)
            yield np.where(idx >= 0, order[np.maximum(idx, 0)], -1)


def _group_variance(systems: NeighbourhoodSystems, model: VariogramModel, rows: np.ndarray,
                    points: np.ndarray) -> np.ndarray:
    """(targets, width) variances: target ``rows[i]`` with each of ``points[i]`` added."""
    n, k = len(systems.xy), systems.sets.shape[1]
    sets = systems.sets[rows]
    found = sets < n
    inverse, solution = systems.inverse[rows], systems.solution[rows]
    q = int(found.sum(axis=1).max()) if len(rows) else 0
    if q < k:
        # missing neighbours sort last; their rows and columns of A⁻¹ are decoupled unit
        # vectors, so the system of the found neighbours alone gives the same result
        keep = np.r_[np.arange(q), k]
        inverse = inverse[:, keep[:, None], keep[None, :]]
        solution, sets, found = solution[:, keep], sets[:, :q], found[:, :q]
    nb = systems.xy[np.where(found, sets, 0)]                      # (T, q, 2)
    h = np.hypot(points[:, :, None, 0] - nb[:, None, :, 0],
                 points[:, :, None, 1] - nb[:, None, :, 1])          # (T, W, q)
    u = np.ones(h.shape[:2] + (q + 1,))
    u[:, :, :-1] = np.where(found[:, None, :], covariance_at(model, h), 0.0)
    t = systems.targets[rows]
    c_tp = covariance_at(model, np.hypot(points[..., 0] - t[:, None, 0],
                                         points[..., 1] - t[:, None, 1]))
    a = c_tp - np.matmul(u, solution[:, :, None])[..., 0]
    b = model.sill - np.sum(np.matmul(u, inverse) * u, axis=2)
    drop = np.where(b > 1e-12 * model.sill, a * a / np.maximum(b, 1e-300), 0.0)
    var = systems.variance[rows][:, None]
    return np.clip(var - drop, 0.0, var)
