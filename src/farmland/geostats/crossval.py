"""Cross-validation of the interpolators (leave-one-out or k-fold).

Coordinates are (n, 2) metres in a projected CRS; values in original units (mg/kg).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

Estimator = Any  # IDW or LocalKriging (anything with fit/predict)


def _factory(estimator: Estimator | Callable[[], Estimator]) -> Callable[[], Estimator]:
    """A callable making unfitted estimators: an estimator is copied from its parameters."""
    if hasattr(estimator, "fit"):
        return lambda: type(estimator)(**estimator.get_params())
    if callable(estimator):
        return estimator
    raise TypeError(f"expected an estimator or a factory returning one, got {estimator!r}")


def _leave_one_out(make: Callable[[], Estimator], coords: np.ndarray, values: np.ndarray) -> dict:
    """One fit on all samples, then each sample estimated without its location."""
    est = make().fit(coords, values)
    if hasattr(est, "leave_one_out"):
        out = est.leave_one_out()
    else:  # generic estimator: n refits
        pred = np.array(
            [
                make()
                .fit(np.delete(coords, i, 0), np.delete(values, i))
                .predict(coords[i : i + 1])[0]
                for i in range(len(values))
            ]
        )
        out = {"predicted": pred}
    nan = np.full(len(values), np.nan)
    return {
        "predicted": out["predicted"],
        "mean": out.get("mean", nan),
        "variance": out.get("variance", nan),
        "fold": np.arange(len(values)),
        "estimator": est,
    }


def _k_fold(
    make: Callable[[], Estimator], coords: np.ndarray, values: np.ndarray, folds: int, seed: int
) -> dict:
    """Refit (variogram included) on all folds but one; estimate the held-out fold."""
    fold = np.random.default_rng(seed).permutation(len(values)) % folds
    pred, mean, var = (np.full(len(values), np.nan) for _ in range(3))
    est = None
    for f in range(folds):
        test = fold == f
        est = make().fit(coords[~test], values[~test])
        pred[test] = est.predict(coords[test])
        with contextlib.suppress(NotImplementedError):  # IDW gives no distribution
            mean[test], var[test] = est.predict_distribution(coords[test])
    return {"predicted": pred, "mean": mean, "variance": var, "fold": fold, "estimator": est}


def cross_validate(
    estimator: Estimator | Callable[[], Estimator],
    coords: np.ndarray,
    values: np.ndarray,
    *,
    folds: int | None = None,
    seed: int = 0,
    classify: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Cross-validate an interpolator on the samples.

    Parameters
    ----------
    estimator
        An (unfitted or fitted) :class:`~farmland.geostats.estimators.IDW` /
        :class:`~farmland.geostats.estimators.LocalKriging` — copied from its parameters —
        or a callable returning a new unfitted estimator.
    coords
        (n, 2) sample coordinates, metres.
    values
        (n,) observed values, original units (mg/kg).
    folds
        ``None``: leave-one-out. Kriging and IDW do it in one pass: the model is
        fitted once (the variogram from all samples) and each sample is estimated
        from its k nearest *other* locations. An int ≥ 2: k-fold with a seeded
        random assignment, everything (variogram included) refitted per fold.
    seed
        Seed of the fold assignment.
    classify
        Optional callable mapping an (n,) array of values aligned with the samples
        to class codes; applied to predictions and to observations.

    Returns
    -------
    dict
        ``n`` (samples with a prediction), ``me`` (mean of predicted − observed),
        ``rmse`` (original units), ``mean_standardized_error`` and
        ``mean_squared_standardized_error`` (on the kriging scale — log when the
        estimator is log-kriging; NaN for IDW; ideal 0 and 1), ``class_accuracy``
        (share of samples whose class is predicted correctly; only with
        ``classify``), and ``samples``: a DataFrame with ``observed``,
        ``predicted``, ``error``, ``kriging_mean``, ``std_error`` (kriging scale),
        ``standardized_error`` and ``fold`` per sample.
    """
    coords = np.asarray(coords, dtype=float)
    values = np.asarray(values, dtype=float)
    make = _factory(estimator)
    if folds is None:
        res = _leave_one_out(make, coords, values)
    elif int(folds) >= 2:
        res = _k_fold(make, coords, values, int(folds), seed)
    else:
        raise ValueError(f"folds must be None (leave-one-out) or an integer >= 2, got {folds!r}")
    return _metrics(res, values, classify)


def _metrics(res: dict, observed: np.ndarray, classify: Callable | None) -> dict[str, Any]:
    est = res["estimator"]
    log = bool(getattr(est, "log", False)) and hasattr(est, "variogram_")
    with np.errstate(divide="ignore", invalid="ignore"):
        obs_scale = np.log(observed) if log else observed
        sd = np.sqrt(res["variance"])
        z = np.where(sd > 0, (res["mean"] - obs_scale) / sd, np.nan)
    frame = pd.DataFrame(
        {
            "observed": observed,
            "predicted": res["predicted"],
            "error": res["predicted"] - observed,
            "kriging_mean": res["mean"],
            "std_error": sd,
            "standardized_error": z,
            "fold": res["fold"],
        }
    )
    ok = np.isfinite(frame["error"].to_numpy())
    zs = z[np.isfinite(z)]
    out: dict[str, Any] = {
        "n": int(ok.sum()),
        "me": float(np.mean(frame["error"][ok])) if ok.any() else np.nan,
        "rmse": float(np.sqrt(np.mean(frame["error"][ok] ** 2))) if ok.any() else np.nan,
        "mean_standardized_error": float(np.mean(zs)) if len(zs) else np.nan,
        "mean_squared_standardized_error": float(np.mean(zs**2)) if len(zs) else np.nan,
        "class_accuracy": np.nan,
        "samples": frame,
        "estimator": est,
    }
    if classify is not None:
        out["class_accuracy"] = _class_accuracy(classify, res["predicted"], observed, ok)
    logger.info(
        "cross-validation: n=%d ME=%.4g RMSE=%.4g MSSE=%.3g",
        out["n"],
        out["me"],
        out["rmse"],
        out["mean_squared_standardized_error"],
    )
    return out


def _class_accuracy(
    classify: Callable, predicted: np.ndarray, observed: np.ndarray, ok: np.ndarray
) -> float:
    """Share of samples (with a prediction and a class both ways) classed alike."""
    cp = pd.array(classify(predicted), dtype="Int64")
    co = pd.array(classify(observed), dtype="Int64")
    both = ok & ~np.asarray(pd.isna(cp)) & ~np.asarray(pd.isna(co))
    if not both.any():
        return np.nan
    return float(np.mean(np.asarray(cp[both]) == np.asarray(co[both])))
