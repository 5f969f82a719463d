"""The planner's building blocks: candidates, state and modes.

:func:`candidate_points` lists where a point may go: cell centres of a fine grid inside
farmland parcels, plus one representative point for parcels too small to hold a cell
centre. :class:`PlanState` holds them, which of them still satisfy the constraints,
and the expected effect of the samples committed so far
(:class:`~farmland.sampling.expected.ExpectedEffect`, evaluated at the candidates).

Committing a point (:meth:`PlanState.commit`) adds it to the kriging neighbourhoods it
joins (exact ordinary kriging variance with the planned locations; values are not
needed) and gives its parcel its own sample; the point's ``benefit`` is the drop in
expected misclassified 亩 it brings after the points before it.

Modes: :func:`pick_uncertainty` (greedy on the expected drop in misclassified 亩,
:class:`~farmland.sampling.scoring.CandidateScores`), :func:`pick_coverage`
(spcosa-style k-means infill with fixed existing samples), :func:`pick_sources` (rings
around pollution sources) and :func:`pick_random` (a baseline). All coordinates are
metres in the parcels' metric CRS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.sampling.expected import ExpectedEffect
from farmland.sampling.scoring import CandidateScores
from farmland.vocabulary import p_change_level

log = logging.getLogger(__name__)

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


# ====================================================================== state
@dataclass
class PlanState:
    """Candidates, constraints and the expected effect of one planning run.

    Arrays over candidates (``cand_*``); ``effect`` is the
    :class:`~farmland.sampling.expected.ExpectedEffect` whose evaluation points are the
    candidates themselves, updated at every commit; the greedy scores
    (:class:`~farmland.sampling.scoring.CandidateScores`) are built on first use.
    """

    cand_xy: np.ndarray
    cand_parcel: np.ndarray
    cand_area: np.ndarray          # m² of farmland each candidate stands for
    available: np.ndarray
    domain: np.ndarray             # coverage domain (flagged areas)
    effect: ExpectedEffect
    spacing: float
    min_spacing: float
    fixed_xy: np.ndarray           # existing samples
    picks: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cand_tree = cKDTree(self.cand_xy)
        self._scores: CandidateScores | None = None

    def scores(self) -> np.ndarray:
        """Expected drop in misclassified 亩 of one sample at each candidate."""
        if self._scores is None:
            self._scores = CandidateScores(self.effect, self.available)
        return self._scores.scores()

    def forget_scores(self) -> None:
        """Stop keeping the greedy scores up to date (other modes commit next)."""
        self._scores = None

    def nearest_point_distance(self, xy: np.ndarray) -> float:
        """Distance (m) from ``xy`` to the nearest existing sample or committed point."""
        allp = self.committed_xy()
        return float(np.min(np.hypot(*(allp - xy).T))) if len(allp) else math.inf

    def commit(self, cand: int, mode: str, reason_zh: str, reason_en: str) -> dict:
        """Accept candidate ``cand``: record it, enforce spacing, update the effect."""
        xy = self.cand_xy[cand]
        own = int(self.cand_parcel[cand])
        benefit, touched = self.effect.commit(xy, own, row=cand)
        if self.min_spacing > 0:
            gone = self.cand_tree.query_ball_point(xy, np.nextafter(self.min_spacing, 0))
            self.available[np.asarray(gone, dtype=np.int64)] = False
        self.available[cand] = False
        if self._scores is not None:
            self._scores.update(touched, self.available)
        pick = {"xy": (float(xy[0]), float(xy[1])), "cand": cand, "parcel": own, "mode": mode,
                "reason_zh": reason_zh, "reason_en": reason_en, "benefit": benefit}
        self.picks.append(pick)
        return pick

    def committed_xy(self) -> np.ndarray:
        """Existing samples plus committed points, (k, 2) metres."""
        if not self.picks:
            return self.fixed_xy
        return np.vstack([self.fixed_xy, np.array([p["xy"] for p in self.picks])])


# ====================================================================== uncertainty
#: reason text by the basis of the picked parcel's class probabilities
#: (``threshold_proximity`` names the basis of plans written before issue 15 item 4)
UNCERTAINTY_REASONS = {
    "p_class": ("类别概率不确定", "uncertain class probabilities"),
    "threshold_proximity": ("接近标准限值", "value near a threshold"),
    "class_share": ("类别面积混杂", "mixed class shares"),
    "unclassified": ("未分类图斑", "unclassified parcel"),
    "none": ("邻近图斑类别不确定", "uncertain neighbouring parcels"),
}


#: decimals of 亩 the greedy uncertainty pick compares scores at
SCORE_DECIMALS = 6


def best_candidate(score: np.ndarray) -> int:
    """Position of the best score to :data:`SCORE_DECIMALS` decimals of 亩, the first among
    equals: scores that differ only in their last bits (another machine's BLAS kernels)
    must not pick another point."""
    return int(np.argmax(np.round(score, SCORE_DECIMALS)))


def pick_uncertainty(state: PlanState, budget: int) -> int:
    """Greedy picks on the expected drop in misclassified 亩; returns the number placed."""
    placed = 0
    while placed < budget and state.available.any():
        score = np.where(state.available, state.scores(), -np.inf)
        cand = best_candidate(score)
        if not np.isfinite(score[cand]) or score[cand] <= 1e-9:
            log.info("uncertainty mode: no candidate expected to remove misclassified area "
                     "left after %d point(s)", placed)
            break
        kind = _reason_kind(state, cand, float(score[cand]))
        zh, en = uncertainty_reason(state.effect, cand, int(state.cand_parcel[cand]), kind,
                                    float(score[cand]))
        state.commit(cand, "uncertainty", zh, en)["reason_kind"] = kind
        placed += 1
    return placed


def _reason_kind(state: PlanState, cand: int, score: float) -> str:
    """``"own"`` when the candidate's own parcel is most of its gain ``score`` (and has
    class probabilities), else ``"neighbours"``."""
    own = int(state.cand_parcel[cand])
    own_gain = float(state._scores.own()[cand]) if state._scores is not None else 0.0
    basis = str(state.effect.basis[own])
    return "own" if own_gain >= 0.5 * score and basis != "none" else "neighbours"


def uncertainty_reason(effect: ExpectedEffect, cand: int, own: int, kind: str,
                       gain: float) -> tuple[str, str]:
    """Reason of an uncertainty pick at evaluation point ``cand`` in parcel ``own``: its
    own parcel (``kind`` ``"own"``, with the probability the sample changes the parcel's
    class) or its neighbours (with ``gain``, the expected drop in misclassified 亩),
    under the effect's current truth."""
    basis = str(effect.basis[own])
    if kind == "own":
        p = effect.sample_change(np.array([cand]))[0]
        zh, en = UNCERTAINTY_REASONS[basis]
        lzh, len_ = p_change_level(p)    # the words follow the number, never "high" at 0.07
        return (f"{zh}（变化概率{lzh}）: p(change)={p:.2f}",
                f"{en} ({len_} chance of a class change), p(change)={p:.2f}")
    zh, en = UNCERTAINTY_REASONS["none"]
    return (f"{zh}: 预计减少错分 {gain:.1f} 亩",
            f"{en}: {gain:.1f} 亩 fewer expected misclassified")


# ====================================================================== random
def pick_random(state: PlanState, budget: int, *, seed: int) -> int:
    """Points drawn at random over the farmland area (candidates weighted by the area they
    stand for), with the same constraints; a baseline for the other modes."""
    rng = np.random.default_rng(seed)
    placed = 0
    while placed < budget and state.available.any():
        open_ = np.flatnonzero(state.available)
        w = state.cand_area[open_]
        cand = int(rng.choice(open_, p=w / w.sum()) if w.sum() > 0 else rng.choice(open_))
        state.commit(cand, "random", "随机布点", "random point")
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
