"""The estimators behind the interpolated surfaces, fitted once per run.

Each class-driving element and pH gets one model per run: a variogram fitted on all
usable samples (or the reason kriging fell back to IDW). :class:`SurfaceModels` is the
``variable -> estimator`` factory that every consumer shares — the parcel
classification, its dask partitions, the cross-validation report and the GeoTIFFs — so
they all use the same variograms and none fits them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from farmland.geostats.estimators import IDW, LocalKriging
from farmland.geostats.fallback import idw_error_variance
from farmland.geostats.located import located_samples
from farmland.rules import Rules
from farmland.standards import CLASS_ELEMENTS

VARIABLES = ("ph", *CLASS_ELEMENTS)


def interpolation_values(samples: pd.DataFrame, variable: str) -> np.ndarray:
    """Values a surface is fitted on: NaN where missing, where the outlier screening marked
    the value suspect (``<variable>_suspect``; :mod:`farmland.classify.outliers`) and, for
    the metals (kriged on log-values), where not positive."""
    values = pd.to_numeric(samples[variable], errors="coerce").to_numpy(dtype=float,
                                                                         na_value=np.nan)
    suspect = f"{variable}_suspect"
    if suspect in samples:
        values = np.where(samples[suspect].fillna(False).to_numpy(bool), np.nan, values)
    return values if variable == "ph" else np.where(values > 0, values, np.nan)


def fixed_nugget(rules: Rules, variable: str) -> float | None:
    """The nugget a variable's variogram is fitted with under ``[interpolation] nugget``:
    ``None`` with ``"fitted"`` (the fit chooses it); with ``"measurement"`` the variance
    of one sample's measurement error — ln(1 + cv²) of ``[points] error_cv`` (the same
    error the evidence point rule gives one value) for the log-kriged metals,
    ``nugget_ph_sd``² for pH — so the spatial variation shorter than the sample
    spacing goes into the structure, not into the nugget (docs/decisions.md "The nugget
    from the measurement error")."""
    if rules.get("interpolation", "nugget") != "measurement":
        return None
    if variable == "ph":
        return float(rules.get("interpolation", "nugget_ph_sd")) ** 2
    return float(np.log1p(float(rules.get("points", "error_cv")) ** 2))


def interpolation_inputs(usable: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, 2) sample coordinates (metres) and ``variable -> values`` for every variable."""
    xy = shapely.get_coordinates(usable.geometry.values)
    return xy, {v: interpolation_values(usable, v) for v in VARIABLES}


@dataclass(frozen=True)
class SurfaceModels:
    """``variable -> unfitted estimator`` using the models fitted once on all samples.

    Picklable (shipped to dask workers). ``models`` maps each variable to its
    :class:`~farmland.geostats.variogram.VariogramModel`, or to the reason text when no model could
    be fitted (the estimator then falls back to IDW). Metals are kriged on log-values,
    pH on its own scale; ``method="idw"`` gives IDW for every variable.
    """

    method: str
    k: int
    power: float
    models: dict
    #: variable -> leave-one-out error variance of its IDW fallback
    #: (:mod:`farmland.geostats.fallback`), fitted once like a variogram and reused with it
    variances: dict = field(default_factory=dict)

    def __call__(self, variable: str):
        if self.method == "idw":
            return IDW(k=self.k, power=self.power)
        model = self.models.get(variable)
        log = variable != "ph"
        if model is None:  # not fitted (too few values): fit on use, as LocalKriging does
            return LocalKriging(k=self.k, log=log)
        if isinstance(model, str):
            return _FallbackKriging(k=self.k, log=log, reason=model,
                                    error_variance=self.variances.get(variable))
        return LocalKriging(k=self.k, log=log, variogram=model)

    def describe(self) -> str:
        """One line per variable for logs and manifests."""
        if self.method == "idw":
            return f"IDW (k={self.k}, power={self.power:g})"
        return "; ".join(f"{v}: " + (f"IDW fallback ({m})" if isinstance(m, str) else
                                      m.describe()) for v, m in self.models.items())


class _FallbackKriging(LocalKriging):
    """LocalKriging whose variogram fit failed: IDW, exactly as LocalKriging.fit does."""

    def __init__(self, *, k: int, log: bool, reason: str, error_variance: float | None = None):
        super().__init__(k=k, log=log)
        self.reason = reason
        self.error_variance_ = error_variance

    def fit(self, coords: np.ndarray, values: np.ndarray) -> LocalKriging:
        from farmland.geostats.estimators import _check_samples

        xy, z = _check_samples(coords, values, log=self.log)
        self.coords_, self.values_, self.sample_location_, self.tree_ = located_samples(xy, z)
        self.variogram_, self._last = None, None
        self.fallback_ = self.reason
        self.idw_ = IDW(k=self.k, max_distance=self.search_radius, log=self.log)
        self.idw_.fit(xy, np.exp(z) if self.log else z)
        return self


def fit_surface_models(usable: pd.DataFrame, rules: Rules, method: str, *,
                       given: Mapping[str, object] | None = None,
                       given_variances: Mapping[str, float] | None = None,
                       spaces: Mapping[str, tuple[float, float]] | None = None
                       ) -> SurfaceModels:
    """Fit each variable's variogram once on all usable samples.

    Parameters
    ----------
    usable
        Usable soil samples (classified, metric CRS).
    rules
        Rule profile (neighbours, IDW power).
    method
        ``"kriging"`` or ``"idw"``.
    given
        Variable -> model used as it is instead of fitting one: a
        :class:`~farmland.geostats.variogram.VariogramModel` or the reason text of an IDW
        fallback (a variogram reused from an earlier run, or kept from a first fit).
    given_variances
        Variable -> the IDW fallback's error variance kept with a ``given`` fallback;
        a fallback without one (given or fitted here) gets it computed from these samples.
    spaces
        Variable -> (ratio, azimuth): fit its variogram with that anisotropy instead of
        ``[interpolation] anisotropy`` (the refit rule's trial fit of an earlier model).
    """
    if method not in ("kriging", "idw"):
        raise ValueError(f"unknown interpolation method {method!r}: use 'kriging' or 'idw'")
    k = rules.get("interpolation", "neighbours")
    power = rules.get("interpolation", "idw_power")
    models: dict = {}
    variances: dict = {}
    if method == "kriging":
        xy, values = interpolation_inputs(usable)
        for variable, v in values.items():
            ok = np.isfinite(v)
            if ok.sum() < 2:
                continue
            model = (given or {}).get(variable)
            kept = (given_variances or {}).get(variable)
            if model is None:  # fit it here (a variance kept for it no longer applies)
                est = LocalKriging(k=k, log=variable != "ph", nugget=fixed_nugget(rules, variable),
                                   structure=rules.get("interpolation", "structure_test"),
                                   anisotropy=(spaces or {}).get(
                                       variable, rules.get("interpolation", "anisotropy")),
                                   trend=rules.get("interpolation", "trend")
                                   ).fit(xy[ok], v[ok])
                model, kept = est.fallback_ if est.fallback_ is not None else est.variogram_, None
            elif isinstance(model, str) and kept is None:  # a given fallback, no variance
                est = _FallbackKriging(k=k, log=variable != "ph", reason=model).fit(xy[ok], v[ok])
            models[variable] = model
            if isinstance(model, str):  # a fallback: its error variance, kept or computed
                variances[variable] = float(kept) if kept is not None else idw_error_variance(
                    est.idw_)
    return SurfaceModels(method=method, k=k, power=power, models=models, variances=variances)
