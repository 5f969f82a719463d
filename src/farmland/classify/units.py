"""Evaluation units (评价单元): the parcels whose soil samples are judged together.

The point rules (strict override, majority, the own-class share checks) and the crop
adjustment work on an evaluation unit; every parcel of a unit gets the unit's point
class, and parcels stay the reporting grain. The units (docs/decisions.md,
"Classification"):

- ``"parcel"`` — each parcel alone (the default; :func:`evaluation_units` gives ``None``);
- ``"village"`` — township × village (坐落单位) × land use: paddy and dry land are never
  one unit, their thresholds and their crops differ;
- ``"township"`` — township × land use;
- a file or frame read by :func:`farmland.io.units.read_units`: unit polygons (a parcel
  belongs to the polygon holding its representative point) or a parcel → unit table.

A parcel that cannot be placed (no village or township name, unknown land use, outside
every unit polygon, missing from the table) is its own unit: its id is the parcel id
(``parcel:<id>`` if a named unit already has that id), and the count is logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.errors import InputError, first_rows
from farmland.vocabulary import UNKNOWN_TOWNSHIP

__all__ = ["UNIT_CHOICES", "UnitsArg", "evaluation_units"]

log = logging.getLogger(__name__)

#: the evaluation units named by a word (anything else is a file)
UNIT_CHOICES = ("parcel", "village", "township")
#: what :func:`evaluation_units` takes
UnitsArg = str | os.PathLike | pd.DataFrame | pd.Series | None

_FIX = ("use --units parcel, village or township, or the path of a units file (unit polygons, "
        "or a CSV/XLSX of 图斑编号 → 评价单元编号)")
#: land uses a unit may not mix (GB 15618 has a paddy column and an "other" column)
_PADDY = "paddy"


def evaluation_units(parcels: pd.DataFrame, units: UnitsArg = None, *, crs: Any = None,
                     mapping: Any = None) -> pd.Series | None:
    """The evaluation unit of every parcel.

    Parameters
    ----------
    parcels
        Canonical parcels (``parcel_id``, ``landuse``; ``township``/``village`` for the
        named units), polygons in a metric CRS.
    units
        ``None``/``"parcel"``, ``"village"``, ``"township"``, the path of a units file,
        a frame as :func:`farmland.io.units.read_units` reads it, or a Series of unit ids
        indexed like ``parcels`` (<NA>: the parcel is its own unit).
    crs, mapping
        For a units file: the CRS to assume when it declares none, the column mapping.

    Returns
    -------
    pandas.Series or None
        ``unit_id`` (text) indexed like ``parcels``; ``None`` for ``"parcel"``. Its
        ``attrs`` hold ``kind`` (village, township, file, given), ``units`` (how many)
        and ``alone`` (parcels that are their own unit).

    Raises
    ------
    InputError
        An unknown word or a missing file, parcels without any village (township)
        name for ``"village"`` (``"township"``), and the reader's errors for a file.
    """
    if units is None or (isinstance(units, str) and units == "parcel"):
        return None
    if isinstance(units, pd.Series):
        ids, kind = units.reindex(parcels.index).astype(object), "given"
    elif isinstance(units, str) and units in ("village", "township"):
        ids, kind = _named_units(parcels, units), units
    else:
        frame, kind = _read(units, parcels, crs, mapping), "file"
        if isinstance(frame, gpd.GeoDataFrame):
            ids = _polygon_units(parcels, frame)
        else:
            ids = _table_units(parcels, frame)
        _warn_mixed_landuse(parcels, ids)
    return _finish(parcels, ids, kind)


def _read(units: Any, parcels: pd.DataFrame, crs: Any,
          mapping: Any) -> gpd.GeoDataFrame | pd.DataFrame:
    """A units file, or a frame read like one (aliases, ids, CRS into the parcels')."""
    if not isinstance(units, (str, os.PathLike, pd.DataFrame)):
        raise TypeError(f"units must be a name, a path or a frame, not {type(units).__name__}")
    if not isinstance(units, pd.DataFrame) and not Path(units).exists():
        raise InputError("unknown evaluation unit (neither parcel, village, township nor an "
                         "existing units file)", value=str(units), fix=_FIX)
    from farmland.io.units import read_units
    return read_units(units, crs=crs, target_crs=getattr(parcels, "crs", None), mapping=mapping)


def _named_units(parcels: pd.DataFrame, kind: str) -> pd.Series:
    """``township/village/landuse`` or ``township/landuse``; <NA> where a name is missing
    or the land use is unknown."""
    names = parcels[kind].astype(object) if kind in parcels else pd.Series(
        None, index=parcels.index, dtype=object)
    named = names.notna() & (names.astype(str).str.strip() != "")
    if kind == "township":
        named &= names.astype(str) != UNKNOWN_TOWNSHIP
    if not named.any():
        column = {"village": "ZLDWMC (坐落单位名称)", "township": "XZQMC (乡镇)"}[kind]
        raise InputError(f"--units {kind}: no parcel has a {kind} name", file="parcels",
                         column=kind, fix=f"give the parcels' {column} column (or map yours to "
                                          f"'{kind}' in a mapping file), or {_FIX}")
    landuse = (parcels["landuse"].astype(object) if "landuse" in parcels
               else pd.Series("unknown", index=parcels.index, dtype=object))
    known = landuse.notna() & (landuse != "unknown")
    parts = [names.astype(str).str.strip(), landuse.astype(str)]
    if kind == "village":
        town = (parcels["township"].astype(object) if "township" in parcels
                else pd.Series(None, index=parcels.index, dtype=object))
        town = town.where(town.notna() & (town.astype(str).str.strip() != ""), UNKNOWN_TOWNSHIP)
        parts.insert(0, town.astype(str).str.strip())
    ids = parts[0].str.cat(parts[1:], sep="/")
    missing = ~named.to_numpy() | ~known.to_numpy()
    if missing.any():
        log.warning("--units %s: %d parcel(s) without a %s name or with unknown land use are "
                    "each their own unit: %s", kind, int(missing.sum()), kind,
                    first_rows(parcels["parcel_id"][missing]))
    return ids.where(~missing, None).astype(object)


def _polygon_units(parcels: pd.DataFrame, units: gpd.GeoDataFrame) -> pd.Series:
    """The unit polygon holding each parcel's representative point (the first listed when
    several do)."""
    points = shapely.point_on_surface(parcels.geometry.to_numpy())
    hit_point, hit_unit = shapely.STRtree(units.geometry.to_numpy()).query(
        points, predicate="intersects")
    found = pd.DataFrame({"p": hit_point, "u": hit_unit}).sort_values(["p", "u"])
    found["unit_id"] = units["unit_id"].to_numpy()[found["u"].to_numpy()]
    several = found.groupby("p")["unit_id"].nunique()
    several = several[several > 1]
    if len(several):
        log.warning("units: %d parcel(s) lie in more than one unit polygon (overlapping units "
                    "or a shared edge): each takes the first listed: %s", len(several),
                    first_rows(parcels["parcel_id"].to_numpy()[several.index.to_numpy()]))
    first = found.drop_duplicates("p")
    ids = np.full(len(parcels), None, dtype=object)
    ids[first["p"].to_numpy()] = first["unit_id"].to_numpy()
    outside = pd.isna(ids)
    if outside.any():
        log.warning("units: %d parcel(s) lie outside every unit polygon and are each their own "
                    "unit: %s", int(outside.sum()), first_rows(parcels["parcel_id"][outside]))
    return pd.Series(ids, index=parcels.index, dtype=object)


def _table_units(parcels: pd.DataFrame, table: pd.DataFrame) -> pd.Series:
    """Units of a parcel → unit table; parcels not in it are their own unit (logged), ids
    of the table that are no parcel are named in a warning."""
    by_parcel = pd.Series(table["unit_id"].to_numpy(), index=table["parcel_id"].to_numpy())
    pid = parcels["parcel_id"].astype(str)
    ids = pid.map(by_parcel).astype(object)
    unknown = sorted(set(by_parcel.index) - set(pid))
    if unknown:
        log.warning("units: %d parcel id(s) of the units table are not in the parcels and "
                    "are ignored: %s (check the 图斑编号 against the parcel layer)",
                    len(unknown), first_rows(unknown))
    alone = ids.isna().to_numpy()
    if alone.any():
        log.warning("units: %d parcel(s) are not in the units table and are each their own "
                    "unit: %s", int(alone.sum()), first_rows(pid[alone]))
    return ids


def _warn_mixed_landuse(parcels: pd.DataFrame, ids: pd.Series) -> None:
    """A user unit holding paddy and other farmland is kept, with a warning."""
    if "landuse" not in parcels:
        return
    known = ids.notna() & parcels["landuse"].notna() & (parcels["landuse"] != "unknown")
    paddy = (parcels["landuse"] == _PADDY)[known].groupby(ids[known]).agg(["any", "all"])
    mixed = paddy.index[paddy["any"] & ~paddy["all"]]
    if len(mixed):
        log.warning("units: %d evaluation unit(s) mix paddy with other farmland (GB 15618 "
                    "judges them against different columns): %s; split them by land use "
                    "unless that is intended", len(mixed), first_rows(mixed))


def _finish(parcels: pd.DataFrame, ids: pd.Series, kind: str) -> pd.Series:
    """Parcels without a unit become their own unit; text ids; ``attrs`` filled."""
    alone = ids.isna().to_numpy()
    pid = parcels["parcel_id"].astype(str).to_numpy()
    named = set(ids[~alone].astype(str))
    own = np.array([f"parcel:{p}" if p in named else p for p in pid[alone]], dtype=object)
    out = ids.astype(object).copy()
    out[alone] = own
    out = out.astype(str).rename("unit_id")
    out.attrs = {"kind": kind, "alone": int(alone.sum()), "units": int(out.nunique())}
    if kind != "given":  # given ids were described where they were made
        log.info("evaluation units (%s): %d unit(s) for %d parcel(s), %d of them alone",
                 kind, out.nunique(), len(out), int(alone.sum()))
    return out
