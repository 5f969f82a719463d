"""How many PMF factors, and how sure the profiles are: diagnostics, matching, bootstrap.

Factors of two solutions are matched one-to-one by the correlation of their profiles
(Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`). Profiles are
correlated after dividing each element by its mean concentration in the data, so Cr at
70 mg/kg does not outweigh Hg at 0.05 mg/kg.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from farmland.sources.pmf import PMF
from farmland.sources.pmf_solver import solve

logger = logging.getLogger(__name__)

#: EPA PMF's default: a bootstrap factor maps to a base factor at r ≥ 0.6
MIN_CORRELATION = 0.6
#: random starts per factor count in the diagnostics scan
DIAGNOSTIC_STARTS = 5
#: convergence tolerance of the diagnostics scan
DIAGNOSTIC_TOL = 1e-4
#: EPA PMF's default number of bootstrap runs
DEFAULT_BOOTSTRAPS = 100
#: the default factor count is the smallest p after which one more factor lowers
#: Q(robust)/Q_exp by less than this share
RATIO_DROP = 0.10
#: resampled matrices held in memory at once (values)
_BATCH_VALUES = 4_000_000


def profile_correlations(reference: np.ndarray, other: np.ndarray,
                         scale: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of every reference profile with every other profile.

    Parameters
    ----------
    reference, other
        (p, m) and (q, m) profiles over the same elements.
    scale
        (m,) divisor of each element (default: none); farmland passes the element means.

    Returns
    -------
    numpy.ndarray
        (p, q) correlations; a constant profile correlates 0 with everything.
    """
    a, b = np.asarray(reference, float), np.asarray(other, float)
    if scale is not None:
        a, b = a / scale, b / scale
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a @ b.T) / np.outer(na, nb)
    return np.nan_to_num(r)


def match_factors(reference: np.ndarray, other: np.ndarray, scale: np.ndarray | None = None,
                  *, min_correlation: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pair each reference factor with one factor of ``other`` (one-to-one).

    Parameters
    ----------
    reference, other
        (p, m) and (q, m) profiles.
    scale
        Divisor of each element before correlating (see :func:`profile_correlations`).
    min_correlation
        A pair below this correlation counts as unmatched.

    Returns
    -------
    match, correlation
        (p,) index into ``other`` for each reference factor (−1 when unmatched) and the
        (p,) correlation of the pair (NaN when unmatched); the assignment maximises the
        summed correlation.
    """
    r = profile_correlations(reference, other, scale)
    rows, cols = linear_sum_assignment(-r)
    match = np.full(len(r), -1)
    corr = np.full(len(r), np.nan)
    good = r[rows, cols] >= min_correlation
    match[rows[good]], corr[rows[good]] = cols[good], r[rows, cols][good]
    return match, corr


def factor_diagnostics(X: np.ndarray, U: np.ndarray, factors: Iterable[int] = range(2, 7), *,
                       n_starts: int = DIAGNOSTIC_STARTS, seed: int = 0,
                       models: dict[int, PMF] | None = None,
                       **pmf_options: object) -> pd.DataFrame:
    """Fit PMF for several factor counts and report the usual diagnostics.

    Parameters
    ----------
    X, U
        (n, m) concentrations and uncertainties.
    factors
        Factor counts to try (those ≥ m or with Q_exp ≤ 0 are skipped).
    n_starts
        Random starts per factor count (5: the scan compares Q between factor counts,
        which differ far more than the best of 5 and of 20 starts do).
    seed
        Seed of the starts.
    models
        A dict that receives the fitted model of each p, so the chosen one need not be
        fitted again.
    **pmf_options
        Further options of :class:`~farmland.sources.pmf.PMF` (``robust``, …); ``tol``
        defaults to the screening tolerance 10⁻⁴, since the scan needs Q, not profiles
        converged to the last digit.

    Returns
    -------
    pandas.DataFrame
        One row per p: ``n_factors, q_true, q_robust, q_expected, q_ratio`` (Q(robust) /
        Q_exp), ``beyond_3`` (share of scaled residuals outside ±3), ``worst_beyond_3``
        (that share for the worst element), ``im`` and ``is`` (largest element mean and
        standard deviation of the scaled residuals, Lee et al. 1999), ``n_iter,
        converged``.
    """
    n, m = np.shape(X)
    pmf_options.setdefault("tol", DIAGNOSTIC_TOL)
    rows = []
    for p in factors:
        if p >= m or n * m - p * (n + m) <= 0:
            logger.info("p = %d skipped: needs p < %d elements and Q_exp > 0", p, m)
            continue
        model = PMF(p, n_starts=n_starts, seed=seed, **pmf_options).fit(X, U)
        if models is not None:
            models[p] = model
        r = model.scaled_residuals_
        beyond = np.abs(r) > 3
        rows.append({"n_factors": p, "q_true": model.q_true_, "q_robust": model.q_robust_,
                     "q_expected": model.q_expected_,
                     "q_ratio": model.q_robust_ / model.q_expected_,
                     "beyond_3": beyond.mean(), "worst_beyond_3": beyond.mean(axis=0).max(),
                     "im": r.mean(axis=0).max(), "is": r.std(axis=0).max(),
                     "n_iter": model.n_iter_, "converged": model.converged_})
    return pd.DataFrame(rows)


def choose_factor_count(diagnostics: pd.DataFrame, *, ratio_drop: float = RATIO_DROP) -> int:
    """The default number of factors from :func:`factor_diagnostics`.

    The smallest p after which one more factor lowers Q(robust)/Q_exp by less than
    ``ratio_drop`` (10 %) of its value: Q_exp already accounts for the parameters a factor
    adds, so past the right p the ratio levels off. When it never levels off, the
    largest p tried.

    Parameters
    ----------
    diagnostics
        Output of :func:`factor_diagnostics`, consecutive factor counts.
    ratio_drop
        Relative drop of the ratio below which a further factor is not worth it.

    Returns
    -------
    int
        The chosen p.
    """
    d = diagnostics.sort_values("n_factors")
    p, ratio = d["n_factors"].to_numpy(), d["q_ratio"].to_numpy()
    for k in range(len(p) - 1):
        if ratio[k + 1] > ratio[k] * (1 - ratio_drop):
            return int(p[k])
    return int(p[-1])


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap uncertainty of PMF profiles.

    Attributes
    ----------
    summary
        ``factor, element, base, p05, p50, p95`` in mg/kg over the mapped runs.
    mapped
        ``factor, runs_mapped, share_mapped, mean_correlation`` per base factor.
    profiles
        (n_boot, p, m) mapped bootstrap profiles in base-factor order, NaN where a base
        factor was not mapped in a run.
    """

    summary: pd.DataFrame
    mapped: pd.DataFrame
    profiles: np.ndarray


def _resampled_fits(model: PMF, X: np.ndarray, U: np.ndarray,
                    rows: np.ndarray) -> list[np.ndarray]:
    """Refit on each row resample, starting from the base solution; the F of each run."""
    profiles = []
    batch = max(1, _BATCH_VALUES // X.size)
    for start in range(0, len(rows), batch):
        idx = rows[start:start + batch]
        G0 = model.contributions_[idx]
        F0 = np.broadcast_to(model.profiles_, (len(idx), *model.profiles_.shape))
        fits = solve(X[idx], U[idx], G0, F0, robust=model.robust, alpha=model.alpha,
                     max_iter=model.max_iter, tol=model.start_tol, warmup=0)
        profiles += [f.F for f in fits]
    return profiles


def bootstrap_profiles(model: PMF, X: np.ndarray, U: np.ndarray, *,
                       n_boot: int = DEFAULT_BOOTSTRAPS,
                       min_correlation: float = MIN_CORRELATION,
                       seed: int = 0) -> BootstrapResult:
    """Bootstrap the profiles of a fitted PMF (EPA PMF's "BS" runs).

    Each run resamples the rows of X (with U) with replacement, refits from the base
    solution (the base profiles and the base contributions of the drawn rows; to
    ``model.start_tol``), normalises contributions to mean 1 and maps its factors to the
    base factors by profile correlation (one-to-one, at least ``min_correlation``).

    Parameters
    ----------
    model
        A fitted :class:`~farmland.sources.pmf.PMF`.
    X, U
        The matrices it was fitted on.
    n_boot
        Bootstrap runs.
    min_correlation
        Correlation a run's factor needs to be mapped to a base factor.
    seed
        Seed of the resampling.

    Returns
    -------
    BootstrapResult
        Percentiles 5/50/95 of each profile element (mg/kg) and the share of runs in
        which each base factor was mapped.
    """
    X, U = np.asarray(X, float), np.asarray(U, float)
    n = len(X)
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    base = model.profiles_
    scale = X.mean(axis=0)
    mapped = np.full((n_boot, *base.shape), np.nan)
    corr = np.full((n_boot, len(base)), np.nan)
    for b, F in enumerate(_resampled_fits(model, X, U, rows)):
        match, r = match_factors(base, F, scale, min_correlation=min_correlation)
        ok = match >= 0
        mapped[b, ok], corr[b, ok] = F[match[ok]], r[ok]
    p, m = base.shape
    runs = (~np.isnan(corr)).sum(axis=0)
    with warnings.catch_warnings():  # a factor never mapped: all-NaN slices
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(mapped, [5, 50, 95], axis=0)
        mean_corr = np.nanmean(corr, axis=0)
    summary = pd.DataFrame({"factor": np.repeat(model.factors_, m),
                            "element": np.tile(model.elements_, p), "base": base.ravel(),
                            "p05": q[0].ravel(), "p50": q[1].ravel(), "p95": q[2].ravel()})
    share = pd.DataFrame({"factor": model.factors_, "runs_mapped": runs,
                          "share_mapped": runs / n_boot, "mean_correlation": mean_corr})
    logger.info("bootstrap: %d runs; share mapped per factor %s", n_boot,
                ", ".join(f"{f} {s:.0%}" for f, s in zip(model.factors_, runs / n_boot,
                                                           strict=True)))
    return BootstrapResult(summary, share, mapped)
