"""Coordinate reference systems: the metric CRS farmland works in, and CRS checks.

Everything inside farmland is in one metric CRS: the input's projected CRS, or the
CGCS2000 3-degree Gauss-Krüger zone derived from the data's longitude. EPSG codes are
derived, never looked up in a hand-written table:

* 3-degree GK without zone prefix, central meridian λ: ``4534 + (λ − 75) / 3``
  (108°E → EPSG:4545);
* 3-degree GK zone ``n`` with the zone number in the easting (``n × 10⁶ + 500 000``
  false easting): ``4513 + (n − 25)`` (zone 36 → EPSG:4524);
* 6-degree GK zone ``n`` (13–23) with prefix: ``4491 + (n − 13)``.

The checks in :func:`ensure_crs` catch the usual mistakes of county data: no CRS,
metres declared as degrees and the reverse, zone-prefixed eastings declared as a
no-prefix zone, and swapped longitude/latitude.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
from shapely.geometry import box

from farmland.errors import CRSError

log = logging.getLogger(__name__)

#: longitude / latitude box of mainland China and Hainan (degrees)
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (18.0, 54.0)
#: central meridians of the CGCS2000 3-degree GK CRSs in the EPSG registry
GK3_CM_RANGE = (75, 135)
GK3_ZONES = (25, 45)  # 3-degree zones with prefix: CM = 3 n
GK6_ZONES = (13, 23)  # 6-degree zones with prefix: CM = 6 n − 3
PREFIX_LIMIT_M = 1_000_000.0  # an easting above this carries a zone prefix
GK_FALSE_EASTING = 500_000.0
CGCS2000_GEOGRAPHIC = 4490
_WEB_MERCATOR = {3857, 3395, 900913, 3785, 102100}


def gk_epsg_for_central_meridian(cm: float) -> int:
    """EPSG code of the CGCS2000 3-degree GK CRS (no zone prefix) with meridian ``cm``.

    Parameters
    ----------
    cm
        Central meridian in degrees east, a multiple of 3 in 75–135.

    Returns
    -------
    int
        ``4534 + (cm − 75) / 3``.
    """
    lo, hi = GK3_CM_RANGE
    if cm % 3 or not lo <= cm <= hi:
        raise CRSError(f"no CGCS2000 3-degree GK CRS has central meridian {cm}E",
                       fix=f"use a multiple of 3 between {lo} and {hi}")
    return 4534 + (int(cm) - 75) // 3


def gk_epsg_for_longitude(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone (no prefix) containing ``lon``.

    The central meridian is ``λ = 3 · round(lon / 3)`` (halves round up, so 109.5°E
    belongs to the 111°E zone); it is clipped to the 75–135°E range of the registry.

    Parameters
    ----------
    lon
        Longitude in degrees east (CGCS2000 or WGS84; they agree to centimetres).

    Returns
    -------
    int
        EPSG code, e.g. 4545 for 108°E or 109.2°E, 4546 for 111°E.

    Raises
    ------
    CRSError
        If ``lon`` is not a finite longitude inside China (73–136°E).
    """
    lo, hi = CHINA_LON
    if not (isinstance(lon, (int, float, np.floating, np.integer)) and math.isfinite(lon)
            and lo <= lon <= hi):
        raise CRSError(f"longitude {lon!r} is outside China ({lo:g}-{hi:g} degrees east)",
                       fix="check the coordinates and their CRS (are they metres or swapped?)")
    cm = 3 * math.floor(lon / 3 + 0.5)
    cm = min(max(cm, GK3_CM_RANGE[0]), GK3_CM_RANGE[1])
    return gk_epsg_for_central_meridian(cm)


def gk_epsg_for_zone(n: int) -> int:
    """EPSG code of the CGCS2000 GK CRS whose eastings carry zone number ``n``.

    Parameters
    ----------
    n
        Zone number: 25–45 for 3-degree zones (``4513 + (n − 25)``, zone 36 →
        EPSG:4524); 13–23 for 6-degree zones (``4491 + (n − 13)``).

    Raises
    ------
    CRSError
        If ``n`` is no CGCS2000 GK zone covering China.
    """
    if GK3_ZONES[0] <= n <= GK3_ZONES[1]:
        return 4513 + (int(n) - 25)
    if GK6_ZONES[0] <= n <= GK6_ZONES[1]:
        return 4491 + (int(n) - 13)
    raise CRSError(f"{n!r} is no CGCS2000 Gauss-Krüger zone number",
                   fix="3-degree zones are 25-45, 6-degree zones 13-23")


def zone_from_prefixed_easting(x: float) -> int:
    """Zone number carried by a zone-prefixed GK easting (the millions part).

    Parameters
    ----------
    x
        Easting in metres, e.g. 36 500 000 → zone 36.

    Raises
    ------
    CRSError
        If ``x`` is not above 1 000 000 m or its millions part is no GK zone.
    """
    if not (math.isfinite(x) and x > PREFIX_LIMIT_M):
        raise CRSError(f"easting {x!r} carries no zone prefix (it is not above 1 000 000 m)")
    n = int(x // PREFIX_LIMIT_M)
    gk_epsg_for_zone(n)  # validates the zone number
    return n


def describe_crs(crs: Any) -> str:
    """Short label of a CRS for messages: ``EPSG:4545 (CGCS2000 / 3-degree GK CM 108E)``."""
    crs = pyproj.CRS.from_user_input(crs)
    name = crs.name.replace("Gauss-Kruger", "GK")
    code = crs.to_epsg(min_confidence=90)
    return f"EPSG:{code} ({name})" if code else name


def metric_crs_for(data: Any) -> pyproj.CRS:
    """The metric CRS to work in for ``data``.

    Parameters
    ----------
    data
        A GeoDataFrame / GeoSeries with a CRS, or a tuple ``(crs, bounds)`` with
        ``bounds = (minx, miny, maxx, maxy)`` in that CRS.

    Returns
    -------
    pyproj.CRS
        The input CRS when it is projected with metre units (and not Web Mercator,
        whose areas are wrong); otherwise the CGCS2000 3-degree GK zone of the
        longitude of the data's centre. The decision is logged.

    Raises
    ------
    CRSError
        If there is no CRS or the data's centre is outside China.
    """
    crs, bounds = _crs_and_bounds(data)
    if _is_metric(crs):
        log.info("working CRS: %s (the input's projected CRS)", describe_crs(crs))
        return crs
    minx, _, maxx, _ = _lonlat_bounds(crs, bounds)
    lon = (minx + maxx) / 2
    epsg = gk_epsg_for_longitude(lon)
    target = pyproj.CRS.from_epsg(epsg)
    log.info("projected to %s derived from data longitude %.1f", describe_crs(target), lon)
    if maxx - minx > 3:
        log.warning("data span %.1f degrees of longitude, more than one 3-degree zone; "
                    "distances and areas far from %s are slightly distorted",
                    maxx - minx, describe_crs(target))
    return target


def _crs_and_bounds(data: Any) -> tuple[pyproj.CRS, tuple[float, float, float, float]]:
    if isinstance(data, (gpd.GeoDataFrame, gpd.GeoSeries)):
        crs, bounds = data.crs, tuple(data.total_bounds)
    else:
        crs, bounds = data
    if crs is None:
        raise CRSError("the data has no CRS", fix="declare one (e.g. --crs EPSG:4545)")
    if not all(math.isfinite(b) for b in bounds):
        raise CRSError("cannot choose a metric CRS: the data has no coordinates")
    return pyproj.CRS.from_user_input(crs), bounds


def _is_metric(crs: pyproj.CRS) -> bool:
    if not crs.is_projected or crs.to_epsg() in _WEB_MERCATOR:
        return False
    return all(axis.unit_name in ("metre", "meter") for axis in crs.axis_info)


def _lonlat_bounds(crs: pyproj.CRS, bounds: tuple[float, ...]) -> tuple[float, ...]:
    if crs.is_geographic:
        return tuple(bounds)
    return to_lonlat(crs).transform_bounds(*bounds)


@functools.lru_cache(maxsize=16)
def to_lonlat(crs: pyproj.CRS) -> pyproj.Transformer:
    """The transformer from ``crs`` to WGS84 lon/lat (EPSG:4326, x = longitude), made once
    per CRS and process: making one takes ≈ 40 ms, and every file read checks its CRS."""
    return pyproj.Transformer.from_crs(crs, 4326, always_xy=True)


def to_metric(gdf: gpd.GeoDataFrame, target_crs: Any) -> gpd.GeoDataFrame:
    """A reprojected copy of ``gdf`` in the metric ``target_crs``.

    Raises
    ------
    CRSError
        If ``gdf`` has no CRS, the target is not projected, or reprojection yields
        non-finite coordinates (the data's CRS is wrong).
    """
    if gdf.crs is None:
        raise CRSError("cannot reproject data without a CRS", fix="declare the input CRS")
    target = pyproj.CRS.from_user_input(target_crs)
    if not target.is_projected:
        raise CRSError(f"target CRS {describe_crs(target)} is not projected",
                       fix="use a metric CRS such as EPSG:4545")
    if pyproj.CRS.from_user_input(gdf.crs) == target:
        return gdf.copy()
    out = gdf.to_crs(target)
    if len(out) and not np.isfinite(out.total_bounds).all():
        raise CRSError(f"reprojecting from {describe_crs(gdf.crs)} to {describe_crs(target)} "
                       "gives non-finite coordinates", fix="check the CRS declared for the input")
    return out


def require_overlap(reference: gpd.GeoDataFrame, other: gpd.GeoDataFrame, *,
                    file: object = None, what: str = "sample", within_m: float = 0.0) -> None:
    """Raise unless some feature of ``other`` lies near the extent of ``reference``.

    Catches samples of another county, or coordinates read with the wrong CRS (e.g. the
    neighbouring GK zone), which would otherwise give a run where every parcel is
    silently "too far" from the data.

    Parameters
    ----------
    reference
        E.g. the parcels, in a metric CRS.
    other
        E.g. the soil samples, in the same CRS.
    file
        Name of ``other``'s input, for the message.
    what
        What one feature of ``other`` is, for the message (``"soil sample"``).
    within_m
        Distance (m) around the bounding box of ``reference`` that still counts, e.g.
        the rules' ``max_distance_m``.

    Raises
    ------
    CRSError
        If no feature of ``other`` has a point within ``within_m`` of the bounding box
        of ``reference``, naming both extents and the fix.
    ValueError
        If the two frames are not in the same CRS.
    """
    if len(reference) == 0 or len(other) == 0:
        return
    if pyproj.CRS.from_user_input(reference.crs) != pyproj.CRS.from_user_input(other.crs):
        raise ValueError("require_overlap needs both frames in the same CRS")
    minx, miny, maxx, maxy = reference.total_bounds
    near = other.geometry.intersects(
        box(minx - within_m, miny - within_m, maxx + within_m, maxy + within_m))
    if near.any():
        return
    raise CRSError(
        f"no {what} lies within {within_m:g} m of the parcels' extent "
        f"({_fmt_bounds(tuple(reference.total_bounds))}) in {describe_crs(reference.crs)}",
        file=file, value=_fmt_bounds(tuple(other.total_bounds)),
        fix="check that the file belongs to this county and that its CRS is right (a wrong "
            "--crs, or x/y of the neighbouring GK zone, moves the data far away)")


# Checks ------------------------------------------------------------------------------
def ensure_crs(gdf: gpd.GeoDataFrame, *, file: object, crs: Any = None) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with a checked CRS.

    Parameters
    ----------
    gdf
        Data as read.
    file
        Name of the input, for messages.
    crs
        CRS to assume when the data declares none (``--crs``). A CRS declared by
        the data is kept; a different ``crs`` is then ignored (logged).

    Returns
    -------
    geopandas.GeoDataFrame
        New frame with the CRS set.

    Raises
    ------
    CRSError
        Naming the file and the fix, when there is no CRS; when the declared CRS
        does not fit the coordinates (degrees vs metres, zone prefix present or
        missing, another zone's prefix); when longitude and latitude are swapped.
    """
    if gdf.crs is None:
        if crs is None:
            raise CRSError("no coordinate reference system (CRS) declared", file=file,
                           fix=_how_to_declare(tuple(gdf.total_bounds)))
        out = gdf.set_crs(parse_crs(crs))
        log.info("%s: the file declares no CRS; using %s", file, describe_crs(out.crs))
    else:
        out = gdf.copy()
        if crs is not None and parse_crs(crs) != pyproj.CRS(gdf.crs):
            log.info("%s: keeping the CRS the file declares, %s (ignoring %s)",
                     file, describe_crs(gdf.crs), crs)
    if len(out):
        check_coordinates(tuple(out.total_bounds), out.crs, file=file)
    return out


def parse_crs(value: Any) -> pyproj.CRS:
    """The CRS a user gave (``EPSG:4545``, ``4545``, WKT, a PROJ string), or
    :class:`CRSError` naming the value and how to write one."""
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        raise CRSError("not a coordinate reference system pyproj knows", value=value,
                       fix="give an EPSG code, e.g. EPSG:4545 (CGCS2000 3-degree GK CM 108E; "
                           "EPSG:4534-4554 for CM 75E-135E) or EPSG:4490 (CGCS2000 "
                           "longitude/latitude)") from None


def coordinate_kind(bounds: tuple[float, float, float, float]) -> str:
    """What the coordinates inside ``bounds`` look like.

    Returns
    -------
    str
        ``"lonlat"`` (degrees inside China), ``"latlon"`` (same, x and y swapped),
        ``"degrees"`` (degrees elsewhere), ``"prefixed:<n>"`` (GK eastings carrying
        zone ``n``), ``"metres"`` or ``"empty"``.
    """
    minx, miny, maxx, maxy = bounds
    if not all(math.isfinite(b) for b in bounds):
        return "empty"
    if _inside((minx, maxx), CHINA_LON) and _inside((miny, maxy), CHINA_LAT):
        return "lonlat"
    if _inside((minx, maxx), CHINA_LAT) and _inside((miny, maxy), CHINA_LON):
        return "latlon"
    if max(abs(minx), abs(maxx)) <= 180 and max(abs(miny), abs(maxy)) <= 90:
        return "degrees"
    zone = int(minx // PREFIX_LIMIT_M)
    if minx > PREFIX_LIMIT_M and zone == int(maxx // PREFIX_LIMIT_M) and _is_zone(zone):
        return f"prefixed:{zone}"
    return "metres"


def _inside(pair: tuple[float, float], box: tuple[float, float]) -> bool:
    return box[0] <= pair[0] and pair[1] <= box[1]


def _is_zone(n: int) -> bool:
    return GK3_ZONES[0] <= n <= GK3_ZONES[1] or GK6_ZONES[0] <= n <= GK6_ZONES[1]


def _how_to_declare(bounds: tuple[float, float, float, float]) -> str:
    kind = coordinate_kind(bounds)
    if kind == "lonlat":
        return ("the coordinates look like longitude/latitude: pass --crs EPSG:4490 "
                "(or add a .prj file beside a shapefile)")
    if kind == "latlon":
        return ("the coordinates look like latitude/longitude in swapped order: swap the "
                "x and y columns, then pass --crs EPSG:4490")
    if kind.startswith("prefixed:"):
        n = int(kind.split(":")[1])
        return (f"the eastings carry GK zone number {n}: pass --crs EPSG:{gk_epsg_for_zone(n)} "
                "(or add a .prj file beside a shapefile)")
    return ("pass the projected CRS of the coordinates, e.g. --crs EPSG:4545 for CGCS2000 "
            "3-degree GK CM 108E (EPSG:4534-4554 for CM 75E-135E), or add a .prj file "
            "beside a shapefile")


def check_coordinates(bounds: tuple[float, float, float, float], crs: Any, *,
                      file: object) -> None:
    """Raise :class:`CRSError` when coordinates inside ``bounds`` contradict ``crs``.

    See :func:`ensure_crs` for the mistakes detected. A dataset whose centre lies
    outside China is only logged as a warning.
    """
    crs = pyproj.CRS.from_user_input(crs)
    kind = coordinate_kind(bounds)
    if kind == "latlon":
        raise CRSError("longitude and latitude look swapped (x is 18-54, y is 73-136)",
                       file=file, value=_fmt_bounds(bounds),
                       fix="swap the x/lon and y/lat columns (or map them in a mapping file)")
    if crs.is_geographic:
        if kind == "metres" or kind.startswith("prefixed:"):
            raise CRSError(f"wrong CRS declared: {describe_crs(crs)} is in degrees but the "
                           "coordinates are metres", file=file, value=_fmt_bounds(bounds),
                           fix=_how_to_declare(bounds))
    elif kind == "lonlat":
        raise CRSError(f"wrong CRS declared: {describe_crs(crs)} is projected but the "
                       "coordinates look like longitude/latitude degrees", file=file,
                       value=_fmt_bounds(bounds), fix="declare EPSG:4490 (CGCS2000 lon/lat)")
    else:
        _check_zone_prefix(kind, crs, bounds, file)
    _warn_outside_china(crs, bounds, file)


def _check_zone_prefix(kind: str, crs: pyproj.CRS, bounds: tuple[float, ...],
                       file: object) -> None:
    params = _tm_params(crs)
    if params is None:
        return
    cm, false_easting = params
    declared_zone = int(false_easting // PREFIX_LIMIT_M)
    if kind.startswith("prefixed:"):
        zone = int(kind.split(":")[1])
        if zone != declared_zone:
            expects = f"zone {declared_zone}" if declared_zone else "no zone prefix"
            raise CRSError(
                f"wrong CRS declared: the eastings carry GK zone number {zone} but "
                f"{describe_crs(crs)} expects {expects}",
                file=file, value=_fmt_bounds(bounds),
                fix=f"declare EPSG:{gk_epsg_for_zone(zone)} (zone {zone}, prefixed eastings)")
    elif declared_zone and kind == "metres":
        fix = (f"declare EPSG:{gk_epsg_for_central_meridian(cm)} (CM {cm:g}E without prefix)"
               if cm % 3 == 0 and GK3_CM_RANGE[0] <= cm <= GK3_CM_RANGE[1]
               else "declare the GK CRS without zone prefix for this central meridian")
        raise CRSError(f"wrong CRS declared: {describe_crs(crs)} expects eastings prefixed "
                       f"with zone {declared_zone} but they have no prefix", file=file,
                       value=_fmt_bounds(bounds), fix=fix)


def _tm_params(crs: pyproj.CRS) -> tuple[float, float] | None:
    """(central meridian, false easting) of a Transverse Mercator CRS, else None."""
    op = crs.coordinate_operation
    if op is None or "Transverse Mercator" not in (op.method_name or ""):
        return None
    values = {p.name: p.value for p in op.params}
    if "Longitude of natural origin" not in values or "False easting" not in values:
        return None
    return float(values["Longitude of natural origin"]), float(values["False easting"])


def _warn_outside_china(crs: pyproj.CRS, bounds: tuple[float, ...], file: object) -> None:
    try:
        minx, miny, maxx, maxy = _lonlat_bounds(crs, bounds)
    except pyproj.exceptions.ProjError:  # pragma: no cover - exotic CRSs
        return
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    if not (_inside((lon, lon), CHINA_LON) and _inside((lat, lat), CHINA_LAT)):
        log.warning("%s: the data's centre (%.2f, %.2f) in %s lies outside China; "
                    "is the CRS right?", file, lon, lat, describe_crs(crs))


def _fmt_bounds(bounds: tuple[float, ...]) -> str:
    """Extents as a surveyor writes them: whole metres, or degrees to 6 decimals (never
    ``2.71995e+06``)."""
    minx, miny, maxx, maxy = bounds
    f = ".6f" if all(abs(v) <= 360 for v in bounds) else ".0f"
    return f"x {minx:{f}}..{maxx:{f}}, y {miny:{f}}..{maxy:{f}}"


def same_crs(frame: gpd.GeoDataFrame, target: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """``frame`` in ``target``'s CRS (reprojected and logged when it differs).

    Raises
    ------
    CRSError
        If either frame has no CRS while the other has one.
    """
    if frame.crs == target.crs:
        return frame
    if len(frame) == 0:
        return frame.set_crs(target.crs, allow_override=True)
    if frame.crs is None or target.crs is None:
        raise CRSError(f"{what} and parcels disagree on the CRS: {frame.crs} vs {target.crs}",
                       fix=f"give {what} a CRS (e.g. EPSG:4545) matching the parcels")
    log.info("reprojected %s from %s to %s", what, frame.crs.to_string(), target.crs.to_string())
    return frame.to_crs(target.crs)


def require_metric(parcels: gpd.GeoDataFrame) -> None:
    """Raise :class:`CRSError` unless ``parcels`` are in a projected (metric) CRS."""
    if parcels.crs is None or not parcels.crs.is_projected:
        raise CRSError(f"parcels must be in a projected metric CRS, got {parcels.crs}",
                       fix="reproject to CGCS2000 Gauss-Krüger (e.g. EPSG:4545) first")

