"""A distribution for variables whose kriging fell back to IDW (issue 15).

When no variogram can be fitted (pure nugget by the permutation test, too few
samples, a failed fit) local kriging falls back to IDW, which gives an estimate but
no variance. Until now the element's exceedances were then certain (0 or 1), and every
parcel over it got ``p_class`` 0 or 1 however far its nearest sample: on the validation
harness the fallback happened in 21 of 30 counties (Cd in 4 of them; seeds 1–6), and parcels
the classification called certain were wrong several times as often as it said.

The honest spread of an estimate without a model is its own cross-validated error:
ln Z at a location is taken as normal around the IDW estimate of ln Z, with the mean
squared leave-one-out error of that IDW at the samples (each sample estimated from the
others; log scale when the IDW works on logs). It is the variance of a *point* value,
like the kriging variance with its nugget, and it does not shrink near a sample — a
variable with no spatial structure is no better known next to a sample than far from
it, which is what the permutation test said. docs/decisions.md "Fallback variance".
"""

from __future__ import annotations

import numpy as np

__all__ = ["fallback_distribution", "fallback_variance", "idw_error_variance",
           "working_moments"]


def idw_error_variance(idw, predicted: np.ndarray | None = None) -> float:
    """Mean squared leave-one-out error of a fitted :class:`~farmland.geostats.IDW` on its
    working scale (ln when ``log``); NaN with fewer than two estimable samples.

    Each sample location is estimated from the other locations (duplicates at one
    location are averaged first, as the IDW does); the error is the location's value
    minus that estimate. ``predicted``: the IDW's ``leave_one_out()["predicted"]`` when
    the caller has it already.
    """
    if predicted is None:
        predicted = idw.leave_one_out()["predicted"]
    predicted = np.asarray(predicted, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(predicted) if idw.log else predicted
    observed = np.asarray(idw.values_, dtype=float)[idw.sample_location_]
    error = observed - estimate
    error = error[np.isfinite(error)]
    return float(np.mean(error**2)) if len(error) >= 2 else float("nan")


def fallback_variance(estimator, predicted: np.ndarray | None = None) -> float:
    """The error variance of an estimator that fell back to IDW: the one it keeps
    (``error_variance_``: fitted once on all the run's samples, or reused from an earlier
    run with its fallback, like a variogram — so an incremental run equals a full one),
    else :func:`idw_error_variance` of its ``idw_`` (``predicted``: that IDW's
    leave-one-out predictions when the caller has them)."""
    kept = getattr(estimator, "error_variance_", None)
    return float(kept) if kept is not None else idw_error_variance(estimator.idw_, predicted)


def working_moments(idw, estimate: np.ndarray, variance: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) on the IDW's working scale of its ``estimate`` (ln of it when the
    IDW works on logs): NaN where the mean is not defined (no sample within reach, a
    non-positive estimate on the log scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.log(estimate) if idw.log else estimate
    mean = np.where(np.isfinite(mean), mean, np.nan)
    return mean, np.where(np.isfinite(mean), variance, np.nan)


def fallback_distribution(estimator, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, variance) on the working scale at ``coords`` for an estimator that fell back
    to IDW (``fallback_`` set, ``idw_`` fitted); None for any other estimator.

    The mean is the IDW estimate (:func:`working_moments`), the variance
    :func:`fallback_variance`, wherever the mean is defined (NaN elsewhere).
    """
    idw = getattr(estimator, "idw_", None)
    if getattr(estimator, "fallback_", None) is None or idw is None:
        return None
    variance = fallback_variance(estimator)
    if not np.isfinite(variance):
        return None
    return working_moments(idw, np.asarray(idw.predict(coords), dtype=float), variance)
