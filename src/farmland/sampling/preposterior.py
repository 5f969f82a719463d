"""What one more sample is expected to do to a class decision (pre-posterior analysis).

A parcel's class probabilities ``p_class_1..3`` are read as one standardised latent
value U ~ N(0, 1) cut at two thresholds: class 1 when U ≤ z₁, class 2 when
z₁ < U ≤ z₂, class 3 above, with z₁ = Φ⁻¹(p₁) and z₂ = Φ⁻¹(p₁ + p₂). For one
metal this is exact: U = (ln Z − m) / σ with the kriged mean m and standard deviation
σ, and z the thresholds (ln S − m)/σ, (ln I − m)/σ. For several metals it collapses
them into the one that decides.

**Kriging update.** New samples lower the kriging variance from σ² to σ'² (this
depends only on where they lie, :mod:`farmland.geostats.variance`); the new kriged
mean m' is unknown today but distributed as N(m, σ² − σ'²). With r = σ'/σ and
s = √(1 − r²), U = s·ξ + r·η with ξ the (unknown) move of the mean and η what stays
uncertain, so corr(ξ, U) = s and the new probabilities are P'(≤1) = Φ((z₁ − sξ)/r),
P'(≤2) = Φ((z₂ − sξ)/r). The decision rule of the classification (class 3 when
P(3) ≥ τ₃, else class 2 when P(≥2) ≥ τ₂, else 1; the median rule is τ₃ = τ₂ = ½)
then picks class 3 for ξ ≥ c₃ = (z₂ − r·q₃)/s and class ≥ 2 for ξ ≥ c₂ =
(z₁ − r·q₂)/s, q = Φ⁻¹(1 − τ). The expected misclassification after the update,
P(class decided ≠ true class), is a sum of bivariate normal rectangle probabilities
F(a, b) = P(ξ ≤ a, U ≤ b) = Φ₂(a, b; s)::

    E[loss'] = Φ(c₃) + Φ(z₂) + F(c₃, z₁) − 2 F(c₂, z₁) + F(c₂, z₂) − 2 F(c₃, z₂)

(c₂ taken as min(c₂, c₃)); at r = 1 it is today's 1 − p_d, at r = 0 it is 0.
P(the decision changes) = 1 − P(ξ in today's class interval).

**Where the truth lies: the calibrated probabilities.** The model above takes the
kriging distribution for the truth: the truth's error T = (ln Z − m)/σ is N(0, 1 − ν)
(ν: the nugget's share, not in a parcel's soil). On the truth-known counties of the
validation harness that is too sure and, for parcels classed 2, biased: the truth lies
lower and further from m than the model says, and new samples move the kriged means of
those parcels further, and down. The calibration map (:mod:`farmland.classify.
calibration`, fitted on counties held apart) says what the truth's class probabilities
are; :func:`calibrated_truth` reads them as T ~ N(μ_c, σ_c²) with the same cuts z₁, z₂
(two probabilities, two parameters). The kriging update still decides how far the
estimate moves for a given truth: regressing the move on the truth as the model does,
M = κT + η with κ = s²/(1 − ν) and var η = s² − κ²(1 − ν) (so that with the model's
truth M ~ N(0, s²) as above), a truth N(μ_c, σ_c²) gives M ~ N(κμ_c, A),
A = κ²σ_c² + var η, and corr(M, T) = κσ_c/√A. The formula above holds with the cuts
standardised by those means and deviations; with μ_c = 0 and σ_c² = 1 − ν it is the
model's own.

**A sample inside the parcel.** The parcel then takes that sample's class (the point
rule). The sample measures the parcel's soil Y with an error ε (lab error and
short-range variation: the variogram's nugget), so with Y ~ N(0, v_Y) and
Z = Y + ε, var ε = v_ε (standardised units), the misclassification after is
P(class(Z) ≠ class(Y)), again from Φ₂ — near a threshold one noisy value is close
to a coin flip, and this says how close.

All functions are vectorised over numpy arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri, owens_t

__all__ = ["bivariate_normal_cdf", "calibrated_truth", "decision", "decision_change",
           "expected_loss", "latent_thresholds", "sample_change", "sample_loss", "today_loss"]

#: standardised values are kept within ±Z_CAP (Φ(8.5) = 1 − 1e-17)
Z_CAP = 8.5
#: smallest s or r used as a divisor
TINY = 1e-9
#: a latent cut beyond ±CUT_LIMIT (a class probability below Φ(−5) ≈ 3e-7) carries no
#: information about the truth's spread: :func:`calibrated_truth` uses the other cut
CUT_LIMIT = 5.0


def bivariate_normal_cdf(h, k, rho) -> np.ndarray:
    """Φ₂(h, k; ρ) = P(X ≤ h, Y ≤ k) for standard normals of correlation ρ (Owen's T).

    Uses Φ₂ = ½Φ(h) + ½Φ(k) − T(h, a_h) − T(k, a_k) − β with
    a_h = (k − ρh)/(h√(1 − ρ²)), a_k = (h − ρk)/(k√(1 − ρ²)), β = ½ when hk < 0.
    """
    h, k, rho = np.broadcast_arrays(np.asarray(h, float), np.asarray(k, float),
                                    np.asarray(rho, float))
    h = np.clip(h, -Z_CAP, Z_CAP)
    k = np.clip(k, -Z_CAP, Z_CAP)
    h = np.where(h == 0, 1e-12, h)
    k = np.where(k == 0, 1e-12, k)
    nh, nk = ndtr(h), ndtr(k)           # Φ(h), Φ(k) once: the planner calls this on millions
    edge = np.abs(rho) >= 1 - 1e-12     # perfectly (anti-)correlated: the limits
    limit = (np.where(rho > 0, ndtr(np.minimum(h, k)), np.maximum(nh + nk - 1, 0.0))
             if edge.any() else None)
    rho = np.clip(rho, -1 + 1e-12, 1 - 1e-12)
    q = np.sqrt((1 - rho) * (1 + rho))
    beta = np.where(h * k < 0, 0.5, 0.0)
    out = (0.5 * nh + 0.5 * nk - owens_t(h, (k - rho * h) / (h * q))
           - owens_t(k, (h - rho * k) / (k * q)) - beta)
    if limit is not None:
        out = np.where(edge, limit, out)
    return np.clip(out, 0.0, np.minimum(nh, nk))


def latent_thresholds(p1, p2, p3) -> tuple[np.ndarray, np.ndarray]:
    """(z₁, z₂) of class probabilities (normalised to sum 1; NaN where any is NaN)."""
    p = np.column_stack([np.asarray(p1, float), np.asarray(p2, float), np.asarray(p3, float)])
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / p.sum(axis=1, keepdims=True)
        z1 = np.clip(ndtri(p[:, 0]), -Z_CAP, Z_CAP)
        z2 = np.clip(ndtri(np.minimum(p[:, 0] + p[:, 1], 1.0)), -Z_CAP, Z_CAP)
    return z1, np.maximum(z2, z1)


def _probs(z1, z2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c1, c2 = ndtr(z1), ndtr(z2)
    return c1, c2 - c1, 1.0 - c2


def decision(z1, z2, tau3: float, tau2: float) -> np.ndarray:
    """Today's class: 3 when P(3) ≥ τ₃, else 2 when P(≥2) ≥ τ₂, else 1."""
    _, p2, p3 = _probs(np.asarray(z1, float), np.asarray(z2, float))
    return np.where(p3 >= tau3, 3, np.where(p2 + p3 >= tau2, 2, 1)).astype(np.int8)


def _truth(nu, mu, sd) -> tuple[np.ndarray, np.ndarray]:
    """(μ, σ) of the truth's error on the probabilities' scale: ``mu`` and ``sd`` where
    given (finite), else the model's N(0, 1 − ν)."""
    model = np.sqrt(np.maximum(1.0 - np.asarray(nu, float), TINY**2))
    mu = np.nan_to_num(np.asarray(mu, float), nan=0.0)
    sd = np.asarray(model if sd is None else sd, float)
    return mu, np.maximum(np.where(np.isfinite(sd), sd, model), TINY)


def calibrated_truth(z1, z2, q1, q2, q3, nu=0.0) -> tuple[np.ndarray, np.ndarray]:
    """(μ_c, σ_c) of a normal truth T with P(T ≤ z₁) = q₁ and P(T ≤ z₂) = q₁ + q₂.

    ``z1``, ``z2`` are the model's cuts (:func:`latent_thresholds` of ``p_class``),
    ``q1..q3`` the calibrated probabilities (normalised). Where only one cut lies within
    ±:data:`CUT_LIMIT` (today or calibrated: one class is all but excluded) the spread
    is the model's √(1 − ν) and μ_c follows from that cut; where neither does, or the
    calibrated probabilities are missing, (0, √(1 − ν)): the model's truth.
    """
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    w1, w2 = latent_thresholds(q1, q2, q3)
    model = np.sqrt(np.maximum(1.0 - np.broadcast_to(np.asarray(nu, float), z1.shape),
                               TINY**2))
    ok1 = (np.abs(z1) < CUT_LIMIT) & (np.abs(w1) < CUT_LIMIT)
    ok2 = (np.abs(z2) < CUT_LIMIT) & (np.abs(w2) < CUT_LIMIT)
    both = ok1 & ok2 & (z2 - z1 > TINY) & (w2 - w1 > TINY)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(both, (z2 - z1) / np.where(both, w2 - w1, 1.0), model)
    mu = np.where(both | ok1, z1 - sd * np.nan_to_num(w1),
                  np.where(ok2, z2 - sd * np.nan_to_num(w2), 0.0))
    return mu, sd


def today_loss(z1, z2, tau3: float, tau2: float, nu=0.0, mu=0.0, sd=None) -> np.ndarray:
    """P(today's class ≠ the true class): 1 − P(today's class) when the probabilities
    describe the truth itself (``nu`` = 0); with ``nu`` > 0 the truth is the soil value
    Y without the share ``nu`` of the variance that is measurement error and short-range
    variation (Y ~ N(0, 1 − ν) on the probabilities' scale); with ``mu`` and ``sd`` the
    truth is N(μ, σ²) (:func:`calibrated_truth`)."""
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    d = decision(z1, z2, tau3, tau2)
    mu, sd = _truth(nu, mu, sd)
    c1, c2 = ndtr((z1 - mu) / sd), ndtr((z2 - mu) / sd)
    right = np.where(d == 1, c1, np.where(d == 2, c2 - c1, 1.0 - c2))
    return np.clip(1.0 - right, 0.0, 1.0)


def _move(r, nu, sd) -> tuple[np.ndarray, np.ndarray]:
    """(κ, √A) of the move M = κT + η of the kriged mean (module docstring)."""
    r = np.clip(np.asarray(r, float), 0.0, 1.0)
    s2 = 1.0 - r * r
    rest = np.maximum(1.0 - np.asarray(nu, float), TINY**2)
    kappa = s2 / rest
    spread = kappa * kappa * sd * sd + np.maximum(s2 - kappa * kappa * rest, 0.0)
    return kappa, np.maximum(np.sqrt(spread), TINY)


def expected_loss(z1, z2, r, tau3: float, tau2: float, nu=0.0, mu=0.0,
                  sd=None) -> np.ndarray:
    """Expected P(misclassified) after the variance falls to r² times today's.

    ``nu``: share of today's variance that is not in the truth (see :func:`today_loss`);
    the truth is then Y = s·ξ + √(r² − ν)·η, so corr(ξ, Y) = s/√(1 − ν) and the
    thresholds of Y are z/√(1 − ν). ``mu``/``sd``: the truth is N(μ, σ²) instead
    (:func:`calibrated_truth`; the module docstring has the move). Where both cuts lie
    beyond ±:data:`Z_CAP` the decision cannot change and the loss is today's (no
    bivariate normal needed).
    """
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    shape = np.broadcast_shapes(z1.shape, z2.shape, np.shape(r))
    z1, z2 = np.broadcast_to(z1, shape), np.broadcast_to(z2, shape)
    nu = np.broadcast_to(np.asarray(nu, float), shape)
    mu, sd = (np.broadcast_to(a, shape) for a in _truth(nu, mu, sd))
    kappa, spread = (np.broadcast_to(a, shape) for a in _move(r, nu, sd))
    c2, c3 = _standard_cuts(z1, z2, r, tau3, tau2, kappa * mu, spread)
    move = ((np.abs(c2) < Z_CAP) | (np.abs(c3) < Z_CAP)) & (np.asarray(r, float) < 1.0)
    if not move.any():
        return today_loss(z1, z2, tau3, tau2, nu, mu, sd)
    loss = np.empty(move.shape)        # today's loss only where the decision cannot move
    if not move.all():
        loss[~move] = today_loss(*(np.broadcast_to(a, move.shape)[~move] for a in (z1, z2)),
                                 tau3, tau2, nu[~move], mu[~move], sd[~move])
    z1, z2, c2, c3, mu, sd, kappa, spread = (np.broadcast_to(a, move.shape)[move]
                                             for a in (z1, z2, c2, c3, mu, sd, kappa,
                                                       spread))
    y1, y2 = (z1 - mu) / sd, (z2 - mu) / sd
    rho = np.minimum(kappa * sd / spread, 1.0)
    loss[move] = (ndtr(c3) + ndtr(y2) + _cdf(c3, y1, rho) - 2 * _cdf(c2, y1, rho)
                  + _cdf(c2, y2, rho) - 2 * _cdf(c3, y2, rho))
    return np.clip(loss, 0.0, 1.0)


def _standard_cuts(z1, z2, r, tau3: float, tau2: float, centre, spread):
    """The move's cuts (class ≥ 2, class 3) standardised: (cut − E M)/sd M, capped."""
    r = np.clip(np.asarray(r, float), 0.0, 1.0)
    q3, q2 = ndtri(1.0 - tau3), ndtri(1.0 - tau2)
    c3 = np.clip((z2 - r * q3 - centre) / spread, -Z_CAP, Z_CAP)
    c2 = np.minimum(np.clip((z1 - r * q2 - centre) / spread, -Z_CAP, Z_CAP), c3)
    return c2, c3


def _cdf(c: np.ndarray, y: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Φ₂(c, y; ρ), with its limits (0 and Φ(y)) where c lies beyond ±:data:`Z_CAP`."""
    out = np.zeros(c.shape)
    above = c >= Z_CAP
    out[above] = ndtr(y[above])
    inner = np.abs(c) < Z_CAP
    if inner.any():
        out[inner] = bivariate_normal_cdf(c[inner], y[inner], rho[inner])
    return out


def decision_change(z1, z2, r, tau3: float, tau2: float, nu=0.0, mu=0.0,
                    sd=None) -> np.ndarray:
    """P(the class decided after the update differs from today's) (the truth N(μ, σ²)
    with ``mu``/``sd``, as in :func:`expected_loss`)."""
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    mu, sd = _truth(nu, mu, sd)
    kappa, spread = _move(r, nu, sd)
    c2, c3 = _standard_cuts(z1, z2, r, tau3, tau2, kappa * mu, spread)
    d = decision(z1, z2, tau3, tau2)
    stay = np.where(d == 1, ndtr(c2), np.where(d == 2, ndtr(c3) - ndtr(c2), 1.0 - ndtr(c3)))
    out = np.clip(1.0 - stay, 0.0, 1.0)
    return np.where(np.asarray(r, float) >= 1.0, 0.0, out)


def _sample_cuts(z1, z2, v_truth, v_noise, mu=0.0):
    mu = np.nan_to_num(np.asarray(mu, float), nan=0.0)
    z1, z2 = np.asarray(z1, float) - mu, np.asarray(z2, float) - mu
    sd_y = np.sqrt(np.maximum(np.asarray(v_truth, float), TINY**2))
    sd_z = np.sqrt(np.maximum(np.asarray(v_truth, float) + np.asarray(v_noise, float),
                              TINY**2))
    return z1 / sd_y, z2 / sd_y, z1 / sd_z, z2 / sd_z, sd_y / sd_z


def sample_loss(z1, z2, v_truth, v_noise, mu=0.0) -> np.ndarray:
    """P(class of a noisy sample ≠ class of the soil it measures).

    ``v_truth`` is the variance of the soil value Y and ``mu`` its mean (standardised
    units: z₁, z₂ are thresholds on that scale around today's mean) and ``v_noise`` that
    of the measurement error; the sample is Z = Y + ε.
    """
    a1, a2, b1, b2, rho = _sample_cuts(z1, z2, v_truth, v_noise, mu)
    f = bivariate_normal_cdf
    g11, g22, g12, g21 = f(a1, b1, rho), f(a2, b2, rho), f(a1, b2, rho), f(a2, b1, rho)
    same = g11 + (g22 - g12 - g21 + g11) + (1.0 - ndtr(a2) - ndtr(b2) + g22)
    return np.clip(1.0 - same, 0.0, 1.0)


def sample_change(z1, z2, v_truth, v_noise, tau3: float, tau2: float,
                  mu=0.0) -> np.ndarray:
    """P(the sample's class differs from today's decision) (soil value N(μ, v_truth))."""
    _, _, b1, b2, _ = _sample_cuts(z1, z2, v_truth, v_noise, mu)
    d = decision(z1, z2, tau3, tau2)
    stay = np.where(d == 1, ndtr(b1), np.where(d == 2, ndtr(b2) - ndtr(b1), 1.0 - ndtr(b2)))
    return np.clip(1.0 - stay, 0.0, 1.0)
