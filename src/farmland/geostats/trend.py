"""The variogram of the residuals from a linear trend (``[interpolation] trend``).

A metal that rises steadily across a county (a canal's water taken further downstream, a
slope of the bedrock) shows that rise in its raw variogram: pairs far apart differ more
because of the trend, not because of the spatial variation kriging has to model, so the
fitted sill and range come out larger than the variation around the local mean is.
Ordinary kriging in a moving neighbourhood (16 nearest samples) already follows such a
trend, because it re-estimates the mean in every neighbourhood (Journel & Rossi 1989,
"When do we need a trend model in kriging?", Math. Geol. 21: for interpolation, local
ordinary kriging does as well as universal kriging); what the trend spoils is the
variogram, and with it the kriging variance and the class probabilities.

With ``trend = "linear"`` the variogram is fitted to the residuals of a least-squares
plane a + b·x + c·y through the (log) values, and the kriging itself stays ordinary
kriging of the values. Measured on the validation harness (README "Validation"): the
same or better agreement, class-3 recall and "contaminated called clean" in every
scenario, where universal kriging with a linear drift in each neighbourhood changed
nothing but the precision (benchmarks/README.md "A trend").

The residuals keep the values' mean, so a residual variogram is read on the same scale.
A plane is affine-invariant: the residuals are the same in metres and in an
anisotropy's kriging space.
"""

from __future__ import annotations

import numpy as np

#: values of ``[interpolation] trend``
TRENDS = ("none", "linear")
#: coordinates are centred and scaled to kilometres before the least-squares fit
_KM = 1000.0
#: residuals spread less than this share of the values' magnitude are rounding noise
_ROUNDING = 1e-9


def residuals(coords: np.ndarray, values: np.ndarray, trend: str) -> np.ndarray:
    """``values`` minus their ``trend`` at ``coords`` ((n, 2) metres), plus the values' mean.

    ``"none"``: the values unchanged. ``"linear"``: the residuals of the least-squares
    plane; with fewer than 3 locations, or all on one line, the plane's free directions
    are left out (least squares of minimum norm), never made up.
    """
    if trend not in TRENDS:
        raise ValueError(f"trend must be one of {TRENDS}, got {trend!r}")
    z = np.asarray(values, dtype=float)
    if trend == "none" or len(z) == 0:
        return z
    xy = np.asarray(coords, dtype=float).reshape(-1, 2)
    design = np.column_stack([np.ones(len(z)), (xy - xy.mean(axis=0)) / _KM])
    beta = np.linalg.lstsq(design, z, rcond=None)[0]
    out = z - design[:, 1:] @ beta[1:]
    # values on a plane (constant ones among them) leave rounding noise, not variation:
    # their residuals are the mean, so the variogram fit sees values that do not vary
    if np.ptp(out) <= _ROUNDING * max(float(np.max(np.abs(z))), np.finfo(float).tiny):
        return np.full_like(out, z.mean())
    return out
