"""Bearings and the downwind share of a wind rose.

A wind rose gives, per sector, how often the wind blows *from* that direction
(meteorological convention, degrees clockwise from north). A cluster lying at bearing β
from a source is downwind of it when the wind blows *towards* β, i.e. from β + 180°.
The downwind share is the rose's frequency over the arc of directions that carry air
from the source onto the cluster: centred on β + 180°, as wide as the cluster seen from
the source, and never narrower than one sector. Each sector's frequency is spread evenly
over its width, so an arc that covers half a sector takes half its frequency.

The share is compared with a calm, uniform rose over the same arc
(``downwind_ratio`` = share / (arc / 360°)): 1 means no preference, 2 twice as often
downwind as a uniform wind would be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["bearing_deg", "downwind_share"]


def bearing_deg(x0, y0, x1, y1) -> np.ndarray:
    """Bearing (degrees clockwise from grid north, 0–360) from (x0, y0) to (x1, y1).

    Coordinates are in a projected CRS; grid north differs from true north by the
    meridian convergence (under 2° inside a 3° Gauss–Krüger zone), negligible here.
    """
    dx = np.asarray(x1, float) - np.asarray(x0, float)
    dy = np.asarray(y1, float) - np.asarray(y0, float)
    return np.mod(np.degrees(np.arctan2(dx, dy)), 360.0)


def downwind_share(rose: pd.DataFrame, bearing: float, half_width: float = 0.0
                   ) -> tuple[float, float]:
    """How often the wind carries air from a source towards ``bearing``.

    Parameters
    ----------
    rose
        ``direction_deg`` (sector centre, wind blowing from) and ``frequency`` (fractions
        summing to 1), as :func:`farmland.io.read_wind_rose` returns; sectors of equal width.
    bearing
        Bearing from the source to the receptor, degrees.
    half_width
        Half the angle the receptor spans seen from the source, degrees; widened to half
        a sector when smaller.

    Returns
    -------
    (share, ratio)
        Frequency of winds blowing towards the arc, and that share divided by the arc's
        share of a uniform rose.
    """
    centres = np.sort(np.mod(rose["direction_deg"].to_numpy(float), 360.0))
    freq = rose.set_index(np.mod(rose["direction_deg"].to_numpy(float), 360.0)
                          )["frequency"].reindex(centres).to_numpy(float)
    width = 360.0 / len(centres)
    half = min(max(float(half_width), width / 2.0), 180.0)
    upwind = np.mod(bearing + 180.0, 360.0)
    share = 0.0
    for c, f in zip(centres, freq, strict=True):
        share += f * _overlap(c, width, upwind, half) / width
    arc = 2.0 * half
    return float(share), float(share / (arc / 360.0))


def _overlap(centre: float, width: float, target: float, half: float) -> float:
    """Degrees of overlap between the sector [centre ± width/2] and the arc [target ± half]
    (half ≤ 180°), on the circle."""
    d = (centre - target + 180.0) % 360.0 - 180.0  # sector centre relative to the arc's
    lo, hi = d - width / 2.0, d + width / 2.0
    return float(sum(max(0.0, min(hi, k + half) - max(lo, k - half))
                     for k in (-360.0, 0.0, 360.0)))
