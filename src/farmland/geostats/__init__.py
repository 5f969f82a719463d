"""Geostatistics: variograms, local (log-)kriging and IDW, the per-run fitted surfaces,
cross-validation and rasters.

The names below are imported on first use (PEP 562), so that importing one submodule
(:mod:`farmland.geostats.kernels`, say, which the second process of ``farmland demo``
compiles first thing) does not import the others and SciPy with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: public name -> the submodule that defines it
_WHERE = {
    "IDW": "estimators", "LocalKriging": "estimators", "class_probabilities": "estimators",
    "exceedance_probability": "estimators",
    "SurfaceModels": "surfaces", "fit_surface_models": "surfaces",
    "VariogramFitError": "variogram", "VariogramModel": "variogram",
    "empirical_variogram": "variogram", "fit_sample_variogram": "variogram",
    "fit_variogram": "variogram",
}

__all__ = [
    "IDW", "LocalKriging", "SurfaceModels", "VariogramFitError", "VariogramModel",
    "class_probabilities", "empirical_variogram", "exceedance_probability",
    "fit_sample_variogram", "fit_surface_models", "fit_variogram",
]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
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
