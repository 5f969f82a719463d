"""Class probabilities of interpolated cells and the decision rule (issue 15, item 2).

Three settings of ``[interpolation]`` in the rules profile decide how an interpolated
cell is classed and how sure the parcel's ``p_class_*`` are:

``probabilities`` — ``"point"`` or ``"parcel"``
    The kriging variance of ln Z at a cell is the variance of a *point* value: it
    holds the nugget (lab error and micro-scale variation). A parcel's class is about
    its *mean* soil, over which both average out, so ``"parcel"`` takes the nugget off
    (the variance of the noise-free surface, ``σ²_OK − c₀``; filtered kriging has the
    same weights away from the samples).
``ph_uncertainty`` — ``true`` or ``false``
    The thresholds depend on the pH band. With ``true`` a cell's exceedance
    probability is ``Σ_b P(pH in band b) · P(Z > S_b)``, with the kriged pH normal
    (its variance treated as the metals'); with ``false`` the band of the kriged pH.
``decision`` — ``"median"`` or ``"risk"``
    ``"median"`` classes a cell by the kriged median against the thresholds;
    ``"risk"`` by its probabilities: class 3 when ``P(3) ≥ risk_class3``, else class 2
    when ``P(2) + P(3) ≥ risk_class2``, else class 1 (the precautionary rule: below
    0.5 it calls land contaminated before its median does).
``fallback_variance`` — ``"loo"`` or ``"none"``
    A variable whose kriging fell back to IDW gets the IDW estimate with its
    cross-validated error variance (:mod:`farmland.geostats.fallback`) with ``"loo"``;
    with ``"none"`` its exceedances are certain (0 or 1), as before.
``calibration`` — ``"harness"`` or ``"none"``
    The parcels' ``p_class_*`` (area means of the cells' probabilities) are passed
    through the monotone map fitted on the validation harness
    (:mod:`farmland.classify.calibration`); the cells' decision is not affected.

The defaults and the measurements behind them are in docs/decisions.md
("Precautionary classes").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

__all__ = ["CellRule", "band_probabilities", "risk_classes"]


@dataclass(frozen=True)
class CellRule:
    """The three settings (see the module docstring)."""

    probabilities: str = "point"
    ph_uncertainty: bool = False
    decision: str = "median"
    risk_class3: float = 0.5
    risk_class2: float = 0.5
    fallback_variance: str = "none"
    calibration: str = "none"

    @classmethod
    def from_rules(cls, section: Mapping[str, object]) -> CellRule:
        """From the rules profile's ``[interpolation]`` section (absent keys: today's rule)."""
        keys = ("probabilities", "ph_uncertainty", "decision", "risk_class3", "risk_class2",
                "fallback_variance", "calibration")
        return cls(**{k: section[k] for k in keys if k in section})

    def describe(self) -> dict[str, object]:
        return {"probabilities": self.probabilities, "ph_uncertainty": self.ph_uncertainty,
                "decision": self.decision, "risk_class3": self.risk_class3,
                "risk_class2": self.risk_class2, "fallback_variance": self.fallback_variance,
                "calibration": self.calibration}


def band_probabilities(mean: np.ndarray, var: np.ndarray, edges: np.ndarray,
                       ph_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """P(pH in band b) per cell for a normal pH, and one pH inside each band.

    Bands are closed on the right (a pH equal to an inner edge belongs to the lower
    band). Returns ``(probs (n, n_bands), representative pH (n_bands,))``; a cell with
    no variance (or NaN moments) puts all its weight on its mean's band.
    """
    low, high = ph_range
    cuts = np.concatenate([[-np.inf], np.asarray(edges, float), [np.inf]])
    sd = np.sqrt(np.maximum(np.asarray(var, float), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (cuts[None, :] - np.asarray(mean, float)[:, None]) / sd[:, None]
    cdf = ndtr(z)
    sure = ~(sd > 0) | ~np.isfinite(np.asarray(mean, float))
    if sure.any():  # the band of the mean, with certainty
        band = np.searchsorted(np.asarray(edges, float), np.asarray(mean, float)[sure],
                               side="left")
        cdf[sure] = (np.arange(len(cuts))[None, :] > band[:, None]).astype(float)
    probs = np.diff(cdf, axis=1)
    inner = np.concatenate([[max(low, float(edges[0]) - 1.0)], np.asarray(edges, float),
                            [min(high, float(edges[-1]) + 1.0)]])
    reps = (inner[:-1] + inner[1:]) / 2.0
    return np.clip(probs, 0.0, 1.0), reps


def risk_classes(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, *, tau3: float,
                 tau2: float) -> np.ndarray:
    """Cell classes of the ``"risk"`` decision (0 where the probabilities are NaN)."""
    p3 = np.asarray(p3, float)
    ge2 = np.asarray(p2, float) + p3
    cls = np.where(p3 >= tau3, 3, np.where(ge2 >= tau2, 2, 1))
    return np.where(np.isfinite(p1) & np.isfinite(p2) & np.isfinite(p3), cls, 0).astype(np.int8)
