"""The area of a township detail map, and every overlay clipped to it.

A township page shows only that township: its polygon from the townships layer (rows
whose ``township`` is the name), else the union of its parcels grown by
:data:`PARCEL_BUFFER_M` (closes the roads and ditches between parcels). Points (soil and
crop samples, planned points, point flags) are kept inside the area; polygons (zones,
flags, the township outline) are cut to it; pollution sources are kept within
:data:`SOURCE_MARGIN_M` of it, the outer ring the planner samples around a source, so a
source that explains planned points of the township stays visible.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import shapely

logger = logging.getLogger(__name__)

#: the township area from its parcels: their union grown by this (m)
PARCEL_BUFFER_M = 100.0
#: pollution sources are kept within this distance of the township (m)
SOURCE_MARGIN_M = 1_500.0
#: clipped polygon pieces smaller than this are dropped (m²): boundary slivers
MIN_PIECE_M2 = 1.0


def township_area(parcels: gpd.GeoDataFrame, townships: gpd.GeoDataFrame | None,
                  name: str) -> tuple[shapely.Geometry, str]:
    """The township's area in the parcels' (metric) CRS and where it came from.

    Returns
    -------
    (geometry, source)
        ``source`` is ``"townships"`` (its polygon) or ``"parcels"`` (union of its
        parcels grown by :data:`PARCEL_BUFFER_M`).
    """
    if townships is not None and "township" in townships and len(townships):
        rows = townships[townships["township"].astype(object) == name]
        rows = rows[~(rows.geometry.isna() | rows.geometry.is_empty)]
        if len(rows):
            geom = shapely.union_all(rows.geometry.to_crs(parcels.crs).to_numpy())
            return shapely.make_valid(geom), "townships"
        logger.warning("township %r is not in the townships layer; its area on the detail "
                       "map is the union of its parcels + %.0f m", name, PARCEL_BUFFER_M)
    geoms = parcels.geometry.to_numpy()
    try:
        union = (shapely.coverage_union_all(geoms) if bool(shapely.coverage_is_valid(geoms))
                 else shapely.union_all(geoms))
    except shapely.errors.GEOSException:  # pragma: no cover - invalid input geometry
        union = shapely.union_all(shapely.make_valid(geoms))
    return union.buffer(PARCEL_BUFFER_M), "parcels"


def clip_to_area(key: str, gdf: gpd.GeoDataFrame, area: shapely.Geometry,
                 crs: object) -> gpd.GeoDataFrame:
    """Rows of overlay ``key`` inside ``area`` (in ``crs``), polygons cut to it.

    Returned in ``crs``; the input frame is not modified.
    """
    gdf = gdf.to_crs(crs)
    window = area.buffer(SOURCE_MARGIN_M) if key == "sources" else area
    shapely.prepare(window)
    hit = np.sort(gdf.sindex.query(window, predicate="intersects"))
    gdf = gdf.iloc[hit]
    geoms = gdf.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if key == "sources" or not polygonal.any():
        return gdf
    inside = shapely.contains_properly(window, geoms)
    cut = geoms.copy()
    todo = np.flatnonzero(polygonal & ~inside)
    cut[todo] = [_polygonal_part(g) for g in shapely.intersection(geoms[todo], window)]
    area = np.zeros(len(cut))
    area[todo] = shapely.area(cut[todo])
    keep = ~polygonal | inside | (area >= MIN_PIECE_M2)
    return gdf.set_geometry(cut, crs=crs).iloc[np.flatnonzero(keep)]


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a cut (which may also hold the lines and points where it touched)."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.MultiPolygon(polys) if polys else shapely.Polygon()
