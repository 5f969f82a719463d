"""The expected effect of planned samples on the classes (issue 15 item 4).

Farmland is represented by evaluation points (the planner's candidates: grid cell
centres inside parcels, one point for a parcel too small to hold one), each standing
for its share of its parcel's 亩. What a point's parcel is decides what a new sample
can do there:

- **interpolated** (classed by the kriged surfaces; ``p_class_*``, else the class
  shares): its expected misclassification is 1 − P(today's class); samples whose
  location enters its kriging neighbourhood (its k nearest) lower the kriging
  variance there, and the expected misclassification after follows from
  :func:`farmland.sampling.preposterior.expected_loss` (no values needed);
- **unclassified** (too far from every sample): counted as misclassified until a sample
  comes within the distance limit of the parcel; then it is expected to be wrong as
  often as the county's interpolated land is today (``reach_loss``);
- **fixed** (classed by its own samples or by crops, or without probabilities): no
  planned point changes it (points keep ``min_spacing`` from existing samples); left out.

A sample placed inside an interpolated or unclassified parcel gives the parcel its own
class (the point rule): the misclassification after is that of one noisy value
(:func:`~farmland.sampling.preposterior.sample_loss`, the variogram's nugget as the
error). The variance update is exact ordinary kriging with the planned points added
(:mod:`farmland.geostats.variance`); there is no distance decay of any kind.

**Two truths.** "Misclassified" is counted against a truth: the model's (the kriging
distribution behind ``p_class_*``) or the calibrated one (``p_calibrated_*``,
:func:`~farmland.sampling.preposterior.calibrated_truth`). The effect starts with
:attr:`EffectSettings.ranking_truth` (the greedy picks rank by it) and
:meth:`ExpectedEffect.replay` recomputes every commit's losses under another (the
settings' ``truth``, which the planner reports) from the kriging variances the commits
left: the systems do not depend on the truth, only the losses do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.geostats.variance import (
    NeighbourhoodSystems,
    kriging_variance,
    neighbourhood_systems,
)
from farmland.sampling import preposterior as pp
from farmland.sampling.effect_settings import (
    DEFAULT_RANGE_M,
    FIXED,
    INTERPOLATED,
    SAMPLE_ERROR_CV,
    UNCLASSIFIED,
    EffectSettings,
    main_variogram,
    parcel_kinds,
    probability_columns,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RANGE_M", "FIXED", "INTERPOLATED", "SAMPLE_ERROR_CV", "UNCLASSIFIED",
           "EffectSettings", "ExpectedEffect", "main_variogram", "parcel_kinds"]

#: an interpolated point whose misclassification today is below this by the model's
#: probabilities is left as it is (on the demo county such points hold 0.03 % of the
#: model's expected misclassified area; under the calibrated truth they keep today's
#: loss, at least the calibration's floor of 0.001)
ACTIVE_LOSS = 1e-3
#: reach loss when the county has no interpolated land to learn it from (3 equal classes)
UNINFORMED_LOSS = 2 / 3
#: neighbour row of a neighbourhood with fewer than k samples (no sample)
SENTINEL = np.iinfo(np.int32).max


class ExpectedEffect:
    """Expected misclassified area of the county, updated as samples are committed.

    Parameters
    ----------
    parcels
        Classification ``parcels`` (metric CRS): ``final_class``, ``rule``,
        ``p_class_1..3`` or ``share_1..3``.
    fixed_xy
        (n, 2) existing usable sample locations, metres.
    eval_xy, eval_parcel, eval_mu
        Evaluation points (metres), the position of their parcel, the 亩 each stands for.
    settings
        :class:`EffectSettings`.
    """

    def __init__(self, parcels: pd.DataFrame, fixed_xy: np.ndarray, eval_xy: np.ndarray,
                 eval_parcel: np.ndarray, eval_mu: np.ndarray, settings: EffectSettings):
        self.settings = s = settings
        self.kind, probs, self.basis = parcel_kinds(parcels)
        self.z1, self.z2 = pp.latent_thresholds(*probs.T)
        self._calibrated = probability_columns(parcels, "p_calibrated_")
        self._calibrated[self.basis != "p_class"] = np.nan
        self.geoms = np.asarray(parcels.geometry.values)
        self.xy, self.parcel = np.asarray(eval_xy, float), np.asarray(eval_parcel, np.int64)
        # the kriging systems live in the variogram's kriging space (its anisotropy; the
        # same metres without): evaluation points ``kxy``, samples ``points``
        self.kxy = s.variogram.kriging_space(self.xy)
        self.mu = np.asarray(eval_mu, float)
        self.points = np.unique(s.variogram.kriging_space(
            np.asarray(fixed_xy, float).reshape(-1, 2)), axis=0)
        self.n_fixed = len(self.points)
        self.owned = np.full(len(parcels), np.nan)   # loss of a parcel holding a new sample
        self.reached = self.kind != UNCLASSIFIED
        self.var0 = self._today_variance()
        self.nu = self._noise_share(self.var0)
        p = self.parcel
        # active: where the model expects a misclassification, whatever the truth (the
        # calibrated probabilities never fall below 0.001: by them every point would be)
        self._set_truth("model")
        sure = self.today < ACTIVE_LOSS
        if s.ranking_truth != "model":
            self._set_truth(s.ranking_truth)
        self.active = np.flatnonzero((self.kind[p] == INTERPOLATED) & ~sure
                                     & np.isfinite(self.var0))
        self._active = np.zeros(len(self.xy), dtype=bool)   # mask of self.active
        self._active[self.active] = True
        self._active0 = self.active.copy()
        self.var_now = self.var0.copy()
        self._owned_change = np.zeros(len(parcels))
        self._log: list[_Commit] = []
        self._allocate()
        self._rebuild(self.active)
        self.loss = self._losses()

    # ------------------------------------------------------------------ set-up
    def _set_truth(self, truth: str) -> None:
        """Take the parcels' truth from ``truth`` (``"calibrated"``: their calibrated
        probabilities where they have them; ``"model"``): its (μ, σ) at every evaluation
        point, today's losses and the reach loss."""
        self.truth = truth
        self.calibrated = (self._calibrated if truth == "calibrated"
                           else np.full(self._calibrated.shape, np.nan))
        p, s = self.parcel, self.settings
        self.mu_t, self.sd_t = self._truth_at(p, self.nu)
        self.today = np.where(self.kind[p] == INTERPOLATED,
                              pp.today_loss(self.z1[p], self.z2[p], s.tau3, s.tau2, self.nu,
                                            self.mu_t, self.sd_t), 0.0)
        self.reach_loss = self._reach_loss()

    def _reach_loss(self) -> float:
        interp = self.kind[self.parcel] == INTERPOLATED
        if self.mu[interp].sum() <= 0:
            return UNINFORMED_LOSS
        return float(np.average(self.today[interp], weights=self.mu[interp]))

    def _noise_share(self, var: np.ndarray) -> np.ndarray:
        """ν at kriging variances ``var``: the share of the probabilities' variance that is
        not in a parcel's true soil (the nugget: lab error and short-range variation,
        which a parcel mean averages out); 0 when the probabilities are already
        nugget-free (``"parcel"``)."""
        var = np.asarray(var, float)
        if self.settings.probabilities == "parcel":
            return np.zeros(var.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            nu = self.settings.variogram.nugget / var
        return np.clip(np.nan_to_num(nu, nan=0.0, posinf=0.0), 0.0, 1.0 - 1e-9)

    def _truth_at(self, p: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(μ, σ) of the truth's error on the probabilities' scale for parcels ``p`` at
        noise shares ``nu``: from the calibrated probabilities where there are any, else
        the model's (0, √(1 − ν))."""
        q = self.calibrated[p]
        return pp.calibrated_truth(self.z1[p], self.z2[p], *q.T, nu)

    def _today_variance(self) -> np.ndarray:
        """Kriging variance today at every interpolated evaluation point (NaN elsewhere)."""
        var = np.full(len(self.xy), np.nan)
        todo = self.kind[self.parcel] == INTERPOLATED
        if todo.any():
            var[todo] = self._variance_at(self.kxy[todo])
        return var

    def _variance_at(self, xy: np.ndarray) -> np.ndarray:
        v = self.settings.variogram
        if not self.n_fixed:
            return np.full(len(xy), v.sill)
        return kriging_variance(v, self.points[:self.n_fixed], xy, k=self.settings.neighbours)

    def _used(self, var: np.ndarray) -> np.ndarray:
        """The variance the class probabilities were computed with (point or parcel)."""
        if self.settings.probabilities == "parcel":
            return np.maximum(var - self.settings.variogram.nugget, 0.0)
        return var

    def ratio(self, var: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """r = σ'/σ of evaluation points ``rows`` at variance ``var`` (≤ 1)."""
        old = self._used(self.var0[rows])
        new = self._used(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.sqrt(np.where(old > 0, new / old, 1.0))
        return np.clip(np.nan_to_num(r, nan=1.0), 0.0, 1.0)

    # ------------------------------------------------------------------ neighbourhoods
    def _allocate(self) -> None:
        """Kriging-system storage for the active points (their slots never change)."""
        k, m = self.settings.neighbours, len(self.active)
        self.slot = np.full(len(self.xy), -1, dtype=np.int64)
        self.slot[self.active] = np.arange(m)
        self._sets = np.full((m, k), SENTINEL, dtype=np.int64)
        self._inverse = np.zeros((m, k + 1, k + 1))
        self._solution = np.zeros((m, k + 1))
        self.radius = np.full(len(self.xy), np.inf)

    def _rebuild(self, rows: np.ndarray) -> None:
        """Kriging systems of active evaluation points ``rows`` from the current samples:
        their k nearest (existing and committed), A⁻¹, [w; μ], σ² and the distance
        within which a new sample would join their neighbourhood."""
        if not len(rows) or not len(self.points):
            return
        k, n = self.settings.neighbours, len(self.points)
        q = min(k, n)
        dist, idx = cKDTree(self.points).query(self.kxy[rows], k=q)
        dist, idx = dist.reshape(len(rows), q), idx.reshape(len(rows), q)
        sets = np.full((len(rows), k), SENTINEL, dtype=np.int64)
        sets[:, :q] = np.sort(idx, axis=1)
        built = neighbourhood_systems(self.settings.variogram, self.points, self.kxy[rows],
                                      sets)
        slots = self.slot[rows]
        self._sets[slots], self._inverse[slots] = sets, built.inverse
        self._solution[slots] = built.solution
        self.var_now[rows] = built.variance
        self.radius[rows] = dist[:, -1] if n >= k else np.inf

    def is_active(self, rows: np.ndarray) -> np.ndarray:
        """Whether evaluation points ``rows`` are active (interpolated, their parcel without
        a sample of its own)."""
        return self._active[rows]

    def systems(self, rows: np.ndarray) -> NeighbourhoodSystems:
        """The current kriging systems of active evaluation points ``rows``."""
        slots = self.slot[rows]
        return NeighbourhoodSystems(self.points, self.kxy[rows], self._sets[slots],
                                    self._inverse[slots], self._solution[slots],
                                    self.var_now[rows])

    # ------------------------------------------------------------------ losses
    def point_loss(self, rows: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Expected misclassification of interpolated points ``rows`` at variance ``var``."""
        p = self.parcel[rows]
        return pp.expected_loss(self.z1[p], self.z2[p], self.ratio(var, rows),
                                self.settings.tau3, self.settings.tau2, self.nu[rows],
                                self.mu_t[rows], self.sd_t[rows])

    def _losses(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Current expected misclassification of evaluation points ``rows`` (default all)."""
        rows = np.arange(len(self.xy)) if rows is None else np.asarray(rows, dtype=np.int64)
        p = self.parcel[rows]
        kind = self.kind[p]
        loss = np.where(kind == INTERPOLATED, self.today[rows], 0.0)
        loss[kind == UNCLASSIFIED] = np.where(self.reached[p[kind == UNCLASSIFIED]],
                                              self.reach_loss, 1.0)
        active = self._active[rows]
        loss[active] = self.point_loss(rows[active], self.var_now[rows[active]])
        owned = np.isfinite(self.owned[p])
        loss[owned] = self.owned[p[owned]]
        return loss

    def sample_loss(self, rows: np.ndarray, var0: np.ndarray | None = None) -> np.ndarray:
        """Misclassification of each point's parcel if it held one new sample at the point."""
        p = self.parcel[rows]
        out = np.where(self.kind[p] == UNCLASSIFIED, self.reach_loss, 0.0)
        interp = self.kind[p] == INTERPOLATED
        if interp.any():
            v = self.var0[rows[interp]] if var0 is None else np.asarray(var0)[interp]
            out[interp] = self._noisy_sample(p[interp], v, "loss")
        return out

    def sample_change(self, rows: np.ndarray) -> np.ndarray:
        """P(the class of each point's parcel changes) if it held one new sample there."""
        p = self.parcel[rows]
        out = np.where(self.kind[p] == UNCLASSIFIED, 1.0, 0.0)
        interp = self.kind[p] == INTERPOLATED
        if interp.any():
            out[interp] = self._noisy_sample(p[interp], self.var0[rows[interp]], "change")
        return out

    def _noisy_sample(self, p: np.ndarray, var: np.ndarray, what: str) -> np.ndarray:
        """A new sample in parcels ``p`` (kriging variance ``var`` there): the soil it
        measures is the truth N(μ, σ²) of :meth:`_truth_at` (the model's: σ² = 1 − ν,
        the variance without the nugget), its error the sample error."""
        used = self._used(var)
        mu, sd = self._truth_at(p, self._noise_share(var))
        with np.errstate(invalid="ignore", divide="ignore"):
            v_truth = np.where(used > 0, sd * sd, 1.0)
            v_noise = np.where(used > 0, self.settings.sample_error / used, 0.0)
        if what == "loss":
            return pp.sample_loss(self.z1[p], self.z2[p], v_truth, v_noise, mu)
        return pp.sample_change(self.z1[p], self.z2[p], v_truth, v_noise, self.settings.tau3,
                                self.settings.tau2, mu)

    def total(self) -> float:
        """Expected misclassified 亩 (interpolated and unclassified land)."""
        return float((self.mu * self.loss).sum())

    def parcel_totals(self, values: np.ndarray | None = None) -> np.ndarray:
        """Σ 亩 × ``values`` (default the current loss) per parcel."""
        v = self.loss if values is None else values
        return np.bincount(self.parcel, weights=self.mu * v, minlength=len(self.kind))

    def variance_ratio(self) -> np.ndarray:
        """Per parcel: σ'²/σ² (the variance the probabilities use, after the samples so far
        against today's), the 亩-weighted mean over its active evaluation points; NaN for
        a parcel without any (fixed, unclassified, holding a new sample, or sure)."""
        a = self.active
        w = self.mu[a]
        n = len(self.kind)
        num = np.bincount(self.parcel[a], weights=w * self.ratio(self.var_now[a], a) ** 2,
                          minlength=n)
        den = np.bincount(self.parcel[a], weights=w, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)

    def change_probability(self) -> np.ndarray:
        """P(the class of each evaluation point's parcel changes) with the samples so far."""
        out = np.zeros(len(self.xy))
        a = self.active
        p = self.parcel[a]
        out[a] = pp.decision_change(self.z1[p], self.z2[p], self.ratio(self.var_now[a], a),
                                    self.settings.tau3, self.settings.tau2, self.nu[a],
                                    self.mu_t[a], self.sd_t[a])
        kind = self.kind[self.parcel]
        out[(kind == UNCLASSIFIED) & self.reached[self.parcel]] = 1.0
        owned = np.flatnonzero(np.isfinite(self.owned[self.parcel]) & (kind == INTERPOLATED))
        out[owned] = self._owned_change[self.parcel[owned]]
        return out

    # ------------------------------------------------------------------ commit
    def commit(self, xy, parcel: int, row: int | None = None) -> tuple[float, np.ndarray]:
        """Add a sample at ``xy`` (inside parcel position ``parcel``, −1: none).

        ``row`` is the evaluation point at ``xy`` when there is one. Returns the drop in
        expected misclassified 亩 and the active evaluation points touched (kriging
        system rebuilt, or left the active set because their parcel now holds a sample).
        """
        xy = np.asarray(xy, float).reshape(2)
        kxy = self.settings.variogram.kriging_space(xy[None, :])[0]
        before = self.total()
        var = self._own_variance(kxy, parcel, row)
        left = self._own(parcel, var)
        self.points = np.vstack([self.points, kxy])
        near = self.active[np.hypot(*(self.kxy[self.active] - kxy).T)
                           < self.radius[self.active]]
        self._rebuild(near)
        reached = self._reach(xy)
        self._log.append(_Commit(parcel, var, near, self.var_now[near].copy(), reached))
        self._update(parcel, near, reached)
        return before - self.total(), np.union1d(near, left)

    def _update(self, parcel: int, near: np.ndarray, reached: np.ndarray) -> None:
        """Losses after a commit: the points whose system was rebuilt, the sample's own
        parcel and the parcels it brought within reach."""
        owned = np.flatnonzero(self.parcel == parcel) if parcel >= 0 else near[:0]
        self.loss[near] = self.point_loss(near, self.var_now[near])
        self.loss[owned] = self._losses(owned)
        self.loss[reached] = self._losses(reached)

    def replay(self, truth: str) -> tuple[np.ndarray, list[float]]:
        """Switch to ``truth`` and recompute the losses of every commit so far, in order,
        from the kriging variances each commit left (no system is rebuilt).

        Returns each parcel's expected misclassified 亩 before the first commit and the
        drop each commit brought, both under ``truth``; afterwards the effect's losses
        are those of ``truth``, its kriging systems and variances unchanged.
        """
        self._set_truth(truth)
        self.owned[:] = np.nan
        self._owned_change[:] = 0.0
        self.reached = self.kind != UNCLASSIFIED
        self.active = self._active0.copy()
        self._active[:] = False
        self._active[self.active] = True
        final = self.var_now
        self.var_now = self.var0.copy()
        self.loss = self._losses()
        before = self.parcel_totals()
        drops = []
        for c in self._log:
            total = self.total()
            self._own(c.parcel, c.variance)
            self.var_now[c.near] = c.near_variance
            self.reached[np.unique(self.parcel[c.reached])] = True
            self._update(c.parcel, c.near, c.reached)
            drops.append(total - self.total())
        self.var_now = final
        return before, drops

    def _own_variance(self, kxy: np.ndarray, parcel: int, row: int | None) -> np.ndarray | None:
        """Kriging variance today at a new sample (``kxy``: in the kriging space) in
        interpolated ``parcel`` (else None)."""
        if parcel < 0 or self.kind[parcel] != INTERPOLATED:
            return None
        return (self.var0[[row]] if row is not None and np.isfinite(self.var0[row])
                else self._variance_at(kxy[None, :]))

    def _own(self, parcel: int, var: np.ndarray | None) -> np.ndarray:
        """A sample inside ``parcel`` (kriging variance ``var`` there today): the parcel
        takes its class. Returns the active points that leave the active set."""
        none = np.zeros(0, dtype=np.int64)
        if parcel < 0 or np.isfinite(self.owned[parcel]) or self.kind[parcel] == FIXED:
            return none
        if self.kind[parcel] == UNCLASSIFIED:
            self.owned[parcel] = self.reach_loss
            self.reached[parcel] = True
            return none
        p = np.array([parcel])
        self.owned[parcel] = float(self._noisy_sample(p, var, "loss")[0])
        self._owned_change[parcel] = float(self._noisy_sample(p, var, "change")[0])
        mine = self.parcel[self.active] == parcel
        left = self.active[mine]
        self.active = self.active[~mine]
        self._active[left] = False
        return left

    def _reach(self, xy: np.ndarray) -> np.ndarray:
        """Unclassified parcels within the distance limit of ``xy`` get a class; returns
        their evaluation points."""
        todo = np.flatnonzero(~self.reached)
        if not len(todo):
            return np.zeros(0, dtype=np.int64)
        d = shapely.distance(self.geoms[todo], shapely.Point(*xy))
        new = todo[d <= self.settings.max_distance]
        self.reached[new] = True
        return np.flatnonzero(np.isin(self.parcel, new))


@dataclass(frozen=True)
class _Commit:
    """What one commit changed, for :meth:`ExpectedEffect.replay`: the sample's parcel
    (−1: none) and its kriging variance there today (None unless interpolated), the
    active points whose system was rebuilt and their variance after, the evaluation
    points of the parcels it brought within reach."""

    parcel: int
    variance: np.ndarray | None
    near: np.ndarray
    near_variance: np.ndarray
    reached: np.ndarray
