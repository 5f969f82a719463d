"""The planner's building blocks: candidates, correlation kernel, state and modes.

:func:`candidate_points` lists where a point may go. :class:`PlanState` holds the candidate locations (cell centres of a fine grid
inside farmland parcels, plus one representative point for parcels too small to
hold a cell centre), which of them still satisfy the constraints, and the
expected uncertain area of every parcel, U = P(change) · area (亩).

Committing a point (:meth:`PlanState.commit`) applies the variance-reduction
update: the parcel holding the point has its class settled by a sample inside it
(rule 1, domain.md §3) so its U drops to 0, and every parcel whose representative
point lies within the correlation radius has U multiplied by 1 − w(d), w being the
spatial correlation at distance d. Kriging variance does not depend on the value
the new sample will show, so updating after every pick is legitimate; scaling
P(change) by the correlation is the approximation (documented in
docs/decisions.md). The point's ``benefit`` is the drop in Σ U (亩).

Modes: :func:`pick_uncertainty` (greedy on expected class change),
:func:`pick_coverage` (spcosa-style k-means infill with fixed existing samples),
:func:`pick_sources` (rings around pollution sources). All coordinates are metres
in the parcels' metric CRS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from farmland.vocabulary import p_change_level

log = logging.getLogger(__name__)

#: correlation below which the kernel is truncated
KERNEL_CUTOFF = 0.05
#: mean distance from the centre of a square to its points, in units of the side
MEAN_DIST_SQUARE = 0.3826
#: grid candidates closer than this to a parcel edge are dropped (GPS error, field margins)
EDGE_DISTANCE_M = 5.0
DEFAULT_CANDIDATE_SPACING_M = 100.0
MAX_CANDIDATES = 250_000


# ====================================================================== candidates
def candidate_points(geoms: np.ndarray, *, spacing: float,
                     edge_distance: float = EDGE_DISTANCE_M) -> tuple[np.ndarray, np.ndarray]:
    """Candidate locations strictly inside polygons.

    Cell centres of a grid with origin at multiples of ``spacing`` (centres at
    (i + ½)·spacing) that lie inside a polygon and at least ``edge_distance`` from
    its edge; a polygon holding none gets its representative point
    (``point_on_surface``), which is always inside.

    Returns
    -------
    tuple
        ``xy`` (m, 2) metres and the position of the polygon holding each point.
    """
    ok = np.flatnonzero(~(shapely.is_empty(geoms) | shapely.is_missing(geoms)))
    b = shapely.bounds(geoms[ok])
    lo = np.ceil(b[:, :2] / spacing - 0.5).astype(np.int64)
    hi = np.floor(b[:, 2:] / spacing - 0.5).astype(np.int64)
    nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    counts = nx * ny
    rep = np.repeat(np.arange(len(ok)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    x = (lo[rep, 0] + k % np.maximum(nx[rep], 1) + 0.5) * spacing
    y = (lo[rep, 1] + k // np.maximum(nx[rep], 1) + 0.5) * spacing
    g = geoms[ok][rep]
    inside = shapely.contains_xy(g, x, y)
    if edge_distance > 0 and inside.any():
        pts = shapely.points(x[inside], y[inside])
        far = shapely.distance(shapely.boundary(g[inside]), pts) >= edge_distance
        inside[np.flatnonzero(inside)[~far]] = False
    owner = ok[rep[inside]]
    xy = np.column_stack([x[inside], y[inside]])
    lonely = np.setdiff1d(ok, owner)
    rp = shapely.get_coordinates(shapely.point_on_surface(geoms[lonely]))
    xy = np.vstack([xy, rp]) if len(rp) else xy
    owner = np.concatenate([owner, lonely])
    order = np.lexsort((xy[:, 1], xy[:, 0], owner))
    return xy[order], owner[order]


def candidate_spacing(geoms: np.ndarray, spacing: float | None) -> float:
    """Candidate grid spacing (m): ``spacing`` or 100 m, coarsened (to a multiple of 10 m)
    when the farmland would hold more than :data:`MAX_CANDIDATES` cells."""
    s = float(spacing or DEFAULT_CANDIDATE_SPACING_M)
    total = float(shapely.area(geoms).sum())
    if total / s**2 > MAX_CANDIDATES:
        s = math.ceil(math.sqrt(total / MAX_CANDIDATES) / 10) * 10
        log.info("candidate grid coarsened to %.0f m to keep about %d candidates", s,
                 MAX_CANDIDATES)
    return s


# ====================================================================== kernel
@dataclass(frozen=True)
class CorrelationKernel:
    """Spatial correlation w(d) in [0, 1], w(0) = 1, zero beyond ``radius`` metres."""

    fn: Callable[[np.ndarray], np.ndarray]
    radius: float
    description: str

    def __call__(self, d: np.ndarray | float) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        w = np.clip(np.asarray(self.fn(d), dtype=float), 0.0, 1.0)
        return np.where(d <= 0, 1.0, np.where(d <= self.radius, w, 0.0))


def correlation_kernel(*, variogram=None, variogram_range: float | None = None,
                       default_range: float = 1000.0) -> CorrelationKernel:
    """The correlation used to spread and update expected class change.

    Parameters
    ----------
    variogram
        A fitted variogram (``__call__(h)`` in metres, ``range_``): w(d) = 1 − γ(d)/γ(∞),
        γ(∞) taken as γ at 50 ranges (the total sill whatever the sill convention).
    variogram_range
        Without a variogram: w(d) = exp(−3 d / range) (practical range: w = 0.05).
    default_range
        Range in metres when neither is given.
    """
    if variogram is not None:
        rng = float(variogram.range_)
        total = float(np.asarray(variogram(np.array([50.0 * rng]))).ravel()[0])
        if not total > 0:
            raise ValueError(f"variogram has no positive sill: {variogram!r}")

        def fn(d: np.ndarray) -> np.ndarray:
            return 1.0 - np.asarray(variogram(d), dtype=float) / total

        grid = np.linspace(0.0, 3.0 * rng, 601)
        below = np.flatnonzero(fn(grid[1:]) <= KERNEL_CUTOFF)
        radius = float(grid[1:][below[0]]) if len(below) else 3.0 * rng
        return CorrelationKernel(fn, radius, f"variogram correlation 1 − γ(d)/sill, range "
                                             f"{rng:.0f} m")
    rng = float(variogram_range) if variogram_range else float(default_range)
    if not rng > 0:
        raise ValueError(f"variogram_range must be positive, got {variogram_range!r}")
    return CorrelationKernel(lambda d: np.exp(-3.0 * d / rng), rng * math.log(20) / 3.0,
                             f"exp(−3d/{rng:.0f} m)")


def reduce_uncertainty(u: np.ndarray, rep_tree: cKDTree, rep_xy: np.ndarray, own: int,
                       xy: np.ndarray, kernel: CorrelationKernel) -> np.ndarray:
    """Apply one new sample at ``xy`` to the uncertain areas ``u`` (in place).

    Parcels with a representative point within the kernel radius get u·(1 − w(d));
    the parcel ``own`` holding the sample (−1: none) gets 0.

    Returns
    -------
    numpy.ndarray
        Positions of the parcels whose ``u`` changed.
    """
    near = np.asarray(rep_tree.query_ball_point(xy, kernel.radius), dtype=np.int64)
    if len(near):
        d = np.hypot(*(rep_xy[near] - xy).T)
        u[near] *= 1.0 - kernel(d)
    if own >= 0:
        u[own] = 0.0
        near = np.union1d(near, [own])
    return near


@dataclass
class PlanState:
    """Candidates, constraints and the running uncertainty of one planning run.

    Attributes are arrays over candidates (``cand_*``) or parcels (``parcel_*``);
    the raster holds the uncertain area per grid cell (``mass``) and its convolution
    with the kernel (``benefit``), kept up to date after each pick.
    """

    cand_xy: np.ndarray
    cand_parcel: np.ndarray
    cand_cell: np.ndarray          # (m, 2) raster row/column
    cand_area: np.ndarray          # m² of farmland each candidate stands for
    available: np.ndarray
    domain: np.ndarray             # coverage domain (flagged areas)
    parcel_rep: np.ndarray
    parcel_u: np.ndarray
    parcel_area_mu: np.ndarray
    parcel_ell: np.ndarray         # typical distance inside a parcel (m)
    parcel_basis: np.ndarray       # basis of P(change): p_class, unclassified, ...
    kernel: CorrelationKernel
    spacing: float
    min_spacing: float
    fixed_xy: np.ndarray           # existing samples
    shape: tuple[int, int]
    picks: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parcel_u = self.parcel_u.astype(float).copy()
        self.p_start = np.divide(self.parcel_u, self.parcel_area_mu,
                                 out=np.zeros_like(self.parcel_u), where=self.parcel_area_mu > 0)
        self.cand_tree = cKDTree(self.cand_xy)
        self.rep_tree = cKDTree(self.parcel_rep)
        order = np.argsort(self.cand_parcel, kind="stable")
        self._by_parcel = order
        self._bounds = np.searchsorted(self.cand_parcel[order],
                                       np.arange(len(self.parcel_u) + 1))
        self._n_pts = np.diff(self._bounds).astype(float)
        self._flat = self.cand_cell[:, 0] * self.shape[1] + self.cand_cell[:, 1]
        r = math.ceil(self.kernel.radius / self.spacing)
        off = np.arange(-r, r + 1) * self.spacing
        self._k = self.kernel(np.hypot(*np.meshgrid(off, off)))
        self._r = r
        self.benefit = fftconvolve(self._mass(np.arange(len(self.parcel_u)), self.parcel_u),
                                   self._k, mode="same")

    # ------------------------------------------------------------------ raster
    def _mass(self, parcels: np.ndarray, du: np.ndarray) -> np.ndarray:
        """Raster of ``du`` (per parcel) spread evenly over each parcel's candidates."""
        grid = np.zeros(self.shape)
        idx, w = self._points_of(parcels, du)
        np.add.at(grid.ravel(), self._flat[idx], w)
        return grid

    def _points_of(self, parcels: np.ndarray, du: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self._bounds[parcels], self._bounds[parcels + 1]
        counts = ends - starts
        rep = np.repeat(np.arange(len(parcels)), counts)
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        idx = self._by_parcel[starts[rep] + k]
        n = np.maximum(self._n_pts[parcels[rep]], 1)
        return idx, du[rep] / n

    def _update_benefit(self, parcels: np.ndarray, du: np.ndarray) -> None:
        """Add the convolution of a local mass change to the benefit raster."""
        idx, w = self._points_of(parcels, du)
        if not len(idx):
            return
        cells = self.cand_cell[idx]
        lo, hi = cells.min(axis=0), cells.max(axis=0)
        window = np.zeros(hi - lo + 1)
        np.add.at(window, (cells[:, 0] - lo[0], cells[:, 1] - lo[1]), w)
        delta = fftconvolve(window, self._k, mode="full")
        r0, c0 = lo - self._r
        rs, cs = max(r0, 0), max(c0, 0)
        re = min(r0 + delta.shape[0], self.shape[0])
        ce = min(c0 + delta.shape[1], self.shape[1])
        self.benefit[rs:re, cs:ce] += delta[rs - r0:re - r0, cs - c0:ce - c0]

    # ------------------------------------------------------------------ scoring
    def scores(self) -> np.ndarray:
        """Expected 亩 of class change a sample at each candidate would address.

        Raster convolution (mass spread over each parcel) plus, for the parcel holding
        the candidate, the part of its uncertainty the kernel has not credited.
        """
        own = self.cand_parcel
        bonus = self.parcel_u[own] * (1.0 - self.kernel(self.parcel_ell[own]))
        return np.maximum(self.benefit.ravel()[self._flat], 0.0) + bonus

    def p_change(self, parcel: int) -> float:
        """Current P(change) of a parcel."""
        a = self.parcel_area_mu[parcel]
        return float(self.parcel_u[parcel] / a) if a > 0 else 0.0

    def nearest_point_distance(self, xy: np.ndarray) -> float:
        """Distance (m) from ``xy`` to the nearest existing sample or committed point."""
        pts = [self.fixed_xy] + ([np.array([p["xy"] for p in self.picks])] if self.picks else [])
        allp = np.vstack(pts)
        return float(np.min(np.hypot(*(allp - xy).T))) if len(allp) else math.inf

    # ------------------------------------------------------------------ commit
    def commit(self, cand: int, mode: str, reason_zh: str, reason_en: str) -> dict:
        """Accept candidate ``cand``: record it, enforce spacing, update uncertainty."""
        xy = self.cand_xy[cand]
        own = int(self.cand_parcel[cand])
        before = self.parcel_u.copy()
        changed = reduce_uncertainty(self.parcel_u, self.rep_tree, self.parcel_rep, own, xy,
                                     self.kernel)
        du = self.parcel_u[changed] - before[changed]
        self._update_benefit(changed, du)
        if self.min_spacing > 0:
            gone = self.cand_tree.query_ball_point(xy, np.nextafter(self.min_spacing, 0))
            self.available[np.asarray(gone, dtype=np.int64)] = False
        self.available[cand] = False
        pick = {"xy": (float(xy[0]), float(xy[1])), "cand": cand, "parcel": own, "mode": mode,
                "reason_zh": reason_zh, "reason_en": reason_en,
                "benefit": float(-du.sum())}
        self.picks.append(pick)
        return pick

    def committed_xy(self) -> np.ndarray:
        """Existing samples plus committed points, (k, 2) metres."""
        if not self.picks:
            return self.fixed_xy
        return np.vstack([self.fixed_xy, np.array([p["xy"] for p in self.picks])])


# ====================================================================== uncertainty
#: reason text by the basis of the picked parcel's P(change) (sampling.change_probability)
UNCERTAINTY_REASONS = {
    "p_class": ("类别概率不确定", "uncertain class probabilities"),
    "threshold_proximity": ("接近标准限值", "value near a threshold"),
    "class_share": ("类别面积混杂", "mixed class shares"),
    "unclassified": ("未分类图斑", "unclassified parcel"),
    "none": ("邻近图斑类别不确定", "uncertain neighbouring parcels"),
}


def pick_uncertainty(state: PlanState, budget: int) -> int:
    """Greedy picks on expected class change × area; returns the number placed."""
    placed = 0
    while placed < budget and state.available.any():
        score = np.where(state.available, state.scores(), -np.inf)
        cand = int(np.argmax(score))
        if not np.isfinite(score[cand]) or score[cand] <= 1e-9:
            if placed < budget:
                log.info("uncertainty mode: no candidate with expected class change left after "
                         "%d point(s)", placed)
            break
        own = int(state.cand_parcel[cand])
        p = state.p_change(own)
        zh, en = UNCERTAINTY_REASONS[state.parcel_basis[own] if p > 0 else "none"]
        lzh, len_ = p_change_level(p)    # the words follow the number, never "high" at 0.07
        state.commit(cand, "uncertainty", f"{zh}（变化概率{lzh}）: p(change)={p:.2f}",
                     f"{en} ({len_} chance of a class change), p(change)={p:.2f}")
        placed += 1
    return placed


# ====================================================================== coverage
def pick_coverage(state: PlanState, budget: int, *, seed: int, max_iter: int = 40,
                  tol: float = 1.0) -> int:
    """Spatial-coverage infill: weighted k-means over the domain's candidate points
    with existing samples and earlier picks held fixed as centres; each new centre
    is snapped to the nearest available candidate in the domain. Returns the count."""
    dom = np.flatnonzero(state.domain)
    open_dom = state.available[dom]
    k = int(min(budget, open_dom.sum()))
    if k <= 0:
        return 0
    pts, w = state.cand_xy[dom], state.cand_area[dom]
    fixed = state.committed_xy()
    centres = _kmeanspp(pts, w, fixed, k, np.random.default_rng(seed))
    centres, area = _lloyd(pts, w, fixed, centres, max_iter=max_iter, tol=tol)
    placed = 0
    for c in np.argsort(-area, kind="stable"):
        cand = _nearest_open(state, centres[c])
        if cand < 0:
            break
        gap = state.nearest_point_distance(state.cand_xy[cand])
        state.commit(cand, "coverage", f"空间覆盖: 距最近点位 {gap:.0f} m",
                     f"coverage gap, {gap:.0f} m to the nearest sample")
        placed += 1
    return placed


def _kmeanspp(pts: np.ndarray, w: np.ndarray, fixed: np.ndarray, k: int,
              rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding weighted by area, distances counted from the fixed centres too."""
    d2 = (cKDTree(fixed).query(pts)[0] ** 2 if len(fixed)
          else np.full(len(pts), np.inf))
    centres = np.empty((k, 2))
    for i in range(k):
        if np.isinf(d2).all():
            j = int(rng.integers(len(pts)))
        else:
            p = w * d2
            total = p.sum()
            j = int(rng.choice(len(pts), p=p / total)) if total > 0 else int(rng.integers(len(pts)))
        centres[i] = pts[j]
        d2 = np.minimum(d2, ((pts - pts[j]) ** 2).sum(axis=1))
    return centres


def _lloyd(pts: np.ndarray, w: np.ndarray, fixed: np.ndarray, centres: np.ndarray, *,
           max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations moving only the free centres; returns centres and cluster areas."""
    nf = len(fixed)
    area = np.zeros(len(centres))
    for _ in range(max_iter):
        _, lab = cKDTree(np.vstack([fixed, centres]) if nf else centres).query(pts)
        free = lab >= nf
        idx = lab[free] - nf
        area = np.bincount(idx, weights=w[free], minlength=len(centres))
        sx = np.bincount(idx, weights=w[free] * pts[free, 0], minlength=len(centres))
        sy = np.bincount(idx, weights=w[free] * pts[free, 1], minlength=len(centres))
        new = centres.copy()
        has = area > 0
        new[has] = np.column_stack([sx[has], sy[has]]) / area[has, None]
        shift = float(np.max(np.hypot(*(new - centres).T))) if len(new) else 0.0
        centres = new
        if shift < tol:
            break
    return centres, area


def _nearest_open(state: PlanState, xy: np.ndarray) -> int:
    """Nearest candidate to ``xy`` that is available and in the coverage domain (−1: none)."""
    ok = state.available & state.domain
    if not ok.any():
        return -1
    k = min(64, len(state.cand_xy))
    _, idx = state.cand_tree.query(xy, k=k)
    for i in np.atleast_1d(idx):
        if i < len(ok) and ok[i]:
            return int(i)
    cand = np.flatnonzero(ok)
    return int(cand[np.argmin(np.hypot(*(state.cand_xy[cand] - xy).T))])


# ====================================================================== sources
SOURCE_RINGS_M = (300.0, 800.0, 1500.0)
RING_TOLERANCE_M = 150.0
#: bearings (degrees) tried around a source without flow information, spread first
EVEN_BEARINGS = (0.0, 180.0, 90.0, 270.0, 45.0, 225.0, 135.0, 315.0)
#: offsets from the downstream bearing, downstream first
DOWNSTREAM_OFFSETS = (0.0, 30.0, -30.0, 60.0, -60.0)


def pick_sources(state: PlanState, budget: int, sources: pd.DataFrame, *,
                 rings: tuple[float, ...] = SOURCE_RINGS_M,
                 tolerance: float = RING_TOLERANCE_M) -> int:
    """Points on rings around pollution sources, on farmland only.

    ``sources`` needs ``x``, ``y`` (metres), ``source_id``, ``name`` and optionally
    ``downstream_bearing`` (degrees clockwise from north): then the targets are the
    downstream bearing ±30° ±60°, else eight bearings evenly around. Targets are
    visited ring by ring (inner first), bearing by bearing, source by source (sources
    with more farmland nearby first), and each is snapped to the nearest available
    candidate within ``tolerance`` of the ring. Returns the number placed.
    """
    placed = 0
    for src, ring, bearing, downstream in _source_targets(state, sources, rings, tolerance):
        if placed >= budget:
            break
        centre = np.array([src.x, src.y])
        target = centre + ring * np.array([math.sin(math.radians(bearing)),
                                           math.cos(math.radians(bearing))])
        cand = _ring_candidate(state, centre, target, ring, tolerance)
        if cand < 0:
            continue
        side_zh, side_en = ("下游", "downstream") if downstream else ("方位", "bearing")
        state.commit(cand, "sources",
                     f"污染源 {src.name}（{src.source_id}）{side_zh} {ring:.0f} m",
                     f"pollution source {src.source_id}, {ring:.0f} m ring, {side_en} "
                     f"{bearing % 360:.0f}°")
        placed += 1
    return placed


def _source_targets(state: PlanState, sources: pd.DataFrame, rings: tuple[float, ...],
                    tolerance: float) -> Iterator[tuple]:
    outer = max(rings) + tolerance
    near = state.cand_tree.query_ball_point(sources[["x", "y"]].to_numpy(float), outer)
    farmland = np.array([state.cand_area[np.asarray(n, dtype=np.int64)].sum() for n in near])
    order = sources.assign(_farm=farmland).sort_values(["_farm", "source_id"],
                                                        ascending=[False, True], kind="stable")
    order = order.loc[order["_farm"] > 0]
    bearings = {}
    for src in order.itertuples():
        b = getattr(src, "downstream_bearing", None)
        known = b is not None and not pd.isna(b)
        bearings[src.Index] = ([float(b) + o for o in DOWNSTREAM_OFFSETS] if known
                               else list(EVEN_BEARINGS), known)
    for i, ring in enumerate(rings):
        for j in range(max((len(v[0]) for v in bearings.values()), default=0)):
            for src in order.itertuples():
                angles, known = bearings[src.Index]
                if j < len(angles):
                    yield src, ring, angles[j] + (0.0 if known else 22.5 * i), known


def _ring_candidate(state: PlanState, centre: np.ndarray, target: np.ndarray, ring: float,
                    tolerance: float) -> int:
    idx = np.asarray(state.cand_tree.query_ball_point(target, 2 * tolerance), dtype=np.int64)
    if not len(idx):
        return -1
    idx = idx[state.available[idx]]
    r = np.hypot(*(state.cand_xy[idx] - centre).T)
    idx = idx[np.abs(r - ring) <= tolerance]
    if not len(idx):
        return -1
    d = np.hypot(*(state.cand_xy[idx] - target).T)
    return int(idx[np.lexsort((idx, d))[0]])
