"""Empirical variograms and variogram-model fitting.

Coordinates are metres in a projected (metric) CRS; lags and ranges are metres.
Values are whatever the caller passes: :class:`farmland.geostats.estimators.LocalKriging`
passes natural-log concentrations (ln mg/kg), so nugget and sill are then in
(ln mg/kg)².

The three isotropic models share one convention: ``range_`` is the distance at
which the structured part reaches its sill (spherical) or 95 % of it (exponential
and Gaussian, the "practical" or "effective" range)::

    spherical    γ(h) = c0 + c·(1.5 h/a − 0.5 (h/a)³)   for h < a,  c0 + c beyond
    exponential  γ(h) = c0 + c·(1 − exp(−3 h/a))
    gaussian     γ(h) = c0 + c·(1 − exp(−3 (h/a)²))

with γ(0) = 0, nugget c0, partial sill c, total sill c0 + c and range a. PyKrige's
spherical and exponential models use the same parameters; GSTools' ``len_scale``
is a for the spherical model and a/3 for the exponential one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

from farmland.errors import FarmlandError
from farmland.geostats.anisotropy import kriging_space
from farmland.geostats.structure import (  # noqa: F401  (re-exported: part of this API)
    STRUCTURE_PERMUTATIONS,
    structure_lags,
    structure_p_value,
)
from farmland.geostats.trend import TRENDS

logger = logging.getLogger(__name__)

#: fewer samples than this: no variogram is fitted (kriging falls back to IDW)
MIN_SAMPLES = 30
#: partial sill below this share of the total sill: treated as pure nugget
MIN_STRUCTURE_SHARE = 0.05
#: at least this many lag classes must hold pairs
MIN_LAGS = 4
#: near-neighbour pairs added per sample when pairs are subsampled
NEAR_PAIRS_PER_SAMPLE = 8
#: smallest fitted Gaussian nugget, as a share of the largest semivariance
GAUSSIAN_NUGGET_FLOOR = 1e-3
#: permutation-test level below which spatial structure is accepted
STRUCTURE_SIGNIFICANCE = 0.05
#: the structure tests: "several" distances (:func:`structure_lags`), or "one", a third of
#: ``max_lag`` with 99 relabellings, the test before 2026-12-04 (to reproduce older runs)
STRUCTURE_TESTS = ("several", "one")


class VariogramFitError(FarmlandError):
    """No usable variogram model: too few samples, no spatial structure, or the fit failed."""


def _spherical(h: np.ndarray, a: float) -> np.ndarray:
    x = np.minimum(h / a, 1.0)
    return x * (1.5 - 0.5 * x * x)


def _exponential(h: np.ndarray, a: float) -> np.ndarray:
    return 1.0 - np.exp(-3.0 * h / a)


def _gaussian(h: np.ndarray, a: float) -> np.ndarray:
    return 1.0 - np.exp(-3.0 * (h / a) ** 2)


#: model name -> normalised structure function s(h, range) rising from 0 to 1
MODEL_SHAPES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "spherical": _spherical,
    "exponential": _exponential,
    "gaussian": _gaussian,
}


@dataclass(frozen=True)
class VariogramModel:
    """A variogram model γ(h) = nugget + (sill − nugget) · s(h / range_).

    Parameters
    ----------
    name
        ``"spherical"``, ``"exponential"`` or ``"gaussian"``.
    nugget
        γ just above distance 0 (measurement error and micro-scale variation), ≥ 0.
    sill
        Total sill (nugget + partial sill), the variance of the values far apart.
    range_
        Range in metres (practical range for exponential and Gaussian, see module);
        along ``azimuth`` when anisotropic.
    ratio, azimuth
        Geometric anisotropy (:mod:`farmland.geostats.anisotropy`): the range across the
        major axis (``azimuth``, degrees clockwise from grid north) is ``range_ / ratio``;
        γ is read at distances of :meth:`kriging_space`. ``ratio`` 1: isotropic.
    trend
        ``"none"``: fitted to the values; ``"linear"``: to their residuals from a
        least-squares plane (:mod:`farmland.geostats.trend`). Kriging uses the model the
        same way either way (ordinary kriging of the values).
    """

    name: str
    nugget: float
    sill: float
    range_: float
    ratio: float = 1.0
    azimuth: float = 0.0
    trend: str = "none"

    def __post_init__(self) -> None:
        if self.name not in MODEL_SHAPES:
            raise ValueError(
                f"unknown variogram model {self.name!r}; use one of {list(MODEL_SHAPES)}"
            )
        if not (self.nugget >= 0 and self.sill >= self.nugget and self.range_ > 0
                and self.ratio >= 1 and 0 <= self.azimuth < 180 and self.trend in TRENDS):
            raise ValueError(f"variogram needs nugget >= 0, sill >= nugget, range > 0, "
                             f"ratio >= 1, 0 <= azimuth < 180 and a trend in {TRENDS}, "
                             f"got {self!r}")

    @classmethod
    def from_summary(cls, info: dict) -> VariogramModel:
        """The model a manifest's ``geostatistics.models`` entry describes
        (:func:`farmland.geostats.quality.model_summary`; isotropic before anisotropy)."""
        return cls(info["model"], float(info["nugget"]), float(info["sill"]),
                   float(info["range_m"]), float(info.get("anisotropy_ratio", 1.0)),
                   float(info.get("azimuth_deg", 0.0)), str(info.get("trend", "none")))

    def kriging_space(self, xy: np.ndarray) -> np.ndarray:
        """Coordinates (metres) where this variogram is isotropic (unchanged without
        anisotropy; :func:`farmland.geostats.anisotropy.kriging_space`)."""
        return kriging_space(xy, self.ratio, self.azimuth)

    @property
    def partial_sill(self) -> float:
        """Sill of the spatially structured part (sill − nugget)."""
        return self.sill - self.nugget

    def __call__(self, h: np.ndarray | float) -> np.ndarray:
        """Semivariance γ(h) at distances ``h`` (metres); γ(0) = 0."""
        h = np.asarray(h, dtype=float)
        gamma = self.nugget + self.partial_sill * MODEL_SHAPES[self.name](h, self.range_)
        return np.where(h > 0, gamma, 0.0)

    def covariance(self, h: np.ndarray | float) -> np.ndarray:
        """Covariance C(h) = sill − γ(h); C(0) = sill."""
        return self.sill - self(h)

    def describe(self) -> str:
        """One line for reports, e.g. ``"spherical: nugget 0.05, sill 0.42, range 3 200 m"``."""
        metres = f"{self.range_:,.0f}".replace(",", " ")
        text = f"{self.name}: nugget {self.nugget:.3g}, sill {self.sill:.3g}, range {metres} m"
        if self.ratio != 1.0:
            text = f"{text} along azimuth {self.azimuth:g}°, {self.ratio:g}× shorter across"
        return text + (" (residuals of a linear trend)" if self.trend == "linear" else "")


class EmpiricalVariogram(NamedTuple):
    """Binned semivariances: mean pair distance, mean ½(zᵢ − zⱼ)², pair count per lag."""

    lags: np.ndarray
    gamma: np.ndarray
    counts: np.ndarray


def default_max_lag(coords: np.ndarray) -> float:
    """Half the diagonal of the samples' bounding box (metres)."""
    span = np.ptp(np.asarray(coords, dtype=float), axis=0)
    return 0.5 * float(np.hypot(span[0], span[1]))


def _sample_pairs(coords: np.ndarray, max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs when there are at most ``max_pairs``; else random pairs plus near neighbours.

    Uniform random pairs cover every lag in proportion; the near-neighbour pairs
    (each sample with its nearest few) make the short lags, which drive the nugget
    and a local kriging neighbourhood, well populated. Both are chosen from the
    locations only, never the values, so every lag class stays an unbiased
    estimate under stationarity.
    """
    n = len(coords)
    if n * (n - 1) // 2 <= max_pairs:
        return np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    half = max_pairs // 2
    i, j = rng.integers(0, n, size=(2, half))
    _, near = cKDTree(coords).query(coords, k=min(NEAR_PAIRS_PER_SAMPLE + 1, n), workers=-1)
    ni = np.repeat(np.arange(n), near.shape[1] - 1)
    nj = near[:, 1:].ravel()
    lo, hi = np.minimum(ni, nj), np.maximum(ni, nj)
    near_pairs = np.sort(lo.astype(np.int64) * n + hi)  # np.unique's values, sorted ...
    near_pairs = near_pairs[np.r_[True, near_pairs[1:] != near_pairs[:-1]]]  # ... 100x sooner
    if len(near_pairs) > half:
        near_pairs = rng.choice(near_pairs, size=half, replace=False)
    i = np.concatenate([i, near_pairs // n])
    j = np.concatenate([j, near_pairs % n])
    keep = i != j
    return i[keep], j[keep]


class _Pairs(NamedTuple):
    """Sample pairs (index arrays) and their distances (metres), all within the largest lag."""

    i: np.ndarray
    j: np.ndarray
    dist: np.ndarray


def _pairs_within(coords: np.ndarray, max_lag: float, max_pairs: int, seed: int) -> _Pairs:
    if not max_lag > 0:
        raise VariogramFitError("all samples share one location; no variogram can be estimated")
    i, j = _sample_pairs(coords, max_pairs, seed)
    dist = np.hypot(*(coords[i] - coords[j]).T)
    keep = dist <= max_lag
    return _Pairs(i[keep], j[keep], dist[keep])


def _bin(pairs: _Pairs, values: np.ndarray, max_lag: float, n_lags: int) -> EmpiricalVariogram:
    half_sq = 0.5 * (values[pairs.i] - values[pairs.j]) ** 2
    lag_class = np.minimum((pairs.dist / max_lag * n_lags).astype(int), n_lags - 1)
    counts = np.bincount(lag_class, minlength=n_lags)
    filled = counts > 0
    sums = np.bincount(lag_class, weights=half_sq, minlength=n_lags)[filled]
    dist_sums = np.bincount(lag_class, weights=pairs.dist, minlength=n_lags)[filled]
    return EmpiricalVariogram(dist_sums / counts[filled], sums / counts[filled], counts[filled])


def empirical_variogram(
    coords: np.ndarray,
    values: np.ndarray,
    *,
    n_lags: int = 15,
    max_lag: float | None = None,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> EmpiricalVariogram:
    """Bin ½(zᵢ − zⱼ)² by pair distance (Matheron's estimator).

    Parameters
    ----------
    coords
        (n, 2) sample coordinates in metres (projected CRS).
    values
        (n,) values; pass log-values for log-kriging.
    n_lags
        Number of equal-width distance classes between 0 and ``max_lag``.
    max_lag
        Largest distance considered (metres); default half the bounding-box diagonal.
    max_pairs
        Above this many pairs, a seeded random subset of pairs is used (never all
        pairs of a large sample set), see :func:`_sample_pairs`.
    seed
        Seed of the pair subsample.

    Returns
    -------
    EmpiricalVariogram
        Only lag classes that hold at least one pair; ``lags`` is the mean distance
        of the pairs in each class (metres).
    """
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float)
    max_lag = default_max_lag(coords) if max_lag is None else float(max_lag)
    return _bin(_pairs_within(coords, max_lag, max_pairs, seed), values, max_lag, n_lags)


#: significant digits kept of a fitted nugget, sill and range (:func:`_significant`)
FIT_DIGITS = 5


def _weighted_sse(
    model: VariogramModel, lags: np.ndarray, gamma: np.ndarray, counts: np.ndarray
) -> float:
    """Cressie's criterion Σ N_h (γ̂ − γ)² / γ²."""
    fitted = np.maximum(model(lags), 1e-12 * gamma.max())
    return float(np.sum(counts * (gamma - fitted) ** 2 / fitted**2))


def _significant(value: float) -> float:
    """``value`` to :data:`FIT_DIGITS` significant digits: what the fit can tell apart.
    The least-squares solver stops at a relative tolerance near 1e-8, and below that its
    last digits follow the machine's BLAS kernels (two x86 machines gave 1e-9 apart);
    kriged probabilities and the planner's greedy picks would carry that noise."""
    return float(f"{float(value):.{FIT_DIGITS - 1}e}")


def _fit_one(
    name: str, lags: np.ndarray, gamma: np.ndarray, counts: np.ndarray, nugget: float | None
) -> VariogramModel:
    """Weighted least squares for one model: three starting ranges, Cressie weights redone once."""
    shape, top, far = MODEL_SHAPES[name], float(gamma.max()), float(lags.max())

    def curve(h: np.ndarray, *p: float) -> np.ndarray:
        c0, c, a = (nugget, *p) if nugget is not None else p
        return c0 + c * shape(h, a)

    lower = [1e-9 * top, 1e-3 * far]
    upper = [10.0 * top, 5.0 * far]
    # a Gaussian model needs a small nugget to keep kriging systems well-conditioned
    floor = GAUSSIAN_NUGGET_FLOOR * top if name == "gaussian" else 0.0
    if nugget is None:
        lower, upper = [floor, *lower], [top, *upper]
    best: tuple[float, VariogramModel] | None = None
    for start in (0.2, 0.5, 1.0):
        c0 = min(max(0.5 * float(gamma[0]), floor), top) if nugget is None else nugget
        p0 = [max(top - c0, 2e-9 * top), start * far]
        p0 = [c0, *p0] if nugget is None else p0
        sigma = np.maximum(gamma, 1e-6 * top) / np.sqrt(counts)
        for _ in range(2):  # second pass: Cressie weights from the fitted model
            p0, _cov = curve_fit(curve, lags, gamma, p0=p0, sigma=sigma, bounds=(lower, upper))
            sigma = np.maximum(curve(lags, *p0), 1e-6 * top) / np.sqrt(counts)
        c0, c, a = (nugget, *p0) if nugget is not None else p0
        model = VariogramModel(name, float(c0) if nugget is not None else _significant(c0),
                               _significant(c0 + c), _significant(a))
        sse = _weighted_sse(model, lags, gamma, counts)
        if best is None or sse < best[0]:
            best = (sse, model)
    assert best is not None
    return best[1]


def fit_variogram(
    lags: np.ndarray,
    gamma: np.ndarray,
    counts: np.ndarray,
    *,
    model: str = "auto",
    nugget: float | None = None,
) -> VariogramModel:
    """Fit a variogram model to an empirical variogram by weighted least squares.

    Weights are Cressie's N_h / γ(h)² (``scipy.optimize.curve_fit`` with
    σ = γ/√N_h, re-weighted once with the fitted γ). Bounds: nugget ≥ 0, partial
    sill > 0, range > 0 (at most 5 × the largest lag).

    Parameters
    ----------
    lags, gamma, counts
        Output of :func:`empirical_variogram` (metres, value units², pairs).
    model
        ``"spherical"``, ``"exponential"``, ``"gaussian"`` or ``"auto"`` (all three,
        keep the lowest weighted SSE).
    nugget
        Fix the nugget at this value; ``None`` fits it.

    Returns
    -------
    VariogramModel

    Raises
    ------
    VariogramFitError
        Fewer than 4 lag classes with pairs, values without variation, every fit
        failed, or the best model is pure nugget: partial sill under 5 % of the
        sill, or covariance at the first lag under 5 % of the sill (the structure
        ends before the shortest sampled distance).
    """
    lags, gamma, counts = (np.asarray(a, dtype=float) for a in (lags, gamma, counts))
    ok = (counts > 0) & np.isfinite(gamma) & np.isfinite(lags)
    lags, gamma, counts = lags[ok], gamma[ok], counts[ok]
    if len(lags) < MIN_LAGS:
        raise VariogramFitError(
            f"only {len(lags)} distance classes hold sample pairs (need {MIN_LAGS}); "
            "add samples or use IDW"
        )
    if not gamma.max() > 0:
        raise VariogramFitError("the values do not vary; nothing to krige")
    names = list(MODEL_SHAPES) if model == "auto" else [model]
    if any(n not in MODEL_SHAPES for n in names):
        raise ValueError(f"model must be 'auto' or one of {list(MODEL_SHAPES)}, got {model!r}")
    fits = []
    for name in names:
        try:
            fits.append(_fit_one(name, lags, gamma, counts, nugget))
        except (RuntimeError, ValueError) as exc:
            logger.debug("variogram model %s did not fit: %s", name, exc)
    if not fits:
        raise VariogramFitError(f"no variogram model ({', '.join(names)}) could be fitted")
    best = min(fits, key=lambda m: _weighted_sse(m, lags, gamma, counts))
    _check_structure(best, float(lags.min()))
    logger.info("variogram fitted: %s", best.describe())
    return best


def _check_structure(model: VariogramModel, first_lag: float) -> None:
    """Raise when the model is (practically) pure nugget."""
    if model.partial_sill < MIN_STRUCTURE_SHARE * model.sill:
        raise VariogramFitError(
            f"pure nugget: no spatial structure ({model.describe()}; partial sill under "
            f"{MIN_STRUCTURE_SHARE:.0%} of the sill)"
        )
    remaining = float(model.covariance(first_lag))
    if remaining < MIN_STRUCTURE_SHARE * model.sill:
        raise VariogramFitError(
            f"pure nugget at the sampled distances: {model.describe()} leaves under "
            f"{MIN_STRUCTURE_SHARE:.0%} of the sill correlated at the first lag ({first_lag:.0f} m)"
        )


def fit_sample_variogram(
    coords: np.ndarray,
    values: np.ndarray,
    *,
    model: str = "auto",
    nugget: float | None = None,
    n_lags: int = 15,
    max_lag: float | None = None,
    max_pairs: int = 200_000,
    seed: int = 0,
    min_samples: int = MIN_SAMPLES,
    significance: float = STRUCTURE_SIGNIFICANCE,
    structure: str | None = "several",
) -> VariogramModel:
    """Empirical variogram of ``values`` at ``coords`` (metres) and the fitted model.

    Besides the checks of :func:`fit_variogram`, tests for spatial structure with
    :func:`structure_p_value` at the distances of :func:`structure_lags`: a fitted
    curve through the noise of a pure-nugget variogram often looks structured.
    ``structure="one"`` tests at a third of ``max_lag`` only, with 99 relabellings: the
    test of farmland before 2026-12-04, which missed ranges shorter than that distance
    (:data:`STRUCTURE_TESTS`; ``[interpolation] structure_test`` in the rules).

    Raises
    ------
    VariogramFitError
        Fewer than ``min_samples`` samples (default 30), no significant spatial
        structure (p > ``significance``, default 0.05), or no model fits.
    """
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float)
    if len(values) < min_samples:
        raise VariogramFitError(
            f"only {len(values)} samples; a variogram needs at least {min_samples}"
        )
    max_lag = default_max_lag(coords) if max_lag is None else float(max_lag)
    pairs = _pairs_within(coords, max_lag, max_pairs, seed)
    emp = _bin(pairs, values, max_lag, n_lags)
    fitted = fit_variogram(emp.lags, emp.gamma, emp.counts, model=model, nugget=nugget)
    if structure is None:  # no test (the anisotropy search refits a tested variogram)
        return fitted
    if structure not in STRUCTURE_TESTS:
        raise ValueError(f"structure must be one of {STRUCTURE_TESTS}, got {structure!r}")
    p_value = (structure_p_value(pairs, values, short_lags=structure_lags(coords, max_lag),
                                 seed=seed) if structure == "several" else
               structure_p_value(pairs, values, short_lags=max_lag / 3, n_permutations=99,
                                 seed=seed))
    if p_value > significance:
        raise VariogramFitError(
            f"pure nugget: nearby samples are no more alike than random ones "
            f"(permutation p = {p_value:.3f} > {significance}); fitted {fitted.describe()}"
        )
    return fitted


def variogram_shift(before: VariogramModel | str, after: VariogramModel | str,
                    max_lag: float, *, points: int = 256) -> float:
    """How far ``after`` departs from ``before``: the largest |γ_after(h) − γ_before(h)|
    over 0 < h ≤ ``max_lag`` metres, as a share of ``before``'s sill.

    Compares the curves, not the parameters: two fits of nearly the same data may pick
    another model or trade nugget against range and still agree at every distance.
    A model against an IDW fallback (given as its reason text), or against one of another
    anisotropy or trend, is ``inf``; two fallbacks ``0.0``.
    """
    if isinstance(before, str) or isinstance(after, str):
        return 0.0 if isinstance(before, str) and isinstance(after, str) else float("inf")
    if (before.ratio, before.azimuth) != (after.ratio, after.azimuth):
        return float("inf")  # another anisotropy: distances are read in another space
    if before.trend != after.trend:
        return float("inf")  # the variogram of other values (the values, their residuals)
    h = np.linspace(max_lag / points, max_lag, points)
    return float(np.max(np.abs(after(h) - before(h))) / before.sill)
