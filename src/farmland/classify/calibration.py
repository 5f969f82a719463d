"""Calibrated class probabilities: a monotone map fitted on the validation harness (issue 15).

A parcel's ``p_class_1..3`` are the area means of its cells' class probabilities from
the kriging distributions. On the truth-known counties of the validation harness they
are too timid in the middle (parcels given P(class 1) of 0.75 were class 1 about 88 %
of the time) and too sure at the ends: the kriging variance is that of a point, not of
the parcel mean the class is about, the elements are combined as if independent, and
the cells of a parcel are far from independent. The map corrects what they *say*
(written as ``p_calibrated_1..3``) without changing what they *decide*: the cells'
classes, the decision rule, the uncertain-parcel flag and the planner's pre-posterior
keep the model's ``p_class`` (the planner's latent needs their link to the kriging
variance).

The classes are ordered, so the map works on the two cumulative probabilities
P(class ≥ 2) = p2 + p3 and P(class 3) = p3, each through its own non-decreasing
function fitted by weighted isotonic regression (weights: parcel areas) on the harness
counties, and linear between the fitted knots::

    q(≥2) = f₂(p2 + p3),  q3 = min(f₃(p3), q(≥2)),
    q1 = 1 − q(≥2),       q2 = q(≥2) − q3

so calibrating P(class ≥ 2) calibrates ``p_class_1`` exactly and the three still sum to 1.
The shipped table (``calibration.csv`` beside this module: ``event``, ``raw``,
``calibrated``) is fitted by ``benchmarks/calibration.py`` on counties held apart from
those the README's validation table is measured on. docs/decisions.md "Calibrated
class probabilities".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["CalibrationMap", "fit_calibration", "load_calibration"]

#: the two cumulative events the map calibrates, as written in the table's ``event`` column
EVENTS = ("class_ge2", "class3")
#: the fitted values are kept within [0.001, 0.999]: no class-2 land among the fitting
#: parcels the model was surest of is no proof that there is none anywhere
CERTAINTY_LIMIT = 0.001


@dataclass(frozen=True)
class CalibrationMap:
    """Knots of the two monotone maps (raw → calibrated, both non-decreasing in raw)."""

    ge2_raw: np.ndarray
    ge2_calibrated: np.ndarray
    class3_raw: np.ndarray
    class3_calibrated: np.ndarray

    def apply(self, p1, p2, p3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated ``(p1, p2, p3)``; NaN wherever any input is NaN. ``p1`` is not read
        beyond its NaNs (it is 1 − p2 − p3 by construction)."""
        p1, p2, p3 = (np.asarray(p, dtype=float) for p in (p1, p2, p3))
        known = np.isfinite(p1) & np.isfinite(p2) & np.isfinite(p3)
        ge2 = np.interp(np.clip(np.where(known, p2 + p3, 0.0), 0.0, 1.0), self.ge2_raw,
                        self.ge2_calibrated)
        q3 = np.minimum(np.interp(np.clip(np.where(known, p3, 0.0), 0.0, 1.0),
                                  self.class3_raw, self.class3_calibrated), ge2)
        nan = np.full(p1.shape, np.nan)
        return (np.where(known, 1.0 - ge2, nan), np.where(known, ge2 - q3, nan),
                np.where(known, q3, nan))

    def to_frame(self) -> pd.DataFrame:
        """The table as written to ``calibration.csv``."""
        parts = [pd.DataFrame({"event": name, "raw": raw, "calibrated": cal})
                 for name, raw, cal in ((EVENTS[0], self.ge2_raw, self.ge2_calibrated),
                                        (EVENTS[1], self.class3_raw, self.class3_calibrated))]
        return pd.concat(parts, ignore_index=True)

    @classmethod
    def from_frame(cls, table: pd.DataFrame) -> CalibrationMap:
        """From a table with ``event``, ``raw`` and ``calibrated``; each event's knots must
        be increasing in ``raw`` and non-decreasing in ``calibrated``, within [0, 1]."""
        knots = []
        for name in EVENTS:
            part = table[table["event"] == name]
            raw = part["raw"].to_numpy(dtype=float)
            cal = part["calibrated"].to_numpy(dtype=float)
            if (len(raw) < 2 or np.any(np.diff(raw) <= 0) or np.any(np.diff(cal) < 0)
                    or raw.min() < 0 or raw.max() > 1 or cal.min() < 0 or cal.max() > 1):
                raise ValueError(f"calibration table: the knots of {name!r} must be at least "
                                 "two, increasing in raw and non-decreasing in calibrated, "
                                 "all within 0..1")
            knots += [raw, cal]
        return cls(*knots)


def _knots(raw: np.ndarray, event: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted isotonic regression of ``event`` on ``raw``: one knot per fitted block at
    the block's weighted mean raw value, plus the ends 0 and 1 held at the end blocks'
    values, the fitted values within [:data:`CERTAINTY_LIMIT`, 1 − CERTAINTY_LIMIT]."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(raw, kind="stable")
    x, y, w = raw[order], event[order].astype(float), weight[order]
    fit = isotonic_regression(y, weights=w)
    blocks = fit.blocks
    starts, stops = blocks[:-1], blocks[1:]
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwx = np.concatenate([[0.0], np.cumsum(w * x)])
    kx = (cwx[stops] - cwx[starts]) / (cw[stops] - cw[starts])
    ky = fit.x[starts]
    # six decimals, as the table is written; equal knots after rounding: keep the first
    kx, first = np.unique(np.round(kx, 6), return_index=True)
    ky = np.round(ky[first], 6)
    if kx[0] > 0.0:
        kx, ky = np.concatenate([[0.0], kx]), np.concatenate([[ky[0]], ky])
    if kx[-1] < 1.0:
        kx, ky = np.concatenate([kx, [1.0]]), np.concatenate([ky, [ky[-1]]])
    return kx, np.clip(np.maximum.accumulate(ky), CERTAINTY_LIMIT, 1.0 - CERTAINTY_LIMIT)


def fit_calibration(probabilities: pd.DataFrame, true_class, weight) -> CalibrationMap:
    """Fit the map on parcels with known true classes.

    Parameters
    ----------
    probabilities
        ``p_class_1..3`` per parcel (rows with any NaN are left out).
    true_class
        The parcels' true classes (1, 2, 3).
    weight
        Parcel areas.
    """
    p = probabilities[["p_class_1", "p_class_2", "p_class_3"]].to_numpy(dtype=float)
    t = np.asarray(true_class, dtype=float)
    w = np.asarray(weight, dtype=float)
    keep = np.isfinite(p).all(axis=1) & np.isfinite(t) & (w > 0)
    if keep.sum() < 2:
        raise ValueError("fit_calibration needs at least two parcels with probabilities")
    p, t, w = p[keep], t[keep], w[keep]
    ge2 = _knots(np.clip(p[:, 1] + p[:, 2], 0.0, 1.0), t >= 2, w)
    c3 = _knots(np.clip(p[:, 2], 0.0, 1.0), t == 3, w)
    return CalibrationMap(*ge2, *c3)


@lru_cache(maxsize=4)
def load_calibration(name: str = "harness") -> CalibrationMap | None:
    """The shipped map (``"harness"``), or None for ``"none"``."""
    if name == "none":
        return None
    if name != "harness":
        raise ValueError(f"unknown calibration {name!r}: 'harness' or 'none'")
    with resources.as_file(resources.files("farmland.classify") / "calibration.csv") as path:
        return CalibrationMap.from_frame(pd.read_csv(path))
