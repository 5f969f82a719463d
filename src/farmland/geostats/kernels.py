"""Compiled kernels of local ordinary kriging (numba), used by farmland.geostats.kriging.

Each group of targets shares one neighbour set (the sorted rows of the k nearest
samples, index n = missing). Per group the kernel builds the covariance matrix C of
the set's samples (C(h) = sill − γ(h), C(0) = sill) and factors it once, C = L Lᵀ
(Cholesky). The ordinary kriging system of a target with covariances c0 to the set,

    [C  1] [w]   [c0]
    [1ᵀ 0] [μ] = [1 ]

is solved through its Schur complement. With u = C⁻¹1, s = 1ᵀu and v = C⁻¹z::

    μ = (c0ᵀu − 1) / s,    w = C⁻¹c0 − μu
    mean = c0ᵀv − μ·uᵀz,   σ² = sill − (c0ᵀC⁻¹c0 − μ·c0ᵀu) − μ

and every product is a dot product of forward solves: with y₁ = L⁻¹1, y₂ = L⁻¹z and
y = L⁻¹c0, s = |y₁|², uᵀz = y₁·y₂, c0ᵀu = y·y₁, c0ᵀv = y·y₂, c0ᵀC⁻¹c0 = |y|². A set
costs one factorisation (k³/6 multiply-adds) and two forward solves, a target one
forward solve (k²/2), with no (k+1) × (k+1) arrays in memory. It is the same system
as the covariance form in :mod:`farmland.geostats.kriging` (the same mean, variance
and μ up to rounding, about 1e-13 on ln-values), not another estimator. A group whose
Cholesky pivot falls to ``PIVOT_TOLERANCE`` · sill or below (near-coincident samples
without a nugget) is reported as failed, for the caller to solve.

Compiled on first use and cached beside this file (``cache=True``). Each kernel has a
one-thread version (``*_range``: a run of rows or groups) and a parallel one calling it
over blocks on all threads; :func:`parallel` picks. The results are the same (every row
or group is computed alone, by the same compiled code); the one-thread version serves a
process limited to one thread (the demo's two processes), whose first run after install
then compiles in half the time (≈ 3.7 s instead of 6.7 s for the four kernels). The small
helpers (covariance, Cholesky, forward solve) are ordinary numba functions, not inlined
at numba's IR level (``inline="always"``): LLVM still inlines them, the kriging of 10 000
samples at 1 M targets is bit-identical and as fast, and the one-thread kernels compile
in ≈ 2.2 s instead of ≈ 2.9 s (cold cache, classifying the demo county).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["MODEL_CODES", "PARALLEL_FROM", "PIVOT_TOLERANCE", "first_present", "group_starts",
           "krige_groups", "parallel", "set_keys", "warm_up"]

#: rows per parallel block of :func:`set_keys` and :func:`first_present`
_BLOCK = 1024
#: variogram model name -> code understood by the kernel
MODEL_CODES = {"spherical": 0, "exponential": 1, "gaussian": 2}
#: a Cholesky pivot at or below this share of the sill marks a set as (nearly) singular
PIVOT_TOLERANCE = 1e-9
#: LLVM may reorder sums (so reductions vectorise) and fuse multiply-adds; no assumption
#: about NaN or infinity is made (NaN marks a target without neighbours)
FAST = {"reassoc", "contract"}
#: rows (targets, neighbour sets) from which a kernel runs on all of numba's threads
PARALLEL_FROM = 4096


def parallel(rows: int) -> bool:
    """Whether a kernel over ``rows`` rows runs its parallel version: from
    ``PARALLEL_FROM`` rows, when numba may use more than one thread (not inside
    :func:`farmland.cli.parallel.one_thread`, nor with ``NUMBA_NUM_THREADS=1``)."""
    return rows >= PARALLEL_FROM and numba.get_num_threads() > 1


@numba.njit(cache=True, fastmath=FAST)
def _covariance(h: float, code: int, partial_sill: float, range_: float) -> float:
    """Structured covariance (sill − nugget)·(1 − s(h)) of farmland.geostats.variogram."""
    x = h / range_
    if code == 0:
        if x >= 1.0:
            return 0.0
        return partial_sill * (1.0 - x * (1.5 - 0.5 * x * x))
    if code == 1:
        return partial_sill * math.exp(-3.0 * x)
    return partial_sill * math.exp(-3.0 * x * x)


@numba.njit(cache=True, fastmath=FAST)
def _cholesky(a: np.ndarray, inv_d: np.ndarray, m: int, tol: float) -> bool:
    """In-place lower Cholesky factor of a[:m, :m] (lower triangle read), with the
    reciprocals of its diagonal in ``inv_d``; False if not positive definite."""
    for j in range(m):
        s = a[j, j]
        for p in range(j):
            s -= a[j, p] * a[j, p]
        if not s > tol:
            return False
        d = math.sqrt(s)
        a[j, j] = d
        inv_d[j] = 1.0 / d
        for i in range(j + 1, m):
            t = a[i, j]
            for p in range(j):
                t -= a[i, p] * a[j, p]
            a[i, j] = t * inv_d[j]
    return True


@numba.njit(cache=True, fastmath=FAST)
def _forward(low: np.ndarray, inv_d: np.ndarray, m: int, b: np.ndarray, out: np.ndarray) -> None:
    """out = L⁻¹ b."""
    for i in range(m):
        t = b[i]
        for p in range(i):
            t -= low[i, p] * out[p]
        out[i] = t * inv_d[i]


@numba.njit(cache=True, fastmath=FAST)
def _krige_group(xy, z, nb, m, rows, targets, code, nugget, psill, range_, scratch, low,
                 out) -> bool:
    """Factor one neighbour set and krige its targets ``rows``; False if C is singular."""
    inv_d, y1, y2, c0, y = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4]
    sill = nugget + psill
    for i in range(m):
        xi, yi = xy[nb[i], 0], xy[nb[i], 1]
        low[i, i] = sill
        for j in range(i):
            dx, dy = xi - xy[nb[j], 0], yi - xy[nb[j], 1]
            low[i, j] = _covariance(math.sqrt(dx * dx + dy * dy), code, psill, range_)
    if not _cholesky(low, inv_d, m, PIVOT_TOLERANCE * sill):
        return False
    for i in range(m):
        c0[i] = 1.0
    _forward(low, inv_d, m, c0, y1)
    for i in range(m):
        c0[i] = z[nb[i]]
    _forward(low, inv_d, m, c0, y2)
    s, uz = 0.0, 0.0
    for i in range(m):
        s += y1[i] * y1[i]
        uz += y1[i] * y2[i]
    for r in rows:
        tx, ty = targets[r, 0], targets[r, 1]
        for i in range(m):
            dx, dy = xy[nb[i], 0] - tx, xy[nb[i], 1] - ty
            h = math.sqrt(dx * dx + dy * dy)
            c0[i] = _covariance(h, code, psill, range_) + (nugget if h == 0.0 else 0.0)
        _forward(low, inv_d, m, c0, y)
        q, cu, cv = 0.0, 0.0, 0.0
        for i in range(m):
            q += y[i] * y[i]
            cu += y[i] * y1[i]
            cv += y[i] * y2[i]
        mu = (cu - 1.0) / s
        out[0, r] = cv - mu * uz
        out[1, r] = max(sill - (q - mu * cu) - mu, 0.0)
        out[2, r] = mu
    return True


@numba.njit(cache=True, fastmath=FAST)
def _krige_range(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out, failed,
                 first, last) -> None:
    """Groups ``first`` to ``last`` (exclusive) of :func:`krige_groups`, one after another."""
    n, width = xy.shape[0], sets.shape[1]
    low, scratch = np.empty((width, width)), np.empty((5, width))
    for g in range(first, last):
        rows = order[starts[g]:starts[g + 1]]
        nb = sets[rows[0]]
        m = 0
        while m < width and nb[m] < n:
            m += 1
        if m == 0:
            for r in rows:
                out[0, r] = np.nan
                out[1, r] = np.nan
                out[2, r] = np.nan
        elif not _krige_group(xy, z, nb, m, rows, targets, code, nugget, psill, range_,
                              scratch, low, out):
            failed[g] = True


@numba.njit(cache=True, fastmath=FAST, parallel=True)
def _krige_parallel(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out,
                    failed, n_chunks) -> None:
    """:func:`_krige_range` over ``n_chunks`` runs of consecutive groups, on all threads."""
    n_groups = starts.shape[0] - 1
    n_chunks = max(1, min(n_groups, n_chunks))
    for c in numba.prange(n_chunks):
        _krige_range(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out,
                     failed, c * n_groups // n_chunks, (c + 1) * n_groups // n_chunks)


def krige_groups(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out, failed,
                 n_chunks) -> None:
    """Kriging mean, variance and μ into ``out`` (3, m) for every group of targets.

    Parameters
    ----------
    xy, z
        (n, 2) sample coordinates (metres) and (n,) values.
    sets
        (m, k) sorted neighbour rows of every target (index n = missing, sorted last).
    order, starts
        Targets ``order[starts[g]:starts[g + 1]]`` share one neighbour set.
    targets
        (m, 2) target coordinates (metres).
    code, nugget, psill, range_
        The variogram (``MODEL_CODES``), nugget, partial sill and range.
    out
        (3, m) float64, written for every target of a non-failed group (NaN without
        neighbours).
    failed
        (groups,) bool, set True for a group whose covariance matrix is singular.
    n_chunks
        Runs of consecutive groups handed to the threads (a few per thread); fewer than
        ``PARALLEL_FROM`` targets are kriged on one thread (:func:`parallel`).
    """
    if parallel(len(targets)):
        _krige_parallel(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out,
                        failed, n_chunks)
    else:
        _krige_range(xy, z, sets, order, starts, targets, code, nugget, psill, range_, out,
                     failed, 0, starts.shape[0] - 1)


@numba.njit(cache=True)
def _hash_range(sets: np.ndarray, keys: np.ndarray, first: int, last: int) -> None:
    """Rows ``first`` to ``last`` (exclusive) of :func:`set_keys`."""
    for i in range(first, last):
        h = np.uint64(1469598103934665603)
        for j in range(sets.shape[1]):
            h = (h ^ np.uint64(sets[i, j])) * np.uint64(1099511628211)
        keys[i] = h


@numba.njit(cache=True, parallel=True)
def _hash_parallel(sets: np.ndarray, keys: np.ndarray) -> None:
    rows = sets.shape[0]
    for b in numba.prange((rows + _BLOCK - 1) // _BLOCK):
        _hash_range(sets, keys, b * _BLOCK, min(rows, (b + 1) * _BLOCK))


def set_keys(sets: np.ndarray) -> np.ndarray:
    """A 64-bit FNV-1a hash of every row (equal rows, equal keys)."""
    keys = np.empty(sets.shape[0], dtype=np.uint64)
    if parallel(len(sets)):
        _hash_parallel(sets, keys)
    else:
        _hash_range(sets, keys, 0, len(sets))
    return keys


@numba.njit(cache=True)
def group_starts(sets: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Starts of the runs of identical rows in ``sets[order]``, then ``len(order)``.

    Rows with equal keys but different sets (a hash collision) form separate runs."""
    m = order.shape[0]
    starts = np.empty(m + 1, dtype=np.int64)
    g = 0
    for r in range(m):
        same = r > 0
        if same:
            a, b = sets[order[r]], sets[order[r - 1]]
            for j in range(sets.shape[1]):
                if a[j] != b[j]:
                    same = False
                    break
        if not same:
            starts[g] = r
            g += 1
    starts[g] = m
    return starts[: g + 1].copy()


@numba.njit(cache=True)
def _first_present_row(idx: np.ndarray, lookup: np.ndarray, missing: int,
                       out: np.ndarray) -> None:
    """One row of :func:`first_present`, any lookup: the first ``len(out)`` present rows,
    by an insertion sort as they come by distance."""
    width = out.shape[0]
    found = 0
    for j in range(idx.shape[0]):
        if found == width:
            break
        row = lookup[idx[j]]
        if row < 0:
            continue
        pos = found
        while pos > 0 and out[pos - 1] > row:
            out[pos] = out[pos - 1]
            pos -= 1
        out[pos] = row
        found += 1
    for j in range(found, width):
        out[j] = missing


@numba.njit(cache=True)
def _first_present_range(idx: np.ndarray, lookups: np.ndarray, missing: np.ndarray,
                         monotone: np.ndarray, out: np.ndarray, first: int, last: int) -> None:
    """Rows ``first`` to ``last`` (exclusive) of :func:`first_present`."""
    n_sets, width = out.shape[0], out.shape[2]
    ordered = np.empty(width, dtype=idx.dtype)
    for i in range(first, last):
        for j in range(width):
            value = idx[i, j]
            pos = j
            while pos > 0 and ordered[pos - 1] > value:
                ordered[pos] = ordered[pos - 1]
                pos -= 1
            ordered[pos] = value
        for s in range(n_sets):
            fast = monotone[s]
            if fast:
                for j in range(width):
                    row = lookups[s, ordered[j]]
                    if row < 0:
                        fast = False
                        break
                    out[s, i, j] = row
            if not fast:
                _first_present_row(idx[i], lookups[s], missing[s], out[s, i])


@numba.njit(cache=True, parallel=True)
def _first_present_parallel(idx: np.ndarray, lookups: np.ndarray, missing: np.ndarray,
                            monotone: np.ndarray, out: np.ndarray) -> None:
    rows = out.shape[1]
    for b in numba.prange((rows + _BLOCK - 1) // _BLOCK):
        _first_present_range(idx, lookups, missing, monotone, out, b * _BLOCK,
                             min(rows, (b + 1) * _BLOCK))


def first_present(idx: np.ndarray, lookups: np.ndarray, missing: np.ndarray,
                  monotone: np.ndarray, out: np.ndarray) -> None:
    """Per row of ``idx`` (a tree's rows by distance) and sample set ``s``, the first
    ``out.shape[2]`` tree rows present in the set (``lookups[s]``: tree row → the set's
    row, -1 where absent; the last entry stands for the tree's "no neighbour" index), as
    the set's rows sorted ascending, ``missing[s]`` filling the rest; into ``out[s]``.

    Where ``monotone[s]`` (the set's rows increase with the tree's) and the row's first
    ``out.shape[2]`` tree rows are all in the set, they are the answer: their tree rows
    are sorted once per target for all sets. ``out.shape[2] <= idx.shape[1]``."""
    if parallel(out.shape[1]):
        _first_present_parallel(idx, lookups, missing, monotone, out)
    else:
        _first_present_range(idx, lookups, missing, monotone, out, 0, out.shape[1])


def warm_up() -> None:
    """Compile the one-thread kernels into numba's cache, or load them from it, by calling
    each on empty arrays of the types a classification passes (int32 neighbour sets,
    float64 coordinates and values): the kriging kernel first (≈ 1.5 s to compile, the
    longest), then the small ones.

    The worker of ``farmland demo`` and ``farmland run`` calls it first thing, while the
    other process imports and reads: on the first run after installing, a kernel the
    worker has compiled by the time the other process needs it is loaded from the cache
    (numba writes its cache files atomically) instead of being compiled again on the
    critical path. Nothing else changes: the compiled code is the same."""
    i4, i8 = np.int32, np.int64
    sets = np.zeros((0, 16), dtype=i4)
    _krige_range(np.zeros((0, 2)), np.zeros(0), sets, np.zeros(0, dtype=i8),
                 np.zeros(1, dtype=i8), np.zeros((0, 2)), 0, 0.0, 1.0, 1.0, np.zeros((3, 0)),
                 np.zeros(0, dtype=np.bool_), 0, 0)
    _hash_range(sets, np.zeros(0, dtype=np.uint64), 0, 0)
    group_starts(sets, np.zeros(0, dtype=i8))
    _first_present_range(np.zeros((0, 16), dtype=i8), np.zeros((1, 1), dtype=i4),
                         np.zeros(1, dtype=i8), np.zeros(1, dtype=np.bool_),
                         np.zeros((1, 0, 16), dtype=i4), 0, 0)
