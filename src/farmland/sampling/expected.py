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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland import classes as C
from farmland.geostats.variance import (
    NeighbourhoodSystems,
    kriging_variance,
    neighbourhood_systems,
)
from farmland.geostats.variogram import VariogramModel
from farmland.sampling import preposterior as pp

log = logging.getLogger(__name__)

__all__ = ["EffectSettings", "ExpectedEffect", "main_variogram", "parcel_kinds"]

INTERPOLATED, UNCLASSIFIED, FIXED = 0, 1, 2
#: an interpolated point whose misclassification today is below this is left as it is
#: (on the demo county such points hold 0.03 % of the expected misclassified area)
ACTIVE_LOSS = 1e-3
#: reach loss when the county has no interpolated land to learn it from (3 equal classes)
UNINFORMED_LOSS = 2 / 3
DEFAULT_RANGE_M = 1000.0
#: smallest error of one sample against its parcel's mean soil, as a coefficient of
#: variation: lab repeatability (10–15 % for Cd) and the parcel's own variation around
#: the composite sample; a fitted nugget can be near 0 (docs/decisions.md)
SAMPLE_ERROR_CV = 0.2
#: neighbour row of a neighbourhood with fewer than k samples (no sample)
SENTINEL = np.iinfo(np.int32).max


@dataclass(frozen=True)
class EffectSettings:
    """Variogram, neighbourhood, distance limit and decision rule of the classification.

    ``probabilities`` is ``"point"`` (the kriging variance with the nugget, the shipped
    setting) or ``"parcel"`` (nugget taken off), as in :class:`farmland.classify.risk.
    CellRule`; ``tau3``/``tau2`` are the decision thresholds (½/½ for the median rule);
    ``sample_error_cv`` the floor of a new sample's error (:attr:`sample_error`).
    """

    variogram: VariogramModel
    neighbours: int = 16
    max_distance: float = 1000.0
    tau3: float = 0.3
    tau2: float = 0.5
    probabilities: str = "point"
    sample_error_cv: float = SAMPLE_ERROR_CV

    @property
    def sample_error(self) -> float:
        """Error variance of one new sample against its parcel's soil: the variogram's
        nugget, at least ln(1 + CV²) of :attr:`sample_error_cv` (log-kriged metals)."""
        return max(self.variogram.nugget, float(np.log1p(self.sample_error_cv**2)))

    @classmethod
    def from_rules(cls, rules=None, *, variogram: VariogramModel | None = None,
                   variogram_range: float | None = None,
                   sample_error_cv: float | None = None) -> EffectSettings:
        """From a rules profile (:class:`farmland.rules.Rules` or its ``as_dict()``;
        default the shipped one), a variogram (default: exponential, no nugget, range
        ``variogram_range`` or 1 000 m) and the sample error's CV (default the rules'
        ``[points] error_cv``, the error of one value the classification takes; else
        :data:`SAMPLE_ERROR_CV`)."""
        if rules is None:
            from farmland.rules import load_rules
            rules = load_rules()
        interp = dict(rules["interpolation"])
        try:
            points = dict(rules["points"])
        except KeyError:  # a rules dict without the section (older manifests)
            points = {}
        risk = interp.get("decision", "median") == "risk"
        if variogram is None:
            rng = float(variogram_range) if variogram_range else DEFAULT_RANGE_M
            if not rng > 0:
                raise ValueError(f"variogram_range must be positive, got {variogram_range!r}")
            variogram = VariogramModel("exponential", 0.0, 1.0, rng)
        return cls(variogram=variogram, neighbours=int(interp.get("neighbours", 16)),
                   max_distance=float(interp.get("max_distance_m", 1000.0)),
                   tau3=float(interp.get("risk_class3", 0.5)) if risk else 0.5,
                   tau2=float(interp.get("risk_class2", 0.5)) if risk else 0.5,
                   probabilities=str(interp.get("probabilities", "point")),
                   sample_error_cv=float(
                       sample_error_cv if sample_error_cv is not None
                       else points.get("error_cv", SAMPLE_ERROR_CV)))

    def describe(self) -> str:
        return (f"kriging variance with {self.variogram.describe()}, k = {self.neighbours}, "
                f"sample error {self.sample_error:.3g}, "
                f"decision P(3) >= {self.tau3:g} / P(>=2) >= {self.tau2:g}")


def main_variogram(models: dict, parcels: pd.DataFrame) -> VariogramModel | None:
    """The variogram of the metal driving the most class-2/3 area (Cd when none) among a
    run's fitted models (the manifest's ``geostatistics.models``: variable → ``model``,
    ``nugget``, ``sill``, ``range_m``); ``None`` when none was fitted (an IDW run)."""
    if not models:
        return None
    worse = pd.to_numeric(parcels["final_class"], errors="coerce").fillna(0) >= 2
    drivers = parcels.loc[worse.to_numpy()]
    ranked = drivers.groupby("driving_element")["area_mu"].sum().sort_values(ascending=False)
    for element in [*ranked.index, "cd"]:
        info = models.get(element) or {}
        if info.get("model"):
            log.info("the kriging-variance update uses the fitted %s variogram (%s)", element,
                     info.get("text", info["model"]))
            return VariogramModel(info["model"], info["nugget"], info["sill"], info["range_m"])
    return None


def parcel_kinds(parcels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind (interpolated / unclassified / fixed), class probabilities (n, 3) and their
    basis (``p_class``, ``class_share``, ``unclassified``, ``none``) of every parcel."""
    n = len(parcels)
    probs = _columns(parcels, "p_class_")
    basis = np.where(np.isfinite(probs).all(axis=1), "p_class", "none").astype(object)
    shares = _columns(parcels, "share_")
    use_shares = (basis == "none") & np.isfinite(shares).all(axis=1)
    probs[use_shares], basis[use_shares] = shares[use_shares], "class_share"
    unclassified = (C.as_class(parcels["final_class"].to_numpy()).isna().to_numpy()
                    if "final_class" in parcels else np.zeros(n, dtype=bool))
    rule = (parcels["rule"].astype(str).to_numpy() if "rule" in parcels
            else np.full(n, "interpolated"))
    interpolated = (pd.Series(rule).str.startswith("interpolated").to_numpy()
                    & ~pd.Series(rule).str.contains(";crops:").to_numpy())
    kind = np.full(n, FIXED, dtype=np.int8)
    kind[interpolated & (basis != "none") & ~unclassified] = INTERPOLATED
    kind[unclassified] = UNCLASSIFIED
    basis[unclassified] = "unclassified"
    return kind, probs, basis


def _columns(parcels: pd.DataFrame, prefix: str) -> np.ndarray:
    cols = [f"{prefix}{c}" for c in C.CLASS_CODES]
    if not all(c in parcels for c in cols):
        return np.full((len(parcels), 3), np.nan)
    return np.array(parcels[cols].apply(pd.to_numeric, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan))


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
        self.geoms = np.asarray(parcels.geometry.values)
        self.xy, self.parcel = np.asarray(eval_xy, float), np.asarray(eval_parcel, np.int64)
        self.mu = np.asarray(eval_mu, float)
        self.points = np.unique(np.asarray(fixed_xy, float).reshape(-1, 2), axis=0)
        self.n_fixed = len(self.points)
        self.owned = np.full(len(parcels), np.nan)   # loss of a parcel holding a new sample
        self.reached = self.kind != UNCLASSIFIED
        self.var0 = self._today_variance()
        self.nu = self._noise_share()
        p = self.parcel
        self.today = np.where(self.kind[p] == INTERPOLATED,
                              pp.today_loss(self.z1[p], self.z2[p], s.tau3, s.tau2, self.nu), 0.0)
        self.reach_loss = self._reach_loss()
        self.active = np.flatnonzero((self.kind[p] == INTERPOLATED) & (self.today >= ACTIVE_LOSS)
                                     & np.isfinite(self.var0))
        self._active = np.zeros(len(self.xy), dtype=bool)   # mask of self.active
        self._active[self.active] = True
        self.var_now = self.var0.copy()
        self._owned_change = np.zeros(len(parcels))
        self._allocate()
        self._rebuild(self.active)
        self.loss = self._losses()

    # ------------------------------------------------------------------ set-up
    def _reach_loss(self) -> float:
        interp = self.kind[self.parcel] == INTERPOLATED
        if self.mu[interp].sum() <= 0:
            return UNINFORMED_LOSS
        return float(np.average(self.today[interp], weights=self.mu[interp]))

    def _noise_share(self) -> np.ndarray:
        """ν: the share of the probabilities' variance that is not in a parcel's true soil
        (the nugget: lab error and short-range variation, which a parcel mean averages
        out); 0 when the probabilities are already nugget-free (``"parcel"``)."""
        if self.settings.probabilities == "parcel":
            return np.zeros(len(self.xy))
        with np.errstate(invalid="ignore", divide="ignore"):
            nu = self.settings.variogram.nugget / self.var0
        return np.clip(np.nan_to_num(nu, nan=0.0, posinf=0.0), 0.0, 1.0 - 1e-9)

    def _today_variance(self) -> np.ndarray:
        """Kriging variance today at every interpolated evaluation point (NaN elsewhere)."""
        var = np.full(len(self.xy), np.nan)
        todo = self.kind[self.parcel] == INTERPOLATED
        if todo.any():
            var[todo] = self._variance_at(self.xy[todo])
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
        dist, idx = cKDTree(self.points).query(self.xy[rows], k=q)
        dist, idx = dist.reshape(len(rows), q), idx.reshape(len(rows), q)
        sets = np.full((len(rows), k), SENTINEL, dtype=np.int64)
        sets[:, :q] = np.sort(idx, axis=1)
        built = neighbourhood_systems(self.settings.variogram, self.points, self.xy[rows], sets)
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
        return NeighbourhoodSystems(self.points, self.xy[rows], self._sets[slots],
                                    self._inverse[slots], self._solution[slots],
                                    self.var_now[rows])

    # ------------------------------------------------------------------ losses
    def point_loss(self, rows: np.ndarray, var: np.ndarray) -> np.ndarray:
        """Expected misclassification of interpolated points ``rows`` at variance ``var``."""
        p = self.parcel[rows]
        return pp.expected_loss(self.z1[p], self.z2[p], self.ratio(var, rows),
                                self.settings.tau3, self.settings.tau2, self.nu[rows])

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
        nugget = self.settings.variogram.nugget
        used = self._used(var)
        with np.errstate(invalid="ignore", divide="ignore"):
            v_truth = np.where(used > 0, np.maximum(var - nugget, 0.0) / used, 1.0)
            v_noise = np.where(used > 0, self.settings.sample_error / used, 0.0)
        if what == "loss":
            return pp.sample_loss(self.z1[p], self.z2[p], v_truth, v_noise)
        return pp.sample_change(self.z1[p], self.z2[p], v_truth, v_noise, self.settings.tau3,
                                self.settings.tau2)

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
                                    self.settings.tau3, self.settings.tau2)
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
        before = self.total()
        left = self._own(xy, parcel, row)
        self.points = np.vstack([self.points, xy])
        near = self.active[np.hypot(*(self.xy[self.active] - xy).T) < self.radius[self.active]]
        self._rebuild(near)
        reached = self._reach(xy)
        owned = np.flatnonzero(self.parcel == parcel) if parcel >= 0 else near[:0]
        self.loss[near] = self.point_loss(near, self.var_now[near])
        self.loss[owned] = self._losses(owned)
        self.loss[reached] = self._losses(reached)
        return before - self.total(), np.union1d(near, left)

    def _own(self, xy: np.ndarray, parcel: int, row: int | None) -> np.ndarray:
        """A sample inside ``parcel``: the parcel takes its class. Returns the active
        points that leave the active set."""
        none = np.zeros(0, dtype=np.int64)
        if parcel < 0 or np.isfinite(self.owned[parcel]) or self.kind[parcel] == FIXED:
            return none
        if self.kind[parcel] == UNCLASSIFIED:
            self.owned[parcel] = self.reach_loss
            self.reached[parcel] = True
            return none
        var = (self.var0[[row]] if row is not None and np.isfinite(self.var0[row])
               else self._variance_at(xy[None, :]))
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

