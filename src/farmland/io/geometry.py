"""Geometry for :mod:`farmland.io.readers`: points from coordinate columns, geometry checks.

* Points from x/y (metres) or lon/lat (degrees) columns of CSV/Excel tables. Without
  ``crs`` (or with a projected ``crs``, which cannot describe degrees): lon/lat →
  EPSG:4490 assumed (logged); x/y with zone-prefixed eastings →
  the zone's EPSG (logged); other x/y → :class:`~farmland.errors.CRSError`.
  Columns named X/Y in the surveying convention (X = northing) are recognised from
  their values (northings 1.5–6.5 million m, eastings below 1 million or prefixed)
  and swapped, with a warning. Lon/lat columns also accept degree text
  (``24°36'15"N``, ``108度30分E``; converted and logged, see
  :func:`farmland.io.values.parse_dms`); lon/lat columns holding each other's values
  are an error naming both columns.
* Parcels: empty geometries dropped (warning naming the ids), invalid polygons
  repaired with ``shapely.make_valid`` keeping only polygonal parts (logged).
* Points: empty or missing geometries are an error naming the ids.
* Lines (rivers, canals): empty and zero-length lines dropped (warning naming the ids),
  MultiLineStrings split into their parts, each keeping its vertex order (logged).
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from farmland.crs import (
    CGCS2000_GEOGRAPHIC,
    GK3_ZONES,
    coordinate_kind,
    describe_crs,
    gk_epsg_for_zone,
)
from farmland.errors import CRSError, InputError, first_rows
from farmland.io.columns import ColumnMatch
from farmland.io.values import Problems, parse_dms, parse_plain_numbers

log = logging.getLogger(__name__)

_POLYGONAL = ("Polygon", "MultiPolygon")
_LINEAR = ("LineString", "MultiLineString")
_NORTHING_M = (1_500_000.0, 6_500_000.0)


def points_from_columns(frame: pd.DataFrame, match: ColumnMatch, rows: pd.Series, *,
                        file: str, crs: Any, problems: Problems) -> gpd.GeoDataFrame:
    """Point geometries from the coordinate columns of a table (CRS assigned, unchecked)."""
    src = match.source
    use_xy = "x" in src and "y" in src
    use_lonlat = "lon" in src and "lat" in src
    if use_xy and use_lonlat and crs is None:
        use_xy = False  # lon/lat need no declared CRS
    if not (use_xy or use_lonlat):
        accepted = {k: match.accepted[k] for k in ("x", "y", "lon", "lat")}
        raise InputError("no coordinate columns found", file=file,
                         fix="add x/y (metres) or lon/lat (degrees) columns; accepted names: "
                             + "; ".join(f"{k}: {', '.join(v)}" for k, v in accepted.items()))
    cx, cy = ("x", "y") if use_xy else ("lon", "lat")
    xs = _coordinate(frame[src[cx]], rows, src[cx], problems, file=file,
                     axis=None if use_xy else "lon")
    ys = _coordinate(frame[src[cy]], rows, src[cy], problems, file=file,
                     axis=None if use_xy else "lat")
    problems.raise_if_any()
    if use_xy:
        xs, ys = _surveying_order(xs, ys, src, file)
        crs = crs if crs is not None else _crs_from_prefix(xs, ys, file)
    else:
        _check_lonlat_order(xs, ys, src, file)
    if not use_xy and (crs is None or not pyproj.CRS.from_user_input(crs).is_geographic):
        if crs is not None:
            log.info("%s: %s is projected but the coordinates are lon/lat columns; ignored",
                     file, describe_crs(crs))
        crs = CGCS2000_GEOGRAPHIC
        log.info("%s: lon/lat columns without a geographic CRS; assuming %s", file,
                 describe_crs(crs))
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs, ys), index=frame.index, crs=crs)


def _coordinate(raw: pd.Series, rows: pd.Series, column: str, problems: Problems, *,
                file: str, axis: str | None) -> np.ndarray:
    """One coordinate column as floats; ``axis`` (lon/lat) also accepts degree text."""
    values, bad, censored = parse_plain_numbers(raw)
    wrong = np.zeros(len(values), dtype=bool)
    if axis is not None and bad.any():
        values, bad, wrong = _degree_text(raw, values, bad, file, column, axis)
    problems.add_non_numeric(bad | censored, rows, column, raw, "non_numeric_coordinate")
    problems.add_mask("wrong_hemisphere", wrong, rows, column, raw)
    problems.add_mask("infinite", np.isinf(values), rows, column, raw)
    missing = np.isnan(values) & ~bad & ~censored & ~wrong
    problems.add_mask("missing_coordinate", missing, rows, column, raw)
    return values


def _degree_text(raw: pd.Series, values: np.ndarray, bad: np.ndarray, file: str, column: str,
                 axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert degree text (``24°36'15"N``) in a lon/lat column (logged).

    Returns the values, the cells still unparseable and the cells whose hemisphere
    letter belongs to the other axis.
    """
    values, bad = values.copy(), bad.copy()
    wrong, converted = np.zeros(len(values), dtype=bool), []
    for pos in np.flatnonzero(bad):
        status, value = parse_dms(raw.iloc[pos], axis)
        if status == "ok":
            values[pos], bad[pos] = value, False
            converted.append(pos)
        elif status == "wrong_axis":
            wrong[pos], bad[pos] = True, False
    if converted:
        first = converted[0]
        log.info("%s: column '%s': %d degree-minute-second value(s) converted to decimal "
                 "degrees (e.g. %r -> %.7f)", file, column, len(converted), raw.iloc[first],
                 values[first])
    return values, bad, wrong


def _check_lonlat_order(xs: np.ndarray, ys: np.ndarray, src: dict[str, str], file: str) -> None:
    """Raise when the longitude column holds latitudes and the latitude column longitudes."""
    if not len(xs) or coordinate_kind((xs.min(), ys.min(), xs.max(), ys.max())) != "latlon":
        return
    raise CRSError(f"longitude and latitude look swapped: column '{src['lon']}' holds "
                   f"{xs.min():.6g}..{xs.max():.6g} (latitudes in China are 18-54) and "
                   f"column '{src['lat']}' holds {ys.min():.6g}..{ys.max():.6g} (longitudes "
                   "are 73-136)", file=file,
                   fix=f"swap the names of the columns '{src['lon']}' and '{src['lat']}' "
                       "(or map them in a mapping file)")


def _surveying_order(xs: np.ndarray, ys: np.ndarray, src: dict[str, str],
                     file: str) -> tuple[np.ndarray, np.ndarray]:
    """Swap X/Y when X holds northings and Y eastings (Chinese surveying convention)."""
    if not len(xs):
        return xs, ys
    x_north = _NORTHING_M[0] <= xs.min() and xs.max() <= _NORTHING_M[1]
    y_kind = coordinate_kind((ys.min(), 0.0, ys.max(), 0.0))
    y_east = (0 < ys.min() and ys.max() < 1_000_000) or y_kind.startswith("prefixed:")
    if x_north and y_east:
        log.warning("%s: column '%s' holds northings and '%s' eastings (surveying "
                    "convention X = north); using '%s' as easting", file, src["x"], src["y"],
                    src["y"])
        return ys, xs
    return xs, ys


def _crs_from_prefix(xs: np.ndarray, ys: np.ndarray, file: str) -> Any:
    """The GK zone CRS of zone-prefixed eastings, or None (ensure_crs then explains)."""
    if not len(xs):
        return None
    kind = coordinate_kind((xs.min(), ys.min(), xs.max(), ys.max()))
    if not kind.startswith("prefixed:"):
        return None
    zone = int(kind.split(":")[1])
    epsg = gk_epsg_for_zone(zone)
    degree = 3 if zone >= GK3_ZONES[0] else 6
    log.info("%s: eastings carry zone number %d; using %s (%d-degree zone) as CRS",
             file, zone, describe_crs(epsg), degree)
    return epsg


def clean_polygons(gdf: gpd.GeoDataFrame, ids: pd.Series, *, file: str,
                   what: str = "parcels",
                   fix: str = "give the parcel (图斑) polygon layer") -> gpd.GeoDataFrame:
    """Check polygon geometries (parcels by default; ``what`` names them in messages and
    ``fix`` says which layer to give): drop empty ones, repair invalid ones (both logged).

    Raises
    ------
    InputError
        If a geometry is not polygonal (listing the ids).
    """
    geoms = _flat(gdf.geometry.to_numpy())
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = _type_names(geoms)
    wrong = ~empty & ~np.isin(types, _POLYGONAL)
    if wrong.any():
        found = sorted(set(types[wrong].tolist()))
        raise InputError(f"{what} must be polygons, found {found}",
                         file=file, row=first_rows(ids[wrong]), fix=fix)
    invalid = ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = [_polygonal_part(g) for g in shapely.make_valid(geoms[invalid])]
        log.warning("%s: repaired %d invalid polygon(s) with make_valid, keeping polygonal "
                    "parts: %s", file, int(invalid.sum()), first_rows(ids[invalid]))
        empty |= shapely.is_empty(geoms)
    if empty.any():
        log.warning("%s: dropped %d %s with empty geometry: %s", file,
                    int(empty.sum()), "parcel(s)" if what == "parcels" else what,
                    first_rows(ids[empty]))
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return out[~empty]


def clean_lines(gdf: gpd.GeoDataFrame, ids: pd.Series, *, file: str,
                what: str = "rivers") -> gpd.GeoDataFrame:
    """Check line geometries and split MultiLineStrings into their parts.

    Empty and zero-length lines are dropped (warning naming the ids); each part of a
    MultiLineString becomes a row of its own with the same attributes and the part's
    own vertex order (logged). Z values are dropped.

    Raises
    ------
    InputError
        If a geometry is not a (Multi)LineString (listing the ids).
    """
    geoms = _flat(gdf.geometry.to_numpy())
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = _type_names(geoms)
    wrong = ~empty & ~np.isin(types, _LINEAR)
    if wrong.any():
        found = sorted(set(types[wrong].tolist()))
        raise InputError(f"{what} must be lines, found {found}", file=file,
                         row=first_rows(ids[wrong]),
                         fix="give the centre lines (LineString), digitised upstream to "
                             "downstream; water-surface polygons (面状水系) have no flow "
                             "direction")
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    out = out[~empty]
    multi = int((shapely.get_num_geometries(out.geometry.to_numpy()) > 1).sum())
    out = out.explode(index_parts=False)
    if multi:
        log.info("%s: %d MultiLineString(s) split into their parts (each keeps its own "
                 "vertex order)", file, multi)
    zero = shapely.length(out.geometry.to_numpy()) == 0
    if empty.any() or zero.any():
        dropped = [*ids[empty], *ids.loc[out.index[zero]]]
        log.warning("%s: dropped %d %s line(s) without length (empty or a single point): %s",
                    file, len(dropped), what, first_rows(dropped))
    return out[~zero]


_TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                        "MultiLineString", "MultiPolygon", "GeometryCollection", "missing"])


def _type_names(geoms: np.ndarray) -> np.ndarray:
    ids = shapely.get_type_id(geoms)
    return _TYPE_NAMES[np.where((ids >= 0) & (ids < 8), ids, 8)]


def _flat(geoms: np.ndarray) -> np.ndarray:
    """Geometries without Z (a copy of the array)."""
    return shapely.force_2d(geoms) if shapely.has_z(geoms).any() else geoms.copy()


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in _POLYGONAL]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def clean_points(gdf: gpd.GeoDataFrame, ids: pd.Series, *, file: str,
                 polygons_to_points: bool = False) -> gpd.GeoDataFrame:
    """Check point geometries.

    Parameters
    ----------
    polygons_to_points
        Turn polygons (e.g. a factory's outline) into a point inside them (logged)
        instead of raising.

    Raises
    ------
    InputError
        Listing the ids of missing/empty geometries or of non-point geometries.
    """
    geoms = _flat(gdf.geometry.to_numpy())
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        raise InputError(f"{int(empty.sum())} point(s) without geometry", file=file,
                         row=first_rows(ids[empty]), fix="give every sample its coordinates")
    types = _type_names(geoms)
    single_multi = (types == "MultiPoint") & (shapely.get_num_geometries(geoms) == 1)
    geoms[single_multi] = shapely.get_geometry(geoms[single_multi], 0)
    polygonal = np.isin(types, _POLYGONAL)
    if polygons_to_points and polygonal.any():
        geoms[polygonal] = shapely.point_on_surface(geoms[polygonal])
        log.info("%s: %d polygon(s) replaced by a point inside them", file, int(polygonal.sum()))
    wrong = ~np.isin(shapely.get_type_id(geoms), [0])
    if wrong.any():
        found = sorted(set(types[wrong].tolist()))
        raise InputError(f"expected points, found {found}", file=file,
                         row=first_rows(ids[wrong]), fix="give a point layer or x/y columns")
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs)
    return out


def require_crs_target(target_crs: Any) -> None:
    """Raise if an explicit target CRS is not projected."""
    crs = pyproj.CRS.from_user_input(target_crs)
    if not crs.is_projected:
        raise CRSError(f"target CRS {describe_crs(crs)} is not projected",
                       fix="use a metric CRS such as EPSG:4545")
