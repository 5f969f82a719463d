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

__all__ = ["bivariate_normal_cdf", "decision", "decision_change", "expected_loss",
           "latent_thresholds", "sample_change", "sample_loss", "today_loss"]

#: standardised values are kept within ±Z_CAP (Φ(8.5) = 1 − 1e-17)
Z_CAP = 8.5
#: smallest s or r used as a divisor
TINY = 1e-9


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


def today_loss(z1, z2, tau3: float, tau2: float, nu=0.0) -> np.ndarray:
    """P(today's class ≠ the true class): 1 − P(today's class) when the probabilities
    describe the truth itself (``nu`` = 0); with ``nu`` > 0 the truth is the soil value
    Y without the share ``nu`` of the variance that is measurement error and short-range
    variation (Y ~ N(0, 1 − ν) on the probabilities' scale)."""
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    d = decision(z1, z2, tau3, tau2)
    sd = np.sqrt(np.maximum(1.0 - np.asarray(nu, float), TINY**2))
    c1, c2 = ndtr(z1 / sd), ndtr(z2 / sd)
    right = np.where(d == 1, c1, np.where(d == 2, c2 - c1, 1.0 - c2))
    return np.clip(1.0 - right, 0.0, 1.0)


def _cuts(z1, z2, r, tau3: float, tau2: float):
    z1, z2, r = (np.asarray(a, float) for a in (z1, z2, r))
    r = np.clip(r, 0.0, 1.0)
    s = np.maximum(np.sqrt(1.0 - r * r), TINY)
    q3, q2 = ndtri(1.0 - tau3), ndtri(1.0 - tau2)
    c3 = np.clip((z2 - r * q3) / s, -Z_CAP, Z_CAP)
    c2 = np.minimum(np.clip((z1 - r * q2) / s, -Z_CAP, Z_CAP), c3)
    return z1, z2, s, c2, c3


def expected_loss(z1, z2, r, tau3: float, tau2: float, nu=0.0) -> np.ndarray:
    """Expected P(misclassified) after the variance falls to r² times today's.

    ``nu``: share of today's variance that is not in the truth (see :func:`today_loss`);
    the truth is then Y = s·ξ + √(r² − ν)·η, so corr(ξ, Y) = s/√(1 − ν) and the
    thresholds of Y are z/√(1 − ν). Where both cuts lie beyond ±:data:`Z_CAP` the
    decision cannot change and the loss is today's (no bivariate normal needed).
    """
    z1, z2, s, c2, c3 = _cuts(z1, z2, r, tau3, tau2)
    nu = np.broadcast_to(np.asarray(nu, float), z1.shape)
    move = ((np.abs(c2) < Z_CAP) | (np.abs(c3) < Z_CAP)) & (np.asarray(r, float) < 1.0)
    if not move.any():
        return today_loss(z1, z2, tau3, tau2, nu)
    loss = np.empty(move.shape)        # today's loss only where the decision cannot move
    if not move.all():
        loss[~move] = today_loss(*(np.broadcast_to(a, move.shape)[~move] for a in (z1, z2)),
                                 tau3, tau2, np.broadcast_to(nu, move.shape)[~move])
    z1, z2, s, c2, c3, nu = (np.broadcast_to(a, move.shape)[move]
                             for a in (z1, z2, s, c2, c3, nu))
    sd = np.sqrt(np.maximum(1.0 - nu, TINY**2))
    y1, y2, rho = z1 / sd, z2 / sd, np.minimum(s / sd, 1.0)
    loss[move] = (ndtr(c3) + ndtr(y2) + _cdf(c3, y1, rho) - 2 * _cdf(c2, y1, rho)
                  + _cdf(c2, y2, rho) - 2 * _cdf(c3, y2, rho))
    return np.clip(loss, 0.0, 1.0)


def _cdf(c: np.ndarray, y: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Φ₂(c, y; ρ), with its limits (0 and Φ(y)) where c lies beyond ±:data:`Z_CAP`."""
    out = np.zeros(c.shape)
    above = c >= Z_CAP
    out[above] = ndtr(y[above])
    inner = np.abs(c) < Z_CAP
    if inner.any():
        out[inner] = bivariate_normal_cdf(c[inner], y[inner], rho[inner])
    return out


def decision_change(z1, z2, r, tau3: float, tau2: float) -> np.ndarray:
    """P(the class decided after the update differs from today's)."""
    z1, z2, _, c2, c3 = _cuts(z1, z2, r, tau3, tau2)
    d = decision(z1, z2, tau3, tau2)
    stay = np.where(d == 1, ndtr(c2), np.where(d == 2, ndtr(c3) - ndtr(c2), 1.0 - ndtr(c3)))
    out = np.clip(1.0 - stay, 0.0, 1.0)
    return np.where(np.asarray(r, float) >= 1.0, 0.0, out)


def _sample_cuts(z1, z2, v_truth, v_noise):
    z1, z2 = np.asarray(z1, float), np.asarray(z2, float)
    sd_y = np.sqrt(np.maximum(np.asarray(v_truth, float), TINY**2))
    sd_z = np.sqrt(np.maximum(np.asarray(v_truth, float) + np.asarray(v_noise, float),
                              TINY**2))
    return z1 / sd_y, z2 / sd_y, z1 / sd_z, z2 / sd_z, sd_y / sd_z


def sample_loss(z1, z2, v_truth, v_noise) -> np.ndarray:
    """P(class of a noisy sample ≠ class of the soil it measures).

    ``v_truth`` is the variance of the soil value Y (standardised units: z₁, z₂ are
    thresholds on that scale around today's mean) and ``v_noise`` that of the
    measurement error; the sample is Z = Y + ε.
    """
    a1, a2, b1, b2, rho = _sample_cuts(z1, z2, v_truth, v_noise)
    f = bivariate_normal_cdf
    g11, g22, g12, g21 = f(a1, b1, rho), f(a2, b2, rho), f(a1, b2, rho), f(a2, b1, rho)
    same = g11 + (g22 - g12 - g21 + g11) + (1.0 - ndtr(a2) - ndtr(b2) + g22)
    return np.clip(1.0 - same, 0.0, 1.0)


def sample_change(z1, z2, v_truth, v_noise, tau3: float, tau2: float) -> np.ndarray:
    """P(the sample's class differs from today's decision)."""
    _, _, b1, b2, _ = _sample_cuts(z1, z2, v_truth, v_noise)
    d = decision(z1, z2, tau3, tau2)
    stay = np.where(d == 1, ndtr(b1), np.where(d == 2, ndtr(b2) - ndtr(b1), 1.0 - ndtr(b2)))
    return np.clip(1.0 - stay, 0.0, 1.0)
