"""Positive Matrix Factorisation (PMF) of soil metal concentrations, EPA PMF 5.0 style.

The model is X ≈ G F with G ≥ 0 (n samples × p factors, contributions) and F ≥ 0
(p factors × m elements, profiles), fitted by minimising Q = Σᵢⱼ (eᵢⱼ/uᵢⱼ)² with the
uncertainties of :func:`farmland.sources.matrix.sample_matrix`. Robust mode, the
expected Q = n·m − p·(n + m), several random starts, EPA's normalisation (each factor's
contributions average 1, so its profile is the mg/kg it adds to an average sample). The
solver is in :mod:`farmland.sources.pmf_solver`; factor-count diagnostics and the
bootstrap in :mod:`farmland.sources.pmf_uncertainty`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from farmland.sources.pmf_solver import Solution, random_start, solve

logger = logging.getLogger(__name__)

#: EPA PMF's default number of base runs (random starts)
DEFAULT_STARTS = 20
#: random starts are screened on at most this many samples, then the best is refined on all
SCREEN_SAMPLES = 5000


def factor_names(p: int) -> list[str]:
    """``F1 … Fp``."""
    return [f"F{k + 1}" for k in range(p)]


def _check_inputs(X: np.ndarray, U: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    X, U = np.asarray(X, dtype=float), np.asarray(U, dtype=float)
    if X.ndim != 2 or X.shape != U.shape:
        raise ValueError(f"X and U must be 2-D of one shape, got {X.shape} and {U.shape}")
    if not (np.isfinite(X).all() and np.isfinite(U).all()):
        raise ValueError("X and U must be finite (sample_matrix fills ND and missing values)")
    if (X < 0).any() or (U <= 0).any():
        raise ValueError("X must be ≥ 0 and U > 0")
    n, m = X.shape
    if not 1 <= p < m or n - 1 <= p:
        raise ValueError(f"n_factors must be between 1 and {m - 1} (one less than the elements) "
                         f"and below the samples; got {p} for a {n} × {m} matrix")
    return X, U


def _order(solution: Solution, X: np.ndarray) -> np.ndarray:
    """Factors by decreasing share of the mean-scaled total (a start-independent order)."""
    weight = (solution.F / X.mean(axis=0)).sum(axis=1)
    return np.argsort(-weight, kind="stable")


class PMF:
    """Positive Matrix Factorisation with EPA PMF 5.0 conventions.

    Parameters
    ----------
    n_factors
        Number of factors p.
    robust
        Down-weight values whose scaled residual |e/u| exceeds ``alpha`` (EPA robust
        mode, on by default as in EPA PMF).
    alpha
        Outlier threshold of robust mode.
    n_starts
        Random starts (EPA "base runs"); the one with the lowest Q(robust) is kept.
    max_iter
        Iteration cap of a run.
    tol
        Convergence: the objective fell by less than ``tol`` × Q over the last 20
        iterations. Starts are screened to ``start_tol``; the best is refined to ``tol``
        (profiles at 10⁻⁵ and 10⁻⁶ correlate above 0.999).
    start_tol
        Looser tolerance of the screening of starts.
    seed
        Seed of the random starts; the same seed gives identical arrays.

    Attributes
    ----------
    profiles_ : numpy.ndarray
        (p, m) factor profiles F in mg/kg: what each factor adds to an average sample.
    contributions_ : numpy.ndarray
        (n, p) factor contributions G, dimensionless, each column averaging 1.
    q_true_, q_robust_, q_expected_ : float
        Q of all values; Q in robust mode (an outlier adds α·|e/u|, EPA/ESAT); and
        n·m − p·(n + m).
    residuals_, scaled_residuals_ : numpy.ndarray
        (n, m) x − G F in mg/kg, and the same divided by u.
    runs_ : pandas.DataFrame
        The screening of the starts, one row per start: ``start, samples`` (rows it was
        fitted on: all, or :data:`SCREEN_SAMPLES` of them), ``q_true, q_robust, n_iter,
        converged`` (to ``start_tol``) and ``best`` (the start refined to ``tol``).
    n_iter_, converged_ : int, bool
        Iterations and convergence of the refinement of the best start on all samples.
    elements_, sample_ids_, factors_
        Column, row and factor labels (``F1`` … in decreasing order of the mean-scaled
        profile total).
    """

    def __init__(self, n_factors: int = 4, *, robust: bool = True, alpha: float = 4.0,
                 n_starts: int = DEFAULT_STARTS, max_iter: int = 5000, tol: float = 1e-5,
                 start_tol: float = 1e-4, seed: int = 0) -> None:
        self.n_factors = n_factors
        self.robust = robust
        self.alpha = alpha
        self.n_starts = n_starts
        self.max_iter = max_iter
        self.tol = tol
        self.start_tol = start_tol
        self.seed = seed

    def _solve(self, X: np.ndarray, U: np.ndarray, G: np.ndarray, F: np.ndarray,
               tol: float, **kwargs: object) -> list[Solution]:
        return solve(X, U, G, F, robust=self.robust, alpha=self.alpha, max_iter=self.max_iter,
                     tol=tol, **kwargs)

    def fit(self, X: np.ndarray, U: np.ndarray, *, elements: Sequence[str] | None = None,
            sample_ids: Sequence[object] | None = None) -> PMF:
        """Fit the factors.

        Parameters
        ----------
        X, U
            (n, m) concentrations and uncertainties in mg/kg, as
            :func:`~farmland.sources.matrix.sample_matrix` returns them.
        elements, sample_ids
            Labels of the columns and rows (default ``x1…`` and 0…n−1).

        Returns
        -------
        PMF
            ``self``, fitted.
        """
        X, U = _check_inputs(X, U, self.n_factors)
        n, m = X.shape
        rng = np.random.default_rng(self.seed)
        rows = (np.sort(rng.choice(n, SCREEN_SAMPLES, replace=False)) if n > SCREEN_SAMPLES
                else np.arange(n))
        starts = [random_start(X[rows], self.n_factors, rng) for _ in range(self.n_starts)]
        screened = self._solve(X[rows], U[rows], np.stack([g for g, _ in starts]),
                               np.stack([f for _, f in starts]), self.start_tol)
        best = int(np.argmin([s.q_robust for s in screened]))
        G0 = screened[best].G
        if len(rows) < n:  # contributions of all samples for the screened profiles first
            G0 = self._solve(X, U, np.ones((n, self.n_factors)), screened[best].F, self.start_tol,
                             hold_f=True)[0].G
        final = self._solve(X, U, G0, screened[best].F, self.tol, warmup=0)[0]
        self._set_solution(final, X, U)
        self.runs_ = pd.DataFrame([{"start": i, "samples": len(rows), "q_true": s.q_true,
                                    "q_robust": s.q_robust, "n_iter": s.n_iter,
                                    "converged": s.converged, "best": i == best}
                                   for i, s in enumerate(screened)])
        self.elements_ = tuple(elements) if elements is not None else tuple(
            f"x{j + 1}" for j in range(m))
        self.sample_ids_ = np.asarray(sample_ids) if sample_ids is not None else np.arange(n)
        self.factors_ = factor_names(self.n_factors)
        logger.info("PMF p = %d: Q(robust) %.1f, Q(true) %.1f, Q_exp %d; best of %d starts, "
                    "%d iterations, converged %s", self.n_factors, final.q_robust, final.q_true,
                    self.q_expected_, self.n_starts, final.n_iter, final.converged)
        return self

    def _set_solution(self, solution: Solution, X: np.ndarray, U: np.ndarray) -> None:
        order = _order(solution, X)
        self.contributions_ = solution.G[:, order]
        self.profiles_ = solution.F[order]
        self.q_true_ = solution.q_true
        self.q_robust_ = solution.q_robust
        n, m = X.shape
        self.q_expected_ = n * m - self.n_factors * (n + m)
        self.residuals_ = X - self.contributions_ @ self.profiles_
        self.scaled_residuals_ = self.residuals_ / U
        self.n_iter_ = solution.n_iter
        self.converged_ = solution.converged

    def profile_table(self) -> pd.DataFrame:
        """The factor profiles in EPA's three normalisations.

        Returns
        -------
        pandas.DataFrame
            One row per factor and element: ``factor, element, mg_kg`` (what the factor
            adds to an average sample), ``percent_of_species`` (its share of the
            element's modelled total, 100 · F_kj / Σ_k F_kj, since every factor's
            contributions average 1) and ``percent_of_factor`` (the element's share of
            the factor's profile total in mg/kg).
        """
        F = self.profiles_
        species = F.sum(axis=0)
        factor_total = F.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            pct_species = np.where(species > 0, 100 * F / species, 0.0)
            pct_factor = np.where(factor_total > 0, 100 * F / factor_total, 0.0)
        p, m = F.shape
        return pd.DataFrame({"factor": np.repeat(self.factors_, m),
                             "element": np.tile(self.elements_, p),
                             "mg_kg": F.ravel(), "percent_of_species": pct_species.ravel(),
                             "percent_of_factor": pct_factor.ravel()})

    def sample_contributions(self, elements: Sequence[str] | None = None) -> pd.DataFrame:
        """mg/kg of each element in each sample attributed to each factor.

        Parameters
        ----------
        elements
            Elements to list (default all).

        Returns
        -------
        pandas.DataFrame
            ``sample_id, element`` and one column per factor (``F1`` …) holding
            gᵢₖ·fₖⱼ in mg/kg, plus ``modelled`` (their sum) and ``residual`` (measured
            minus modelled, mg/kg, with ND and missing values as filled in the matrix).
        """
        chosen = list(self.elements_ if elements is None else elements)
        cols = [self.elements_.index(el) for el in chosen]
        G, F = self.contributions_, self.profiles_[:, cols]
        parts = G[:, None, :] * F.T[None, :, :]  # (n, elements, p)
        n, e, p = parts.shape
        frame = pd.DataFrame(parts.reshape(n * e, p), columns=self.factors_)
        frame.insert(0, "element", np.tile(chosen, n))
        frame.insert(0, "sample_id", np.repeat(self.sample_ids_, e))
        frame["modelled"] = parts.sum(axis=2).ravel()
        frame["residual"] = self.residuals_[:, cols].ravel()
        return frame
