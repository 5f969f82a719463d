"""Interpolate soil concentrations: IDW and local ordinary (log-)kriging.

Both estimators follow the scikit-learn / verde pattern: ``__init__`` stores
parameters only, :meth:`fit` validates the samples and sets attributes ending in
``_``, :meth:`predict` estimates at new locations. Coordinates are (n, 2) arrays
of metres in one projected (metric) CRS — the caller projects; values are mg/kg
(or any positive unit when ``log=True``).

Neither estimator is O(n²): neighbours come from a :class:`scipy.spatial.cKDTree`
and the kriging systems are solved by a compiled kernel, one Cholesky factorisation
per distinct neighbour set (:mod:`farmland.geostats.kriging`).

Samples sharing one location are averaged in :meth:`fit` (on the log scale when
``log=True``): duplicate locations make a kriging system singular, and an average
is what a single sample there would have measured.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from farmland.errors import InputError
from farmland.geostats.anisotropy import fit_anisotropy, kriging_space
from farmland.geostats.fallback import fallback_variance, working_moments
from farmland.geostats.kriging import (
    nearest_samples,
    neighbourhoods,
    ordinary_kriging,
    subset_search,
)
from farmland.geostats.located import located_samples
from farmland.geostats.probabilities import (  # noqa: F401  (re-exported: part of this API)
    _normal_exceedance,
    class_probabilities,
    exceedance_probability,
)
from farmland.geostats.trend import TRENDS, residuals
from farmland.geostats.variogram import VariogramFitError, VariogramModel, fit_sample_variogram

logger = logging.getLogger(__name__)

#: ``anisotropy`` settings of :class:`LocalKriging` (``[interpolation] anisotropy``)
ANISOTROPY = ("none", "fitted")

# --------------------------------------------------------------------------- checks


def _as_coords(coords: np.ndarray, *, what: str = "coordinates") -> np.ndarray:
    xy = np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InputError(
            f"{what} must be an (n, 2) array of x/y metres",
            value=xy.shape,
            fix="pass np.column_stack([x, y]) in a projected CRS",
        )
    bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
    if len(bad):
        raise InputError(
            f"{what} must be finite numbers (metres)",
            row=int(bad[0]),
            value=xy[bad[0]].tolist(),
            more=len(bad) - 1,
            fix="drop samples without coordinates before interpolating",
        )
    return xy


def _check_samples(
    coords: np.ndarray, values: np.ndarray, *, log: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate training samples; return float arrays (values on the working scale)."""
    xy = _as_coords(coords)
    z = np.asarray(values, dtype=float).ravel()
    if len(z) != len(xy):
        raise InputError(
            f"{len(xy)} coordinates but {len(z)} values", fix="pass one value per sample"
        )
    if len(z) < 2:
        raise InputError("interpolation needs at least 2 samples", value=len(z))
    bad = np.flatnonzero(~np.isfinite(z) | ((z <= 0) if log else False))
    if len(bad):
        need = "finite values > 0 (log scale)" if log else "finite values"
        raise InputError(
            f"interpolation needs {need}",
            row=int(bad[0]),
            value=float(z[bad[0]]),
            more=len(bad) - 1,
            fix="drop missing values and substitute below-detection values (e.g. half the "
            "detection limit) before interpolating" + ("; or use log=False" if log else ""),
        )
    return xy, (np.log(z) if log else z)


# --------------------------------------------------------------------------- IDW


class IDW:
    """Inverse-distance weighting over the k nearest samples.

    Parameters
    ----------
    k
        Number of nearest samples used at each location.
    power
        Weights are 1 / dᵖ (d in metres).
    max_distance
        Only samples within this many metres count; a location with none gets NaN.
    log
        Interpolate ln(value) and return exp of the result (a weighted geometric
        mean; no bias correction, IDW has no variance to correct with).
    """

    def __init__(
        self, k: int = 12, power: float = 2.0, max_distance: float | None = None, log: bool = False
    ):
        self.k = k
        self.power = power
        self.max_distance = max_distance
        self.log = log

    def get_params(self) -> dict[str, object]:
        """Constructor parameters (to build an unfitted copy)."""
        return {
            "k": self.k,
            "power": self.power,
            "max_distance": self.max_distance,
            "log": self.log,
        }

    def fit(self, coords: np.ndarray, values: np.ndarray) -> IDW:
        """Store the samples: (n, 2) metres and (n,) values; duplicates are averaged."""
        xy, z = _check_samples(coords, values, log=self.log)
        self.coords_, self.values_, self.sample_location_, self.tree_ = located_samples(xy, z)
        return self

    def _weighted(self, dist: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """IDW on the working scale; a zero distance takes that sample's value."""
        found = np.isfinite(dist)
        vals = self.values_[np.where(found, idx, 0)]
        with np.errstate(divide="ignore"):
            w = np.where(found, 1.0 / dist**self.power, 0.0)
        exact = dist == 0
        w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), w)
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            est = (w * vals).sum(axis=1) / total
        return np.where(total > 0, est, np.nan)

    def _back(self, est: np.ndarray) -> np.ndarray:
        return np.exp(est) if self.log else est

    def predict(self, coords: np.ndarray) -> np.ndarray:
        """Estimates at (m, 2) locations (metres), original units; NaN where none is in reach."""
        targets = _as_coords(coords, what="prediction coordinates")
        dist, idx = nearest_samples(self.tree_, targets, self.k, self.max_distance)
        return self._back(self._weighted(dist, idx))

    def leave_one_out(self) -> dict[str, np.ndarray]:
        """Estimate at every training sample from the others (its location's samples left out).

        Returns ``{"predicted"}`` (original units) aligned with the samples given to fit.
        """
        loc = self.sample_location_
        dist, idx = nearest_samples(
            self.tree_,
            self.coords_,
            self.k,
            self.max_distance,
            exclude=np.arange(len(self.coords_)),
        )
        return {"predicted": self._back(self._weighted(dist, idx))[loc]}

    def predict_distribution(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Not available: IDW gives no estimation variance."""
        raise NotImplementedError("IDW gives no distribution; use LocalKriging for probabilities")

    def exceedance_probability(
        self, coords: np.ndarray, threshold: float | np.ndarray
    ) -> np.ndarray:
        """Not available: IDW gives no estimation variance."""
        raise NotImplementedError("IDW gives no distribution; use LocalKriging for probabilities")


# --------------------------------------------------------------------------- local kriging


class LocalKriging:
    """Ordinary kriging in a moving neighbourhood, by default of ln(value).

    Parameters
    ----------
    k
        Number of nearest samples in each kriging system.
    search_radius
        Only samples within this many metres are used; a location with none gets NaN.
    model
        Variogram model: ``"auto"``, ``"spherical"``, ``"exponential"``, ``"gaussian"``.
    log
        Krige ln(value) (lognormal kriging) and back-transform, see :meth:`predict`.
    nugget
        Fix the variogram nugget (working-scale units²); ``None`` fits it.
    variogram
        Use this :class:`~farmland.geostats.variogram.VariogramModel` instead of fitting one.
    seed
        Seed of the variogram's pair subsample and permutation test.
    structure
        The test for spatial structure: ``"several"`` distances or ``"one"`` (before
        2026-12-04), see :func:`~farmland.geostats.variogram.fit_sample_variogram`.
    anisotropy
        ``"none"`` (an isotropic variogram), ``"fitted"``: look for a direction along
        which the values vary more slowly and keep it where leave-one-out kriging is
        better (:func:`~farmland.geostats.anisotropy.fit_anisotropy`), or a ``(ratio,
        azimuth)`` pair: fit the variogram in that anisotropy's kriging space (the refit
        rule's trial fit of an earlier run's variogram). A given ``variogram`` keeps its
        own anisotropy.
    trend
        ``"none"``: the variogram is fitted to the (log) values; ``"linear"``: to their
        residuals from a least-squares plane (:mod:`farmland.geostats.trend`). Either way
        the values themselves are kriged (ordinary kriging). A given ``variogram`` keeps
        its own.

    Coordinates passed to the methods are metres; ``coords_`` and ``tree_`` are in the
    variogram's kriging space (:meth:`space`), the same metres without anisotropy.

    Attributes
    ----------
    variogram_ : VariogramModel or None
        Fitted (or given) model; ``None`` after a fallback.
    tree_ : cKDTree
        KD-tree of the (de-duplicated) sample locations.
    fallback_ : str or None
        Why the variogram could not be fitted; then :meth:`predict` uses IDW
        (``idw_``) and :meth:`predict_distribution` returns NaN arrays.
    """

    def __init__(
        self,
        k: int = 16,
        search_radius: float | None = None,
        model: str = "auto",
        log: bool = True,
        nugget: float | None = None,
        variogram: VariogramModel | None = None,
        seed: int = 0,
        structure: str = "several",
        anisotropy: str | tuple[float, float] = "none",
        trend: str = "none",
    ):
        if trend not in TRENDS:
            raise ValueError(f"trend must be one of {TRENDS}, got {trend!r}")
        self.trend = trend
        if not (anisotropy in ANISOTROPY or (isinstance(anisotropy, tuple)
                                              and len(anisotropy) == 2)):
            raise ValueError(f"anisotropy must be one of {ANISOTROPY} or (ratio, azimuth), "
                             f"got {anisotropy!r}")
        self.anisotropy = anisotropy
        self.k = k
        self.search_radius = search_radius
        self.model = model
        self.log = log
        self.nugget = nugget
        self.variogram = variogram
        self.seed = seed
        self.structure = structure

    def get_params(self) -> dict[str, object]:
        """Constructor parameters (to build an unfitted copy)."""
        return {
            name: getattr(self, name)
            for name in ("k", "search_radius", "model", "log", "nugget", "variogram", "seed",
                         "structure", "anisotropy", "trend")
        }

    def fit(self, coords: np.ndarray, values: np.ndarray) -> LocalKriging:
        """Validate the samples ((n, 2) metres, (n,) values), average duplicates, fit the variogram.

        When no variogram can be fitted (fewer than 30 samples, pure nugget, failed
        fit) a warning is logged, ``fallback_`` holds the reason and IDW takes over.
        """
        xy, z = _check_samples(coords, values, log=self.log)
        given = self.variogram
        fixed = self.anisotropy if isinstance(self.anisotropy, tuple) else (1.0, 0.0)
        space = kriging_space(xy, *fixed) if given is None else given.kriging_space(xy)
        self.coords_, self.values_, self.sample_location_, self.tree_ = located_samples(space, z)
        self.fallback_, self.idw_, self._last, self._shared = None, None, None, None
        self.variogram_ = given
        if self.variogram_ is None:
            try:
                self.variogram_ = replace(fit_sample_variogram(
                    self.coords_, residuals(self.coords_, self.values_, self.trend),
                    model=self.model, nugget=self.nugget, seed=self.seed,
                    structure=self.structure), ratio=float(fixed[0]),
                    azimuth=float(fixed[1]), trend=self.trend)
            except VariogramFitError as exc:
                self.fallback_ = str(exc)
                logger.warning("kriging falls back to IDW: %s", exc)
                self.idw_ = IDW(k=self.k, max_distance=self.search_radius, log=self.log)
                self.idw_.fit(xy, np.exp(z) if self.log else z)
                if fixed != (1.0, 0.0):   # no variogram, no kriging space: metres
                    self.coords_, self.values_, self.sample_location_, self.tree_ = (
                        located_samples(xy, z))
            else:
                if self.anisotropy == "fitted":
                    self._fit_anisotropy(xy, z)
        return self

    def _fit_anisotropy(self, xy: np.ndarray, z: np.ndarray) -> None:
        iso = self.variogram_
        self.variogram_ = fit_anisotropy(
            self.coords_, self.values_, iso, k=self.k, seed=self.seed,
            fit=lambda space, values: replace(fit_sample_variogram(
                space, residuals(space, values, self.trend), model=iso.name,
                nugget=self.nugget, seed=self.seed, structure=None), trend=self.trend))
        if self.variogram_ is not iso:   # the samples in the new space
            self.coords_, self.values_, self.sample_location_, self.tree_ = located_samples(
                self.variogram_.kriging_space(xy), z)

    def space(self, coords: np.ndarray) -> np.ndarray:
        """(m, 2) metres in the kriging space of ``coords_`` and ``tree_`` (the variogram's,
        :meth:`~farmland.geostats.variogram.VariogramModel.kriging_space`)."""
        model = getattr(self, "variogram_", None)
        return coords if model is None else model.kriging_space(coords)

    def _moments(
        self, targets: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """Kriging mean, variance and Lagrange multiplier at targets.

        The last result is kept (keyed by a hash of the targets), so ``predict``
        then ``predict_distribution`` on the same grid solves the systems once.
        Neighbours searched by :func:`share_neighbours` for these targets are used.
        """
        key = _targets_key(targets, exclude)
        cached = getattr(self, "_last", None)
        if cached is not None and cached[0] == key:
            return tuple(a.copy() for a in cached[1])
        if self.fallback_ is not None:
            return tuple(np.full((3, len(targets)), np.nan))
        shared = getattr(self, "_shared", None)
        out = ordinary_kriging(
            self.variogram_,
            self.coords_,
            self.values_,
            self.tree_,
            targets,
            k=self.k,
            radius=self.search_radius,
            exclude=exclude,
            neighbours=shared[1] if shared is not None and shared[0] == key else None,
        )
        self._last = (key, tuple(out.copy()))
        return tuple(out)

    def _back(self, mean: np.ndarray, var: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Original-scale estimate; lognormal OK back-transform exp(m + σ²/2 + μ) when log."""
        return np.exp(mean + 0.5 * var + mu) if self.log else mean

    def predict(self, coords: np.ndarray) -> np.ndarray:
        """Estimates at (m, 2) locations (metres) on the original scale (mg/kg).

        With ``log=True`` the back-transform is the unbiased lognormal ordinary
        kriging estimator exp(m + σ²/2 + μ): m and σ² are the kriging mean and
        variance of ln Z and μ the Lagrange multiplier of the covariance-form
        system (μ = −ψ of the variogram form: Journel's exp(m + σ²/2 − ψ)). It
        estimates the mean of Z; the median is exp(m). NaN where no sample is in
        reach; after a fallback the IDW estimate.
        """
        targets = _as_coords(coords, what="prediction coordinates")
        if self.fallback_ is not None:
            return self.idw_.predict(targets)
        return self._back(*self._moments(self.space(targets)))

    def predict_distribution(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kriging mean and variance at (m, 2) locations (metres).

        On the log scale (ln mg/kg, (ln mg/kg)²) when ``log=True``, else on the
        original scale. NaN arrays after a fallback (see ``fallback_``) and where
        no sample is in reach.
        """
        mean, var, _ = self._moments(self.space(_as_coords(coords,
                                                           what="prediction coordinates")))
        return mean, var

    def exceedance_probability(
        self, coords: np.ndarray, threshold: float | np.ndarray
    ) -> np.ndarray:
        """P(Z > threshold) at (m, 2) locations; threshold in original units (scalar or (m,)).

        Log scale: lognormal with the kriging mean and variance of ln Z. Original
        scale (``log=False``): normal. NaN after a fallback.
        """
        mean, var = self.predict_distribution(coords)
        if self.log:
            return exceedance_probability(mean, var, threshold)
        return _normal_exceedance(mean, var, np.asarray(threshold, dtype=float))

    def leave_one_out(self) -> dict[str, np.ndarray]:
        """Kriging at every training sample from the others (its location left out).

        Uses the variogram fitted on all samples. Returns ``predicted`` (original
        units), ``mean`` and ``variance`` (working scale), aligned with the samples
        given to :meth:`fit`. After a fallback: the IDW's leave-one-out predictions, their
        working-scale value as ``mean`` and the fallback's error variance
        (:func:`~farmland.geostats.fallback.fallback_variance`) as ``variance``, so the
        leave-one-out rule screens a variable without spatial structure too.
        """
        loc = self.sample_location_
        if self.fallback_ is not None:
            predicted = np.asarray(self.idw_.leave_one_out()["predicted"], dtype=float)
            mean, variance = working_moments(self.idw_, predicted,
                                             fallback_variance(self, predicted))
            return {"predicted": predicted, "mean": mean, "variance": variance}
        moments = self._moments(self.coords_, exclude=np.arange(len(self.coords_)))
        return {
            "predicted": self._back(*moments)[loc],
            "mean": moments[0][loc],
            "variance": moments[1][loc],
        }


def _targets_key(targets: np.ndarray, exclude: np.ndarray | None) -> tuple[bytes, tuple]:
    key = hashlib.blake2b(targets.tobytes(), digest_size=16)
    key.update(b"" if exclude is None else exclude.tobytes())
    return key.digest(), targets.shape


def share_neighbours(estimators: Iterable[object], coords: np.ndarray) -> int:
    """Search the neighbours of ``coords`` once per group of estimators that share samples.

    Fitted :class:`LocalKriging` estimators (no fallback) with the same ``k`` and
    ``search_radius`` whose samples sit at the same locations (pH and the metals of a
    survey) share one search (:func:`farmland.geostats.kriging.neighbourhoods`); when
    some lack a few locations (values left out as outliers), one search of their union
    serves all (:func:`~farmland.geostats.kriging.subset_search`). Their ``predict`` and
    ``predict_distribution`` at ``coords`` use it; the results are those of separate
    searches.

    Parameters
    ----------
    estimators
        Fitted estimators of any kind.
    coords
        (m, 2) prediction locations, metres.

    Returns
    -------
    int
        The number of searches saved.
    """
    metres, groups = _as_coords(coords, what="prediction coordinates"), {}
    for est in estimators:
        if isinstance(est, LocalKriging) and getattr(est, "fallback_", "") is None:
            site = (hashlib.blake2b(est.coords_.tobytes(), digest_size=16).digest(),
                    est.coords_.shape)
            model = est.variogram_   # estimators of one kriging space only
            groups.setdefault((est.k, est.search_radius, model.ratio, model.azimuth),
                              {}).setdefault(site, []).append(est)
    saved = 0
    for (k, radius, *_), sites in groups.items():
        if sum(map(len, sites.values())) < 2:
            continue
        targets = next(iter(sites.values()))[0].space(metres)
        key = _targets_key(targets, None)
        union = len(sites) > 1 and subset_search([m[0].coords_ for m in sites.values()],
                                                 targets, k, radius)
        for members, found in zip(sites.values(), union or [None] * len(sites), strict=True):
            if found is None and len(members) > 1:
                found = neighbourhoods(members[0].tree_, targets, k, radius)
            for est in members if found is not None else ():
                est._shared = (key, found)
        saved += sum(map(len, sites.values())) - (1 if union else len(sites))
    return saved
