"""Which township each parcel belongs to, from the best source the data offer.

A third land-survey DLTB often carries only the village (ZLDWDM/ZLDWMC); every
"township" table would then list villages. The township of a parcel therefore comes,
in this order (the source used is logged):

1. the townships layer or table given by the analyst (``--townships``): joined on the
   township code (XZQDM = the first 9 digits of ZLDWDM) when both sides have codes,
   else, for a polygon layer, by location (the parcel's representative point);
2. the parcels' own township name column (XZQMC);
3. the township code itself (first 9 digits of ZLDWDM), so parcels are at least grouped
   by township, with a warning asking for names.

A village name is never used as a township.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from farmland.errors import first_rows

__all__ = ["assign_townships"]

log = logging.getLogger("farmland.io.readers")


def assign_townships(parcels: gpd.GeoDataFrame, townships: pd.DataFrame | None, *,
                     file: str = "parcels",
                     columns: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """``parcels`` with ``township`` (and ``township_code``) from the best source.

    Parameters
    ----------
    parcels
        Parcels as read (``township`` may be NA, ``township_code`` may be NA), in a
        metric CRS.
    townships
        Output of :func:`farmland.io.readers.read_townships` (polygons, or a plain table
        of ``township``/``township_code``), or ``None``.
    file
        Name of the parcels' input, for the log.
    columns
        The parcels file's own column of ``township``, ``township_code`` and ``_zldwdm``
        (canonical → the file's name, e.g. ``{"township": "乡镇名称"}``), for the log.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy; ``township`` is never a village name.
    """
    out = parcels.copy()
    code = out["township_code"].astype("string") if "township_code" in out else None
    if townships is not None and len(townships):
        named = _from_townships(out, townships, code)
        if named is not None:
            names, how = named
            missing = names.isna()
            out["township"] = names.where(~missing, out.get("township"))
            log.info("%s: township names from the townships layer, %s (%d of %d parcels)",
                     file, how, int((~missing).sum()), len(out))
            if missing.any():
                log.warning("%s: %d parcel(s) matched no township of the townships layer "
                            "(%s); they keep their own township field",
                            file, int(missing.sum()), first_rows(out.loc[missing, "parcel_id"]))
            return out
    columns = columns or {}
    has_name = "township" in out and out["township"].notna().any()
    if has_name:
        log.info("%s: township names from the parcels' township column (%s)", file,
                 columns.get("township", "XZQMC"))
        return out
    if code is not None and code.notna().any():
        out["township"] = code.astype(object).where(code.notna(), None)
        source = (f"column {columns['township_code']}" if "township_code" in columns
                  else f"first 9 digits of {columns.get('_zldwdm', 'ZLDWDM')}")
        log.warning("%s: the parcels carry no township names, only codes (%s): township "
                    "tables list codes such as %s; give --townships (a township layer or a "
                    "table with XZQDM and XZQMC) to name them",
                    file, source, code.dropna().iloc[0])
        return out
    log.warning("%s: no township name or code (XZQMC, XZQDM or ZLDWDM): every parcel is in "
                "the unknown township; give --townships (township polygons) to place them",
                file)
    return out


def _from_townships(parcels: gpd.GeoDataFrame, townships: pd.DataFrame,
                    code: pd.Series | None) -> tuple[pd.Series, str] | None:
    by_code = townships.dropna(subset=["township_code"]) if "township_code" in townships else None
    if code is not None and code.notna().any() and by_code is not None and len(by_code):
        lookup = (by_code.drop_duplicates("township_code")
                  .set_index(by_code.drop_duplicates("township_code")["township_code"]
                             .astype(str))["township"])
        names = code.astype(object).map(lookup)
        if names.notna().any():
            return pd.Series(names.to_numpy(dtype=object), index=parcels.index), "by code (XZQDM)"
    if isinstance(townships, gpd.GeoDataFrame) and townships.geometry.notna().any():
        towns = townships.to_crs(parcels.crs) if townships.crs != parcels.crs else townships
        points = gpd.GeoDataFrame(geometry=parcels.geometry.representative_point(),
                                  crs=parcels.crs)
        hit = gpd.sjoin(points, towns[["township", "geometry"]], how="left",
                        predicate="within")
        hit = hit[~hit.index.duplicated(keep="first")]
        return (pd.Series(hit["township"].to_numpy(dtype=object), index=parcels.index),
                "by location")
    return None
