"""How good are the interpolated surfaces? Variograms, cross-validation and rasters.

Written with every classification run: the fitted variogram of each class-driving
element and pH (or the reason kriging fell back to IDW), a leave-one-out
cross-validation per variable (ME, RMSE, standardised errors, and the share of
samples whose class the surface predicts correctly), and on request GeoTIFFs of the
predicted concentration, its kriging standard deviation and the probability of
exceeding the screening value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from farmland.geostats.crossval import LooRecorder, cross_validate
from farmland.geostats.surfaces import VARIABLES, interpolation_values
from farmland.standards import CLASS_ELEMENTS

log = logging.getLogger(__name__)


def model_summary(estimator) -> dict[str, object]:
    """Plain description of a fitted estimator: method, variogram numbers, fallback."""
    model = getattr(estimator, "variogram_", None)
    fallback = getattr(estimator, "fallback_", None)
    info: dict[str, object] = {"method": type(estimator).__name__, "fallback": fallback}
    if fallback and getattr(estimator, "error_variance_", None) is not None:
        info["fallback_variance"] = float(estimator.error_variance_)
    if model is not None and not fallback:
        info.update(model=model.name, nugget=float(model.nugget), sill=float(model.sill),
                    range_m=float(model.range_), text=model.describe())
        if model.ratio != 1.0:
            info.update(anisotropy_ratio=float(model.ratio), azimuth_deg=float(model.azimuth))
        if model.trend != "none":
            info.update(trend=model.trend)
    return info


def sample_arrays(samples: pd.DataFrame, variable: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates, values and row mask of the usable samples with a positive value."""
    values = interpolation_values(samples, variable)
    ok = samples["usable"].to_numpy(dtype=bool) & np.isfinite(values)
    xy = shapely.get_coordinates(samples.geometry.values)
    return xy[ok], values[ok], ok


def _class_of(samples: pd.DataFrame, mask: np.ndarray, element: str, standard) -> Callable:
    """values -> class codes with each sample's own land-use column and pH."""
    landuse = samples["landuse_used"].to_numpy(dtype=object)[mask]
    ph = samples["ph"].to_numpy(dtype=float, na_value=np.nan)[mask]
    screen = standard.screening_values(element, landuse, ph)
    interv = standard.intervention_values(element, ph)

    def classify(values: np.ndarray) -> np.ndarray:
        return np.where(values <= screen, 1, np.where(values <= interv, 2, 3))
    return classify


def cross_validation_report(samples: pd.DataFrame, make_estimator: Callable[[str], object], *,
                            standard, loo: LooRecorder | None = None
                            ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict]]:
    """Leave-one-out cross-validation of every interpolated variable.

    Parameters
    ----------
    samples
        Classified soil samples (``usable``, ``landuse_used``, values; metric CRS).
    make_estimator
        ``variable -> unfitted estimator`` as used by the classification.
    standard
        Loaded standard (for the class-accuracy figure).
    loo
        Optional :class:`~farmland.geostats.crossval.LooRecorder`: the leave-one-out
        moments an earlier run can lend, and this run's kept (same results).

    Returns
    -------
    metrics, per_sample, models
        One row per variable (n, me, rmse, mean and mean squared standardised error,
        class_accuracy, model); the per-sample table (variable, sample_id, observed,
        predicted, std_error, standardized_error) for scatter charts; and per variable
        the fitted model (:func:`model_summary`), the same the classification used.
    """
    rows, per_sample, models = [], [], {}
    for variable in VARIABLES:
        xy, values, mask = sample_arrays(samples, variable)
        if len(values) < 3:
            continue
        classify = None if variable == "ph" else _class_of(samples, mask, variable, standard)
        res = cross_validate(lambda v=variable: make_estimator(v), xy, values,
                             classify=classify,
                             leave_one_out=None if loo is None else loo.for_variable(variable))
        model = model_summary(res["estimator"])  # fitted once on all samples
        models[variable] = model
        rows.append({"variable": variable, "n": res["n"], "me": res["me"], "rmse": res["rmse"],
                     "mean_standardized_error": res["mean_standardized_error"],
                     "mean_squared_standardized_error": res["mean_squared_standardized_error"],
                     "class_accuracy": res.get("class_accuracy", np.nan),
                     "model": model.get("text") or f"IDW ({model['fallback'] or 'chosen'})"})
        frame = res["samples"][["observed", "predicted", "std_error", "standardized_error"]]
        per_sample.append(frame.assign(variable=variable,
                                       sample_id=samples["sample_id"].to_numpy()[mask]))
    cols = ["variable", "sample_id", "observed", "predicted", "std_error", "standardized_error"]
    metrics = pd.DataFrame(rows, columns=["variable", "n", "me", "rmse",
                                          "mean_standardized_error",
                                          "mean_squared_standardized_error", "class_accuracy",
                                          "model"])
    samples_table = (pd.concat(per_sample, ignore_index=True)[cols] if per_sample
                     else pd.DataFrame(columns=cols))
    if not rows:
        log.info("fewer than 3 usable samples: no cross-validation")
    return metrics.round(6), samples_table.round(6), models


def write_rasters(folder: Path, samples: pd.DataFrame, parcels, make_estimator, *, standard,
                  cell_size: float = 100.0, overwrite: bool = False) -> list[Path]:
    """GeoTIFFs over the parcels' extent: predicted value (kriged median, mg/kg), kriging
    standard deviation (log scale) and P(value > screening value) for each element.

    The screening value per cell uses the interpolated pH and the stricter of the
    paddy/other columns (the land use between parcels is unknown).
    """
    from farmland.geostats.rasters import grid_cell_centres, grid_for_bounds, write_geotiff

    transform, shape = grid_for_bounds(parcels.total_bounds, cell_size)
    centres = grid_cell_centres(transform, shape)
    xy, ph_values, _ = sample_arrays(samples, "ph")
    ph = make_estimator("ph").fit(xy, ph_values).predict(centres)
    ph = np.clip(ph, *standard.ph_range)
    written = []
    for el in CLASS_ELEMENTS:
        xy, values, _ = sample_arrays(samples, el)
        est = make_estimator(el).fit(xy, values)
        try:
            mean, var = est.predict_distribution(centres)
        except NotImplementedError:
            mean = var = np.full(len(centres), np.nan)
        value = np.exp(mean) if np.isfinite(mean).any() else est.predict(centres)
        screen = standard.screening_values(el, np.full(len(centres), "unknown", dtype=object), ph)
        from farmland.geostats.estimators import exceedance_probability
        prob = (exceedance_probability(mean, var, screen) if np.isfinite(mean).any()
                else (value > screen).astype(float))
        for name, grid in ((f"{el}_predicted.tif", value), (f"{el}_kriging_sd_log.tif",
                                                            np.sqrt(var)),
                           (f"{el}_p_exceed_screening.tif", prob)):
            path = folder / name
            write_geotiff(path, grid.reshape(shape).astype("float32"), transform=transform,
                          crs=parcels.crs, overwrite=overwrite)
            written.append(path)
    log.info("wrote %d GeoTIFFs (%.0f m cells) to %s", len(written), cell_size, folder)
    return written
