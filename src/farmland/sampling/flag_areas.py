"""The flagged areas of a ``flags.gpkg`` written by ``farmland flag``, for the sampling
plan's coverage points (``farmland plan --flags``; docs/decisions.md "The plan takes the
flags the user sees")."""

from __future__ import annotations

import geopandas as gpd

from farmland.crs import same_crs
from farmland.sampling.flags import LAYERS, flagged_polygons

__all__ = ["read_flagged_area"]


def read_flagged_area(path, parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The polygons of everything flagged in a ``flags.gpkg`` written by ``farmland flag``
    (:meth:`FlagResult.flagged_area` of the flags it wrote), in the parcels' CRS.

    Crop points become the parcels they name (``parcel_id``). Raises
    :class:`~farmland.errors.InputError` when the file holds none of the flag layers.
    """
    from farmland.errors import InputError
    from farmland.io.formats import layer_names
    from farmland.io.read_cache import read_dataframe

    present = set(layer_names(path))
    names = [n for n in LAYERS if n in present]
    if not names:
        raise InputError("no flag layer in this file", file=str(path),
                         fix="pass the flags.gpkg written by 'farmland flag' for this "
                             "classification")
    layers = {}
    for name in names:
        layer = read_dataframe(path, layer=name)
        if name == "crop_exceedance_class1" and len(layer) and "parcel_id" not in layer:
            raise InputError("the crop flags have no parcel_id", file=str(path),
                             column="parcel_id",
                             fix="pass the flags.gpkg written by 'farmland flag'")
        layers[name] = (layer if name == "crop_exceedance_class1" or not len(layer)
                        else same_crs(layer, parcels, f"flags layer '{name}'"))
    geoms = flagged_polygons(layers, parcels)
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(geoms, crs=parcels.crs))
