"""Geostatistics: variograms, local (log-)kriging and IDW, the per-run fitted surfaces,
cross-validation and rasters."""

from farmland.geostats.estimators import (
    IDW,
    LocalKriging,
    class_probabilities,
    exceedance_probability,
)
from farmland.geostats.surfaces import SurfaceModels, fit_surface_models
from farmland.geostats.variogram import (
    VariogramFitError,
    VariogramModel,
    empirical_variogram,
    fit_sample_variogram,
    fit_variogram,
)

__all__ = [
    "IDW", "LocalKriging", "SurfaceModels", "VariogramFitError", "VariogramModel",
    "class_probabilities", "empirical_variogram", "exceedance_probability",
    "fit_sample_variogram", "fit_surface_models", "fit_variogram",
]
