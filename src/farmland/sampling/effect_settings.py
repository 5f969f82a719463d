"""What the planner's expected effect is computed with: the classification's settings
(:class:`EffectSettings`), the variogram of the main driving metal, and each parcel's
kind and class probabilities (issue 15 item 4; :mod:`farmland.sampling.expected`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from farmland import classes as C
from farmland.geostats.variogram import VariogramModel

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_RANGE_M", "FIXED", "INTERPOLATED", "SAMPLE_ERROR_CV", "TRUTHS",
           "UNCLASSIFIED", "EffectSettings", "main_variogram", "parcel_kinds",
           "probability_columns"]

INTERPOLATED, UNCLASSIFIED, FIXED = 0, 1, 2
DEFAULT_RANGE_M = 1000.0
#: smallest error of one sample against its parcel's mean soil, as a coefficient of
#: variation: lab repeatability (10–15 % for Cd) and the parcel's own variation around
#: the composite sample; a fitted nugget can be near 0 (docs/decisions.md)
SAMPLE_ERROR_CV = 0.2
#: where a parcel's true class is taken to lie (EffectSettings.truth)
TRUTHS = ("calibrated", "model")


@dataclass(frozen=True)
class EffectSettings:
    """Variogram, neighbourhood, distance limit and decision rule of the classification.

    ``probabilities`` is ``"point"`` (the kriging variance with the nugget, the shipped
    setting) or ``"parcel"`` (nugget taken off), as in :class:`farmland.classify.risk.
    CellRule`; ``tau3``/``tau2`` are the decision thresholds (½/½ for the median rule);
    ``sample_error_cv`` the floor of a new sample's error (:attr:`sample_error`).

    ``truth`` is where a parcel's true class is taken to lie in the expected effect the
    planner reports: ``"calibrated"`` (its ``p_calibrated_1..3`` where the run wrote
    them, :func:`farmland.sampling.preposterior.calibrated_truth`) or ``"model"`` (the
    kriging distribution); ``ranking_truth`` the one the greedy picks rank by. On the
    validation harness the calibrated truth predicted the realised effect of the plans
    (÷ 1.03 over 25 counties, the model's ÷ 0.56); ranking by it realised no more
    (−62 ± 56 亩 a county over 50 counties; docs/decisions.md "The planner's printed
    effect counts against the calibrated probabilities").
    """

    variogram: VariogramModel
    neighbours: int = 16
    max_distance: float = 1000.0
    tau3: float = 0.3
    tau2: float = 0.5
    probabilities: str = "point"
    sample_error_cv: float = SAMPLE_ERROR_CV
    truth: str = "calibrated"
    ranking_truth: str = "model"

    def __post_init__(self) -> None:
        for name in ("truth", "ranking_truth"):
            if getattr(self, name) not in TRUTHS:
                raise ValueError(f"{name} must be one of {TRUTHS}, got {getattr(self, name)!r}")

    @property
    def sample_error(self) -> float:
        """Error variance of one new sample against its parcel's soil: the variogram's
        nugget, at least ln(1 + CV²) of :attr:`sample_error_cv` (log-kriged metals)."""
        return max(self.variogram.nugget, float(np.log1p(self.sample_error_cv**2)))

    @classmethod
    def from_rules(cls, rules=None, *, variogram: VariogramModel | None = None,
                   variogram_range: float | None = None,
                   sample_error_cv: float | None = None) -> EffectSettings:
        """From a rules profile (:class:`farmland.rules.Rules` or its ``as_dict()``;
        default the shipped one), a variogram (default: exponential, no nugget, range
        ``variogram_range`` or 1 000 m) and the sample error's CV (default the rules'
        ``[points] error_cv``, the error of one value the classification takes; else
        :data:`SAMPLE_ERROR_CV`)."""
        if rules is None:
            from farmland.rules import load_rules
            rules = load_rules()
        interp = dict(rules["interpolation"])
        try:
            points = dict(rules["points"])
        except KeyError:  # a rules dict without the section (older manifests)
            points = {}
        risk = interp.get("decision", "median") == "risk"
        if variogram is None:
            rng = float(variogram_range) if variogram_range else DEFAULT_RANGE_M
            if not rng > 0:
                raise ValueError(f"variogram_range must be positive, got {variogram_range!r}")
            variogram = VariogramModel("exponential", 0.0, 1.0, rng)
        return cls(variogram=variogram, neighbours=int(interp.get("neighbours", 16)),
                   max_distance=float(interp.get("max_distance_m", 1000.0)),
                   tau3=float(interp.get("risk_class3", 0.5)) if risk else 0.5,
                   tau2=float(interp.get("risk_class2", 0.5)) if risk else 0.5,
                   probabilities=str(interp.get("probabilities", "point")),
                   sample_error_cv=float(
                       sample_error_cv if sample_error_cv is not None
                       else points.get("error_cv", SAMPLE_ERROR_CV)))

    def describe(self) -> str:
        return (f"kriging variance with {self.variogram.describe()}, k = {self.neighbours}, "
                f"sample error {self.sample_error:.3g}, "
                f"decision P(3) >= {self.tau3:g} / P(>=2) >= {self.tau2:g}, "
                f"truth {self.truth} (picks ranked by the {self.ranking_truth} truth)")


def main_variogram(models: dict, parcels: pd.DataFrame) -> VariogramModel | None:
    """The variogram of the metal driving the most class-2/3 area (Cd when none) among a
    run's fitted models (the manifest's ``geostatistics.models``: variable → ``model``,
    ``nugget``, ``sill``, ``range_m``); ``None`` when none was fitted (an IDW run)."""
    if not models:
        return None
    worse = pd.to_numeric(parcels["final_class"], errors="coerce").fillna(0) >= 2
    drivers = parcels.loc[worse.to_numpy()]
    ranked = drivers.groupby("driving_element")["area_mu"].sum().sort_values(ascending=False)
    for element in [*ranked.index, "cd"]:
        info = models.get(element) or {}
        if info.get("model"):
            log.info("the kriging-variance update uses the fitted %s variogram (%s)", element,
                     info.get("text", info["model"]))
            return VariogramModel.from_summary(info)
    return None


def parcel_kinds(parcels: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kind (interpolated / unclassified / fixed), class probabilities (n, 3) and their
    basis (``p_class``, ``class_share``, ``unclassified``, ``none``) of every parcel."""
    n = len(parcels)
    probs = probability_columns(parcels, "p_class_")
    basis = np.where(np.isfinite(probs).all(axis=1), "p_class", "none").astype(object)
    shares = probability_columns(parcels, "share_")
    use_shares = (basis == "none") & np.isfinite(shares).all(axis=1)
    probs[use_shares], basis[use_shares] = shares[use_shares], "class_share"
    unclassified = (C.as_class(parcels["final_class"].to_numpy()).isna().to_numpy()
                    if "final_class" in parcels else np.zeros(n, dtype=bool))
    rule = (parcels["rule"].astype(str).to_numpy() if "rule" in parcels
            else np.full(n, "interpolated"))
    interpolated = (pd.Series(rule).str.startswith("interpolated").to_numpy()
                    & ~pd.Series(rule).str.contains(";crops:").to_numpy())
    kind = np.full(n, FIXED, dtype=np.int8)
    kind[interpolated & (basis != "none") & ~unclassified] = INTERPOLATED
    kind[unclassified] = UNCLASSIFIED
    basis[unclassified] = "unclassified"
    return kind, probs, basis


def probability_columns(parcels: pd.DataFrame, prefix: str) -> np.ndarray:
    """(n, 3) floats of columns ``prefix`` 1..3 (NaN when any is missing)."""
    cols = [f"{prefix}{c}" for c in C.CLASS_CODES]
    if not all(c in parcels for c in cols):
        return np.full((len(parcels), 3), np.nan)
    return np.array(parcels[cols].apply(pd.to_numeric, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan))
