"""Exceedance and class probabilities from kriged (log-)normal distributions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import ndtr

__all__ = ["class_probabilities", "exceedance_probability"]

def _normal_exceedance(mean: np.ndarray, var: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """P(X > cut) for X ~ N(mean, var); var 0 gives 1 where mean > cut, else 0."""
    mean, var, cut = np.broadcast_arrays(np.asarray(mean, float), np.asarray(var, float), cut)
    sd = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 1.0 - ndtr((cut - mean) / sd)
    p = np.where(sd > 0, p, (mean > cut).astype(float))
    return np.where(np.isnan(mean) | np.isnan(var) | np.isnan(cut), np.nan, p)


def exceedance_probability(
    mean_log: np.ndarray, var_log: np.ndarray, threshold: float | np.ndarray
) -> np.ndarray:
    """P(Z > t) = 1 − Φ((ln t − m) / s) for lognormal Z with ln Z ~ N(m, s²).

    Parameters
    ----------
    mean_log, var_log
        Mean and variance of ln Z (ln mg/kg, (ln mg/kg)²), e.g. from
        :meth:`LocalKriging.predict_distribution`.
    threshold
        t in original units (mg/kg), > 0; a scalar or one per location.

    Returns
    -------
    numpy.ndarray
        Probabilities in [0, 1]; NaN where an input is NaN. Zero variance gives
        1 where exp(m) > t, else 0.
    """
    t = np.asarray(threshold, dtype=float)
    if np.any(t <= 0):
        raise ValueError(f"thresholds must be > 0 for a lognormal exceedance, got {t[t <= 0][:3]}")
    return _normal_exceedance(mean_log, var_log, np.log(t))


def class_probabilities(
    p_exceed_screening: Mapping[str, np.ndarray], p_exceed_intervention: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities of classes 1, 2, 3 under the worst-of-elements rule.

    Assumes the elements' exceedances are independent (the approximation: metals
    that co-vary make the true P(class 1) higher than this product)::

        P(class ≤ 1) = Π_e (1 − P(Z_e > S_e))    S: screening value
        P(class ≤ 2) = Π_e (1 − P(Z_e > I_e))    I: intervention value
        p1 = P(≤1),  p2 = P(≤2) − P(≤1),  p3 = 1 − P(≤2)   (each clipped to [0, 1])

    Parameters
    ----------
    p_exceed_screening
        Element → P(value > screening value) per location.
    p_exceed_intervention
        Element → P(value > intervention value); elements without an intervention
        value are simply absent.

    Returns
    -------
    p1, p2, p3
        Arrays of the locations' shape; NaN where any input is NaN.
    """
    if not p_exceed_screening:
        raise ValueError("class_probabilities needs at least one element's screening exceedance")
    p_le1 = np.prod([1.0 - np.asarray(p, float) for p in p_exceed_screening.values()], axis=0)
    shape = np.shape(p_le1)
    p_le2 = np.prod(
        [1.0 - np.asarray(p, float) for p in p_exceed_intervention.values()] or [np.ones(shape)],
        axis=0,
    )
    p_le1, p_le2 = np.clip(p_le1, 0.0, 1.0), np.clip(p_le2, 0.0, 1.0)
    return p_le1, np.clip(p_le2 - p_le1, 0.0, 1.0), 1.0 - p_le2
