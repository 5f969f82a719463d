"""Baseline classifiers the harness compares farmland with (issue 15).

Both take what :func:`farmland.classify.parcels.classify_parcels` takes — canonical
parcels (metric CRS, ``parcel_id``, ``landuse`` or ``dlbm``) and soil samples already
classified by :func:`farmland.classify.samples.classify_samples` — and use only the
usable samples. Neither screens outliers nor leaves far parcels unclassified: they are
what an analyst gets from a GIS in a few clicks. Each returns one ``Int8`` class per
parcel (``<NA>`` only where no value could be estimated), indexed like ``parcels``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.classify.parcels import with_landuse
from farmland.classify.samples import classify_samples
from farmland.geostats.estimators import IDW
from farmland.standards import CLASS_ELEMENTS

__all__ = ["idw_classes", "nearest_sample_classes"]


def _usable(samples: pd.DataFrame) -> pd.DataFrame:
    if "point_class" not in samples or "usable" not in samples:
        raise ValueError("samples must be classified first "
                         "(farmland.classify.samples.classify_samples)")
    return samples[samples["usable"].to_numpy(bool)]


def _representative_points(parcels: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))


def nearest_sample_classes(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame) -> pd.Series:
    """Thiessen baseline: each parcel takes the point class of the usable sample nearest to
    its representative point (``point_on_surface``; ties to the first sample in order).

    Parameters
    ----------
    parcels
        Canonical parcels in a metric CRS.
    samples
        Classified soil samples (``usable``, ``point_class``) in the same CRS.

    Returns
    -------
    pandas.Series
        ``Int8`` classes indexed like ``parcels``; all ``<NA>`` without a usable sample.
    """
    usable = _usable(samples)
    if usable.empty:
        return pd.Series(pd.NA, index=parcels.index, dtype="Int8")
    tree = cKDTree(shapely.get_coordinates(usable.geometry.values))
    _, nearest = tree.query(_representative_points(parcels))
    classes = usable["point_class"].to_numpy(dtype="int64")[nearest]
    return pd.Series(classes, index=parcels.index, dtype="Int8")


def idw_classes(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *, power: float = 2.0,
                k: int = 12, standard=None) -> pd.Series:
    """IDW baseline: pH and the five metals interpolated at each parcel's representative
    point (``k`` nearest usable samples, weights 1/dᵖ; metals as ln-values, i.e. a
    weighted geometric mean; pH as is), classed with the parcel's land-use column by the
    GB 15618 point rules (:func:`~farmland.classify.samples.classify_samples`).

    Parameters
    ----------
    parcels, samples
        As for :func:`nearest_sample_classes`.
    power, k
        IDW power and number of neighbours.
    standard
        Loaded standard; default GB 15618-2018 as shipped.

    Returns
    -------
    pandas.Series
        ``Int8`` classes indexed like ``parcels``.
    """
    usable = _usable(samples)
    if usable.empty:
        return pd.Series(pd.NA, index=parcels.index, dtype="Int8")
    xy = shapely.get_coordinates(usable.geometry.values)
    targets = _representative_points(parcels)
    values = {}
    for name in ("ph", *CLASS_ELEMENTS):
        z = pd.to_numeric(usable[name], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(z) & ((z > 0) | (name == "ph"))
        est = IDW(k=min(k, int(ok.sum())), power=power, log=name != "ph")
        values[name] = est.fit(xy[ok], z[ok]).predict(targets)
    parcels = with_landuse(parcels)
    frame = pd.DataFrame({"sample_id": parcels["parcel_id"].astype(str).to_numpy(), **values,
                          "landuse": parcels["landuse"].to_numpy(dtype=object)})
    classed = classify_samples(frame, standard=standard)
    return pd.Series(classed["point_class"].to_numpy(), index=parcels.index, dtype="Int8")
