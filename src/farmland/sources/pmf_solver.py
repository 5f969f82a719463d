"""The weighted non-negative factorisation behind :class:`farmland.sources.pmf.PMF`.

Minimises the PMF objective Q = Σᵢⱼ ((xᵢⱼ − Σₖ gᵢₖ fₖⱼ) / uᵢⱼ)² over G ≥ 0, F ≥ 0 by
block coordinate descent: each iteration updates every column of G, then every row of
F, each one exactly (the minimum of a one-variable quadratic, clipped at 0), from the
weighted Gram matrices of the other block (four sweeps each). Q never increases. This is
alternating weighted non-negative least squares solved by coordinate descent (weighted
HALS); it needs about as many iterations as ME-2's conjugate-gradient steps and far fewer
than the multiplicative updates of LS-NMF (which EPA's ESAT uses).

Robust mode (Paatero 1997, EPA PMF 5.0): a value whose scaled residual |e/u| exceeds α
gets the uncertainty u·sqrt(|e/u|/α), re-set every iteration from the current residuals
(iteratively reweighted least squares, which minimises the Huber loss). Q(robust) is
reported as EPA's ESAT computes it: Σ r² with r = e/u where |e/u| ≤ α and
r = e / (u·sqrt(|e/u|/α)) beyond, so an outlier adds α·|e/u| instead of (e/u)².
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: coordinate-descent sweeps over the factors in each half-step
INNER_SWEEPS = 4
#: iterations without down-weighting before robust mode starts (the fit is still rough)
ROBUST_WARMUP = 20


@dataclass(frozen=True)
class Solution:
    """One converged (or stopped) run of the solver."""

    G: np.ndarray
    F: np.ndarray
    q_true: float
    q_robust: float
    n_iter: int
    converged: bool


def scaled_residuals(X: np.ndarray, U: np.ndarray, G: np.ndarray, F: np.ndarray) -> np.ndarray:
    """(X − G F) / U."""
    return (X - G @ F) / U


def q_values(scaled: np.ndarray, alpha: float) -> tuple[float, float]:
    """Q(true) and Q(robust) of scaled residuals (EPA / ESAT definitions)."""
    r2 = scaled * scaled
    q_true = float(r2.sum())
    a = np.abs(scaled)
    q_robust = float(np.where(a > alpha, alpha * a, r2).sum())
    return q_true, q_robust


def _weights(U2inv: np.ndarray, scaled: np.ndarray | None, alpha: float) -> np.ndarray:
    """1/u², or 1/(u²·|e/u|/α) where |e/u| > α (robust mode)."""
    if scaled is None:
        return U2inv
    a = np.abs(scaled)
    return U2inv * (alpha / np.maximum(a, alpha))


def _objective(scaled: np.ndarray, alpha: float, robust: bool) -> np.ndarray:
    """Per start: Q(true), or the Huber loss robust mode minimises (2α|r| − α² beyond α)."""
    if not robust:
        return np.einsum("snm,snm->s", scaled, scaled)
    a = np.abs(scaled)
    return np.where(a > alpha, 2.0 * alpha * a - alpha * alpha, a * a).sum(axis=(1, 2))


def _outer(A: np.ndarray) -> np.ndarray:
    """(S, r, p) → (S, r, p·p) products A[s, r, a] · A[s, r, b]."""
    S, r, p = A.shape
    return (A[:, :, :, None] * A[:, :, None, :]).reshape(S, r, p * p)


def _coordinate_descent(B: np.ndarray, H: np.ndarray, V: np.ndarray, sweeps: int) -> np.ndarray:
    """Minimise Σ_r (½ vᵣᵀ Hᵣ vᵣ − bᵣᵀ vᵣ) over V ≥ 0 one coordinate at a time.

    B, V are (rows, p), H is (rows, p, p); returns the new V (rows, p). A coordinate whose
    curvature is 0 (a factor with an all-zero profile or contributions) stays where it is.
    Works on transposed copies so that every coordinate step reads contiguous memory.
    """
    rows, p = V.shape
    Ht = np.ascontiguousarray(H.reshape(rows, p * p).T).reshape(p, p, rows)
    Bt, Vt = np.ascontiguousarray(B.T), np.ascontiguousarray(V.T)
    inv_diag = 1.0 / np.maximum(Ht[np.arange(p), np.arange(p)], 1e-300)
    for _ in range(sweeps):
        for a in range(p):
            step = Bt[a] - np.einsum("br,br->r", Ht[a], Vt)
            step *= inv_diag[a]
            step += Vt[a]
            np.maximum(step, 0.0, out=Vt[a])
    return Vt.T


def _normalise(G: np.ndarray, F: np.ndarray) -> None:
    """Scale each start's G columns to mean 1 (F rows inversely), in place; Q is unchanged."""
    mean = G.mean(axis=1)
    scale = np.where(mean > 0, mean, 1.0)
    G /= scale[:, None, :]
    F *= scale[:, :, None]


def _half_steps(X: np.ndarray, Wt: np.ndarray, G: np.ndarray, F: np.ndarray,
                hold_f: bool) -> np.ndarray:
    """One exact-coordinate pass over G, then over F (returned; G is updated in place)."""
    S, n, p = G.shape
    m = X.shape[-1]
    WX = Wt * X
    Ft = F.transpose(0, 2, 1)
    H = (Wt @ _outer(Ft)).reshape(S * n, p, p)
    G[...] = _coordinate_descent((WX @ Ft).reshape(S * n, p), H, G.reshape(S * n, p),
                                 INNER_SWEEPS).reshape(S, n, p)
    if hold_f:
        return F
    B = (G.transpose(0, 2, 1) @ WX).transpose(0, 2, 1).reshape(S * m, p)
    H = (np.swapaxes(Wt, -1, -2) @ _outer(G)).reshape(S * m, p, p)
    Ft = _coordinate_descent(B, H, Ft.reshape(S * m, p), INNER_SWEEPS)
    return np.ascontiguousarray(Ft.reshape(S, m, p).transpose(0, 2, 1))


def solve(X: np.ndarray, U: np.ndarray, G: np.ndarray, F: np.ndarray, *, robust: bool = True,
          alpha: float = 4.0, max_iter: int = 2000, tol: float = 1e-6, window: int = 20,
          hold_f: bool = False, warmup: int = ROBUST_WARMUP) -> list[Solution]:
    """Fit G and F from one or several starts, each until its objective stops falling.

    Parameters
    ----------
    X, U
        (n, m) data and uncertainties (U > 0), shared by all starts, or (S, n, m), one
        matrix per start (bootstrap resamples).
    G, F
        Starts: (S, n, p) and (S, p, m) non-negative arrays (or (n, p) and (p, m) for one
        start); copied. All starts are solved together, as one batch.
    robust
        Down-weight values with |e/u| > ``alpha`` (after ``warmup`` iterations).
    alpha
        Outlier threshold of robust mode.
    max_iter
        Iteration cap.
    tol, window
        A start has converged when its objective (Q, or the Huber loss in robust mode)
        fell by less than ``tol`` × its value over the last ``window`` iterations (in
        robust mode counted from the start of robust mode).
    hold_f
        Keep F fixed and fit G only.
    warmup
        Iterations without down-weighting before robust mode starts; 0 when the start
        is already a robust solution (refining, bootstrap).

    Returns
    -------
    list of Solution
        One per start, in order: G normalised to column means of 1, F in the units of X,
        Q(true), Q(robust), iterations, and whether the convergence test was met.

    Notes
    -----
    Each iteration ends with an extrapolation along the last step (Ang & Gillis 2019),
    kept only when it lowers the objective: the step factor grows by 10 % after a success
    and halves after a failure. It halves the iterations along PMF's flat rotational
    directions; every kept point has a lower objective than the one before.
    """
    G, F = np.array(G, dtype=float), np.array(F, dtype=float)
    if G.ndim == 2:
        G, F = G[None], F[None]
    U2inv = 1.0 / (U * U)
    ids = np.arange(len(G))
    results: list[Solution | None] = [None] * len(G)
    history = np.full((len(G), max_iter + 2), np.nan)
    scaled = (X - G @ F) / U
    current = _objective(scaled, alpha, robust and warmup == 0)
    beta, counted, it = np.full(len(G), 0.5), 0, 0
    for it in range(1, max_iter + 1):
        use_robust = robust and it > warmup
        if robust and warmup and it == warmup + 1:
            current, counted = _objective(scaled, alpha, True), 0
        Wt = _weights(U2inv, scaled if use_robust else None, alpha)
        G_old, F_old = G.copy(), F
        F = _half_steps(X, Wt, G, F, hold_f)
        b = beta[:, None, None]
        G_try = np.maximum(G + b * (G - G_old), 0.0)
        F_try = F if hold_f else np.maximum(F + b * (F - F_old), 0.0)
        scaled_try = (X - G_try @ F_try) / U
        tried = _objective(scaled_try, alpha, use_robust)
        ok = tried < current
        G[ok], F[ok], scaled[ok], current[ok] = G_try[ok], F_try[ok], scaled_try[ok], tried[ok]
        beta = np.where(ok, np.minimum(1.0, 1.1 * beta), beta / 2)
        if not ok.all():
            Xb, Ub = (X[~ok], U[~ok]) if X.ndim == 3 else (X, U)
            scaled[~ok] = (Xb - G[~ok] @ F[~ok]) / Ub
            current[~ok] = _objective(scaled[~ok], alpha, use_robust)
        _normalise(G, F)
        history[:, counted] = current
        counted += 1
        if counted <= window:
            continue
        done = history[:, counted - window - 1] - current < tol * current
        if done.any():
            for k in np.nonzero(done)[0]:
                results[ids[k]] = Solution(G[k].copy(), F[k].copy(), *q_values(scaled[k], alpha), it, True)
            keep = ~done
            ids, G, F, scaled, current, beta = (a[keep] for a in (ids, G, F, scaled, current, beta))
            history = history[keep]
            if X.ndim == 3:
                X, U, U2inv = X[keep], U[keep], U2inv[keep]
            if not len(ids):
                break
    for k, i in enumerate(ids):
        results[i] = Solution(G[k], F[k], *q_values(scaled[k], alpha), it, False)
    return [r for r in results if r is not None]


def random_start(X: np.ndarray, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random non-negative G (mean 1) and F (rows around the column means of X / p)."""
    n, m = X.shape
    G = rng.uniform(0.0, 2.0, size=(n, p))
    F = rng.uniform(0.05, 1.0, size=(p, m)) * (2.0 * X.mean(axis=0) / p)
    return G, F
