"""PCA / APCS-MLR source apportionment (Thurston & Spengler 1985), as analysts run it in SPSS.

1. z-score the concentrations (sample standard deviation, n − 1);
2. principal components of their correlation matrix; keep the components with an
   eigenvalue above 1 (Kaiser) or a given number;
3. varimax rotation with Kaiser normalisation (SPSS's default);
4. factor scores by the regression method, and the scores of an artificial sample with
   zero concentration of every element (its z-score is −mean/sd); the absolute principal
   component scores (APCS) are the scores minus the zero sample's;
5. regress each element on the APCS: xⱼ = b₀ⱼ + Σₖ bₖⱼ·APCSₖ. bₖⱼ·APCSᵢₖ is the mg/kg of
   element j in sample i from factor k; b₀ⱼ is the part no factor explains.

Each rotated factor is oriented so that its loadings sum to a positive number (the sign of
a component is arbitrary; the contributions do not depend on it) and the factors are
ordered by the variance they explain after rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from farmland.sources.pmf import factor_names

logger = logging.getLogger(__name__)


def varimax(loadings: np.ndarray, *, normalize: bool = True, max_iter: int = 1000,
            tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Varimax rotation (Kaiser 1958).

    Parameters
    ----------
    loadings
        (m, p) unrotated loadings.
    normalize
        Kaiser normalisation: rotate the rows scaled to unit communality (SPSS default).
    max_iter, tol
        Stop when no element of the rotation changed by more than ``tol``.

    Returns
    -------
    rotated, rotation
        (m, p) rotated loadings ``loadings @ rotation`` and the (p, p) orthogonal rotation.
    """
    L = np.asarray(loadings, dtype=float)
    m, p = L.shape
    if p < 2:
        return L.copy(), np.eye(p)
    h = np.sqrt((L**2).sum(axis=1)) if normalize else np.ones(m)
    A = L / np.where(h > 0, h, 1.0)[:, None]
    R = np.eye(p)
    for _ in range(max_iter):
        B = A @ R
        u, _, vt = np.linalg.svd(A.T @ (B**3 - B * (B**2).sum(axis=0) / m))
        R, previous = u @ vt, R
        if np.abs(R - previous).max() < tol:
            break
    return L @ R, R


class APCS:
    """Absolute principal component scores with multiple linear regression.

    Parameters
    ----------
    n_factors
        Components to keep; default: those with eigenvalue > 1 (Kaiser criterion).

    Attributes
    ----------
    eigenvalues_ : numpy.ndarray
        (m,) eigenvalues of the correlation matrix, largest first.
    explained_variance_ratio_ : numpy.ndarray
        (m,) their shares of the total (m).
    n_factors_ : int
        Components kept.
    loadings_ : numpy.ndarray
        (m, p) varimax-rotated loadings (correlation of element and factor).
    score_coefficients_ : numpy.ndarray
        (m, p) factor score coefficients (regression method): scores = z @ coefficients.
    scores_, apcs_ : numpy.ndarray
        (n, p) rotated factor scores and absolute principal component scores.
    zero_scores_ : numpy.ndarray
        (p,) scores of the artificial zero-concentration sample.
    coefficients_ : numpy.ndarray
        (p, m) regression coefficients bₖⱼ (mg/kg per unit APCS).
    intercept_ : numpy.ndarray
        (m,) b₀ⱼ in mg/kg: the part of each element no factor explains.
    r2_ : numpy.ndarray
        (m,) coefficient of determination of each element's regression.
    contributions_ : numpy.ndarray
        (n, p, m) bₖⱼ·APCSᵢₖ in mg/kg.
    elements_, sample_ids_, factors_
        Labels of columns, rows and factors (``F1`` …).
    """

    def __init__(self, n_factors: int | None = None) -> None:
        self.n_factors = n_factors

    def fit(self, X: np.ndarray, *, elements: Sequence[str] | None = None,
            sample_ids: Sequence[object] | None = None) -> APCS:
        """Fit PCA, rotation, APCS and the regressions.

        Parameters
        ----------
        X
            (n, m) concentrations in mg/kg (no NaN; ``sample_matrix`` fills them).
        elements, sample_ids
            Labels of the columns and rows.

        Returns
        -------
        APCS
            ``self``, fitted.
        """
        X = np.asarray(X, dtype=float)
        n, m = X.shape
        if n <= m or not np.isfinite(X).all():
            raise ValueError(f"X must be finite with more samples than elements, got {X.shape}")
        mean, sd = X.mean(axis=0), X.std(axis=0, ddof=1)
        if (sd == 0).any():
            raise ValueError("an element has the same value in every sample")
        Z = (X - mean) / sd
        eigenvalues, vectors = np.linalg.eigh(np.corrcoef(X, rowvar=False))
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, vectors = np.clip(eigenvalues[order], 0.0, None), vectors[:, order]
        p = self.n_factors or max(1, int((eigenvalues > 1.0).sum()))
        if not 1 <= p <= m:
            raise ValueError(f"n_factors must be between 1 and {m}, got {p}")
        loadings, rotation = varimax(vectors[:, :p] * np.sqrt(eigenvalues[:p]))
        coefficients = (vectors[:, :p] / np.sqrt(eigenvalues[:p])) @ rotation
        sign = np.where(loadings.sum(axis=0) < 0, -1.0, 1.0)
        keep = np.argsort(-(loadings**2).sum(axis=0), kind="stable")
        self.loadings_ = (loadings * sign)[:, keep]
        self.score_coefficients_ = (coefficients * sign)[:, keep]
        self.eigenvalues_ = eigenvalues
        self.explained_variance_ratio_ = eigenvalues / m
        self.n_factors_ = p
        self.scores_ = Z @ self.score_coefficients_
        self.zero_scores_ = (-mean / sd) @ self.score_coefficients_
        self.apcs_ = self.scores_ - self.zero_scores_
        design = np.column_stack([np.ones(n), self.apcs_])
        beta, *_ = np.linalg.lstsq(design, X, rcond=None)
        self.intercept_, self.coefficients_ = beta[0], beta[1:]
        residual = X - design @ beta
        self.r2_ = 1.0 - (residual**2).sum(axis=0) / ((X - mean) ** 2).sum(axis=0)
        self.contributions_ = self.apcs_[:, :, None] * self.coefficients_[None, :, :]
        self.elements_ = tuple(elements) if elements is not None else tuple(
            f"x{j + 1}" for j in range(m))
        self.sample_ids_ = np.asarray(sample_ids) if sample_ids is not None else np.arange(n)
        self.factors_ = factor_names(p)
        self._mean = mean
        logger.info("APCS-MLR: %d factor(s) (%s), r² %s", p,
                    "given" if self.n_factors else "eigenvalue > 1",
                    ", ".join(f"{e} {r:.2f}" for e, r in zip(self.elements_, self.r2_,
                                                             strict=True)))
        return self

    def contribution_table(self) -> pd.DataFrame:
        """Mean source contributions per element.

        Returns
        -------
        pandas.DataFrame
            One row per element and source (``F1`` … and ``unexplained``, the intercept):
            ``element, factor, mean_mg_kg`` (mean of bₖⱼ·APCSᵢₖ over the samples, or
            b₀ⱼ), ``percent`` (of the element's mean concentration; the rows of an
            element add up to 100, a negative share is a negative coefficient) and
            ``r2`` (the element's regression).
        """
        means = self.contributions_.mean(axis=0)  # (p, m)
        rows = []
        for j, el in enumerate(self.elements_):
            parts = [*means[:, j], self.intercept_[j]]
            for name, value in zip([*self.factors_, "unexplained"], parts, strict=True):
                rows.append({"element": el, "factor": name, "mean_mg_kg": value,
                             "percent": 100.0 * value / self._mean[j], "r2": self.r2_[j]})
        return pd.DataFrame(rows)

    def loading_table(self) -> pd.DataFrame:
        """Rotated loadings as a table: ``element`` and one column per factor."""
        table = pd.DataFrame(self.loadings_, columns=self.factors_)
        table.insert(0, "element", list(self.elements_))
        return table
