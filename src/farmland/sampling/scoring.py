"""Greedy scores of the uncertainty mode: the expected drop in misclassified 亩 that one
sample at each candidate would bring, kept exact as samples are committed.

A candidate's score has three parts (:class:`~farmland.sampling.expected.ExpectedEffect`
defines the losses):

- **own parcel** — the parcel holding the candidate takes the sample's class: its
  expected misclassified 亩 now minus that of one noisy sample there;
- **reach** — unclassified parcels within the distance limit of the candidate get a
  class: (1 − reach loss) × their 亩;
- **kriging** — for every interpolated evaluation point t (not in the candidate's own
  parcel) whose neighbourhood the candidate would join, i.e. closer than t's k-th
  nearest sample (a KD-tree query with one radius per point): 亩(t) × (loss now −
  expected loss with the candidate added to t's kriging system, rank-one update).

The kriging part is stored per (point, candidate) pair. Committing a sample changes
only the points whose kriging system was rebuilt (the sample joined their
neighbourhood) or whose parcel now holds the sample: their pairs are recomputed, the
rest stay, so after each pick every score is what a fresh computation would give.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial import cKDTree

from farmland.geostats.variance import variance_with_point
from farmland.sampling.expected import FIXED, UNCLASSIFIED, ExpectedEffect

__all__ = ["CandidateScores"]

#: evaluation points whose candidate pairs are built in one batch
TARGET_BATCH = 2_000
#: relative drop of a kriging variance below which a pair's gain is taken as 0
MIN_VARIANCE_DROP = 1e-4


class CandidateScores:
    """Scores of the candidates (the effect's evaluation points) for the greedy picks.

    ``available`` is the planner's mask at build time: candidates already ruled out
    (spacing, exclusions) get no pairs; the caller masks later exclusions itself.
    """

    def __init__(self, effect: ExpectedEffect, available: np.ndarray):
        self.effect = e = effect
        self.open = np.asarray(available, dtype=bool).copy()
        # candidates only ever close, so a tree of those open now finds every pair (on
        # the demo county 12 % of the evaluation points: the ball queries return that
        # much less); ``self.rows`` maps its positions back, in ascending order
        self.rows = np.flatnonzero(self.open)
        self.tree = cKDTree(e.kxy[self.rows])      # in the kriging space, as the radii
        self.area = np.bincount(e.parcel, weights=e.mu, minlength=len(e.kind))
        self.sample_loss = e.sample_loss(np.arange(len(e.xy)))
        self._reach_pairs()
        self.kriging = np.zeros(len(e.xy))
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._build(e.active)

    # ------------------------------------------------------------------ parts
    def _reach_pairs(self) -> None:
        e = self.effect
        uncl = np.flatnonzero(e.kind == UNCLASSIFIED)
        cand = np.flatnonzero(self.open)
        if not len(uncl) or not len(cand):
            self._reach_c = self._reach_p = np.zeros(0, dtype=np.int64)
            return
        c, p = shapely.STRtree(e.geoms[uncl]).query(
            shapely.points(e.xy[cand]), predicate="dwithin", distance=e.settings.max_distance)
        c, p = cand[c], uncl[p]
        keep = e.parcel[c] != p          # the own parcel is counted by the own part
        self._reach_c, self._reach_p = c[keep], p[keep]

    def own(self) -> np.ndarray:
        """Own-parcel part of every candidate."""
        e = self.effect
        p = e.parcel
        gain = e.parcel_totals()[p] - self.area[p] * self.sample_loss
        stop = (e.kind[p] == FIXED) | np.isfinite(e.owned[p])
        return np.where(stop, 0.0, gain)

    def reach(self) -> np.ndarray:
        """Reach part of every candidate."""
        e = self.effect
        value = np.where(e.reached, 0.0, self.area * (1.0 - e.reach_loss))
        return np.bincount(self._reach_c, weights=value[self._reach_p], minlength=len(e.xy))

    def scores(self) -> np.ndarray:
        """Expected drop in misclassified 亩 of one sample at each candidate."""
        return self.own() + self.reach() + self.kriging

    # ------------------------------------------------------------------ kriging pairs
    def _build(self, rows: np.ndarray) -> None:
        """(Re)compute the kriging pairs of active evaluation points ``rows``."""
        e = self.effect
        if not len(e.points):        # no sample yet: no kriging system to add a point to
            return
        for start in range(0, len(rows), TARGET_BATCH):
            part = rows[start:start + TARGET_BATCH]
            radius = np.minimum(e.radius[part], 1e12)
            lists = self.tree.query_ball_point(e.kxy[part], r=np.nextafter(radius, 0))
            counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(part))
            cand = (self.rows[np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])]
                    if counts.sum() else np.zeros(0, dtype=np.int64))
            local = np.repeat(np.arange(len(part)), counts)
            keep = self.open[cand] & (e.parcel[cand] != e.parcel[part][local])
            cand, local = cand[keep], local[keep]
            gain = np.zeros(len(cand))
            if len(cand):
                var = variance_with_point(e.systems(part), e.settings.variogram, local,
                                          e.kxy[cand])
                t = part[local]
                # a drop below MIN_VARIANCE_DROP of the variance moves no decision
                moved = var < (1.0 - MIN_VARIANCE_DROP) * e.var_now[t]
                gain[moved] = e.mu[t[moved]] * (e.loss[t[moved]]
                                                - e.point_loss(t[moved], var[moved]))
            np.add.at(self.kriging, cand, gain)
            bounds = np.searchsorted(local, np.arange(len(part) + 1))
            for i, row in enumerate(part):
                sl = slice(bounds[i], bounds[i + 1])
                self._pairs[int(row)] = (cand[sl], gain[sl])

    def _drop(self, rows: np.ndarray) -> None:
        for row in rows:
            old = self._pairs.pop(int(row), None)
            if old is not None and len(old[0]):
                np.subtract.at(self.kriging, old[0], old[1])

    def update(self, touched: np.ndarray, available: np.ndarray) -> None:
        """After a commit: recompute the pairs of the touched evaluation points."""
        self.open &= np.asarray(available, dtype=bool)
        self._drop(touched)
        touched = np.unique(np.asarray(touched, dtype=np.int64))
        still = touched[self.effect.is_active(touched)]
        self._build(still)
