"""Reader of evaluation units (评价单元): unit polygons, or a parcel → unit table.

Columns come from ``[columns.units]`` of ``aliases.toml`` (``unit_id``: 评价单元编号,
单元编号 …; ``parcel_id``: 图斑编号, BSM …) or a mapping file. A file with geometry
is read as unit polygons (it needs ``unit_id`` and a CRS, or ``crs=``); a table
(CSV/XLSX, or a layer without geometry) needs ``parcel_id`` and ``unit_id``. How
parcels are placed in the units is :func:`farmland.classify.units.evaluation_units`.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.errors import InputError, first_rows
from farmland.io.geometry import clean_polygons
from farmland.io.reading import (
    MappingArg,
    Source,
    check_exact_ids,
    finish,
    match_input,
    open_input,
    place,
)
from farmland.io.values import Problems, id_strings

__all__ = ["read_units"]

log = logging.getLogger("farmland.io.readers")

_UNIT_LAYERS = ("units", "评价单元", "unit", "PJDY")
_POLYGONAL = (int(shapely.GeometryType.POLYGON), int(shapely.GeometryType.MULTIPOLYGON))


def read_units(path: Source, *, layer: str | None = None, crs: Any = None,
               target_crs: Any = None, mapping: MappingArg = None,
               encoding: str | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
    """Read evaluation units (评价单元).

    Parameters
    ----------
    path
        Unit polygons (GeoPackage, Shapefile, GeoJSON, FileGDB; the layer named
        ``units``/``评价单元`` when there are several) or a table (CSV/XLSX) of parcel
        id → unit id; or the same as an in-memory (Geo)DataFrame.
    crs
        CRS to assume when a polygon file declares none (``--crs``).
    target_crs
        The parcels' metric CRS; polygons are reprojected to it.
    layer, mapping, encoding
        As for :func:`farmland.io.readers.read_parcels`.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        Polygons: ``unit_id`` (text) and the polygons in the metric CRS, in file
        order. Table: ``parcel_id, unit_id`` (text), one row per parcel.

    Raises
    ------
    InputError
        A missing ``unit_id`` (or, for a table, ``parcel_id``) column, empty ids, ids
        stored as long numbers, geometries that are not polygons, a parcel listed in
        two units (all problems of the file at once); ``CRSError`` for a polygon file
        without CRS when ``crs`` is not given.
    """
    raw = open_input(path, layer, encoding, _UNIT_LAYERS)
    if not raw.has_geometry:
        return _unit_table(raw, mapping)
    match = match_input(raw, "units", mapping, required=("unit_id",))
    column, problems = match.source["unit_id"], Problems(raw.file)
    ids = _ids(raw, column, problems)
    problems.raise_if_any()
    geoms = raw.frame.geometry.to_numpy()
    types = shapely.get_type_id(geoms)
    wrong = ~shapely.is_missing(geoms) & ~np.isin(types, _POLYGONAL)
    if wrong.any():
        raise InputError("evaluation units must be polygons (or a table of parcel id → unit "
                         "id without geometry)", file=raw.file, row=first_rows(ids[wrong]),
                         fix="give the unit polygon layer, or a CSV/XLSX of 图斑编号 and "
                             "评价单元编号")
    gdf = gpd.GeoDataFrame({"unit_id": ids}, geometry=geoms, crs=raw.frame.crs,
                           index=raw.frame.index)
    gdf = place(gdf, raw.file, crs, target_crs)
    out = finish(clean_polygons(gdf, ids, file=raw.file), raw.file)
    log.info("%s: %d unit polygon(s), %d unit id(s)", raw.file, len(out),
             out["unit_id"].nunique())
    return out


def _ids(raw, column: str, problems: Problems) -> pd.Series:
    """Text ids of ``column``; empty cells and digits lost in number cells are problems."""
    ids = id_strings(raw.frame[column])
    rows = ids.where(ids.notna(), raw.labels)
    check_exact_ids(raw, column, ids, rows, problems)
    problems.add_mask("missing_id", ids.isna().to_numpy(), raw.labels, column, ids)
    return ids


def _unit_table(raw, mapping: MappingArg) -> pd.DataFrame:
    """``parcel_id, unit_id``; the same parcel in two units is refused (listing them)."""
    match = match_input(raw, "units", mapping, required=("parcel_id", "unit_id"))
    src, problems = match.source, Problems(raw.file)
    parcel = _ids(raw, src["parcel_id"], problems)
    unit = _ids(raw, src["unit_id"], problems)
    problems.raise_if_any()
    table = pd.DataFrame({"parcel_id": parcel, "unit_id": unit}).drop_duplicates()
    twice = table["parcel_id"].duplicated(keep=False)
    if twice.any():
        pairs = table[twice].groupby("parcel_id", sort=False)["unit_id"].agg(" and ".join)
        raise InputError("a parcel is listed in more than one evaluation unit",
                         file=raw.file, row=first_rows(f"{p} ({u})" for p, u in pairs.items()),
                         column=src["parcel_id"],
                         fix="give each parcel (图斑) one unit; a unit holds several parcels, "
                             "never the reverse")
    log.info("%s: %d parcel(s) in %d evaluation unit(s)", raw.file, len(table),
             table["unit_id"].nunique())
    return table.reset_index(drop=True)
