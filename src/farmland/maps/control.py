"""The strict-control closed loop on a farmland map (``farmland map --control``, issue 18).

Two layers of ``control.gpkg`` (``farmland control``):

- ``loop``: every class-3 parcel filled by its loop status, none → closed, in the colours
  of :data:`farmland.control.stages.STATUS_COLOURS` (magenta … teal, never a class
  colour); the tooltip gives the status, the missing or failed stage, the dates of the
  stages recorded, what was planted, where the harvest went (destination, lot) and the
  number of contradictions. A loop parcel is drawn with the simplified geometry of the
  classification parcel of the same ``parcel_id``, so it covers that parcel exactly.
- ``product_zones``: the specific-product control zones, outlined (not filled, so the
  loop below keeps its tooltips), with the controlled and allowed products in Chinese
  and the basis.

Text reaches the page as JSON and becomes tooltip text through ``textContent``, like every
other layer (:mod:`farmland.maps.layers`).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.classes import MU_PER_M2, PALETTE
from farmland.control.stages import STAGE_LABELS, STAGES, STATUS_COLOURS, STATUS_LABELS, stage_text
from farmland.io.styles import PRODUCT_ZONE_OUTLINE
from farmland.maps.spec import LayerSpec

__all__ = ["CONTROL_SPECS", "CONTROL_TITLE", "control_columns", "loop_display", "status_areas"]

logger = logging.getLogger(__name__)

#: title of a map drawn with ``--control``
CONTROL_TITLE = "严格管控类耕地闭环管理图 Strict-control closed loop"

LOOP_SPEC = LayerSpec(
    "闭环状态 Closed-loop status",
    {"weight": 1, "opacity": 0.8, "fillOpacity": 0.85},
    (("图斑 Parcel", ("parcel_id",), "text"),
     ("乡镇 Township", ("township",), "text"),
     ("村 Village", ("village",), "text"),
     ("面积 Area", ("area_mu",), "mu"),
     ("闭环状态 Loop status", ("_status",), "text"),
     ("达最低环节 At minimum stage", ("meets_min",), "bool"),
     ("缺失或未通过 Missing or failed", ("_problem",), "text"),
     *((f"{STAGE_LABELS[s][0]} {STAGE_LABELS[s][1]}", (f"_date_{s}",), "text") for s in STAGES),
     ("种植 Planted", ("planted",), "text"),
     ("去向 Destination", ("destination",), "text"),
     ("批次 Lot", ("lot_id",), "text"),
     ("管控措施 Strict measures", ("strict_measures",), "text"),
     ("沿用 Carried over", ("carried_from",), "text"),
     ("上年状态 Previous status", ("_previous",), "text"),
     ("矛盾 Contradictions", ("n_contradictions",), "int")),
    by="loop_status",
    styles={**{s: {"fillColor": c, "color": c} for s, c in STATUS_COLOURS.items()},
            "null": {"fillColor": PALETTE[None], "color": PALETTE[None]}},
    symbol="swatches",
    zoomed=((15, {"color": "#4d4d4d", "weight": 0.6, "opacity": 0.8}),))

PRODUCT_ZONES_SPEC = LayerSpec(
    "特定农产品管控区 Product control zones",
    {"color": PRODUCT_ZONE_OUTLINE, "weight": 1.5, "opacity": 1.0, "dashArray": "6 4",
     "fill": False},
    (("管控区 Zone", ("zone_id",), "text"), ("乡镇 Township", ("township",), "text"),
     ("村 Village", ("village",), "text"), ("面积 Area", ("area_mu",), "mu"),
     ("图斑数 Parcels", ("n_parcels",), "int"),
     ("管控农产品 Controlled products", ("_controlled",), "text"),
     ("允许农产品 Allowed products", ("_allowed",), "text"),
     ("依据 Basis", ("basis",), "text")),
    symbol="line",
    zoomed=((15, {"weight": 2.5, "dashArray": "8 4"}),))  # thin at county scale

#: the closed-loop layers, keyed like the ``make_map`` arguments
CONTROL_SPECS: dict[str, LayerSpec] = {"loop": LOOP_SPEC, "product_zones": PRODUCT_ZONES_SPEC}


def _blank(value: object) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or not str(
        value).strip()


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text, ``None`` where missing or blank."""
    return pd.Series([None if _blank(v) else str(v).strip() for v in values],
                     index=values.index, dtype=object)


def _status_text(status: object) -> str | None:
    if _blank(status):
        return None
    zh, en = STATUS_LABELS.get(str(status), (str(status), str(status)))
    return zh if zh == en else f"{zh} {en}"


def _products_zh(codes: object) -> str | None:
    """"rice,leafy_veg" → "稻谷（以糙米计）、叶菜蔬菜" (GB 2762 names; unknown codes as written)."""
    from farmland.control.products import product_names

    if _blank(codes):
        return None
    names = product_names()
    items = [c.strip() for c in str(codes).split(",") if c.strip()]
    return "、".join(names.get(c, c) for c in items) or None


def control_columns(key: str, gdf: pd.DataFrame, out: pd.DataFrame) -> None:
    """Add the shown columns of a closed-loop layer (``loop`` or ``product_zones``) that are
    derived from ``gdf``'s columns to ``out``: status text, stage dates, product names."""
    none = pd.Series(None, index=gdf.index, dtype=object)
    if key == "product_zones":
        zh = _text(gdf.get("controlled_zh", none))
        codes = _text(gdf.get("controlled_products", none))
        out["_controlled"] = [z or _products_zh(c) or "无 none" for z, c in zip(zh, codes,
                                                                              strict=True)]
        out["_allowed"] = _text(gdf.get("allowed_products", none)).map(_products_zh)
        return
    out["_status"] = _text(gdf.get("loop_status", none)).map(_status_text)
    out["_previous"] = _text(gdf.get("previous_status", none)).map(_status_text)
    missing = [None if _blank(s) else f"缺失 missing: {stage_text(s)}"
               for s in _text(gdf.get("missing_stage", none))]
    out["_problem"] = [p or m for p, m in zip(_text(gdf.get("problem", none)), missing,
                                              strict=True)]
    for stage in STAGES:
        if f"date_{stage}" in gdf:
            dates = pd.to_datetime(gdf[f"date_{stage}"], errors="coerce")
            out[f"_date_{stage}"] = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None)


def loop_display(loop: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, parcel_display: np.ndarray,
                 own_display: np.ndarray) -> np.ndarray:
    """EPSG:4326 geometry of the loop parcels: the simplified geometry of the drawn
    classification parcel with the same ``parcel_id`` (so the two cover each other
    exactly), else the loop's own (``own_display``); a warning counts the latter."""
    own = np.asarray(own_display, dtype=object)
    if "parcel_id" not in loop or "parcel_id" not in parcels:
        return own
    lookup = pd.Series(np.asarray(parcel_display, dtype=object),
                       index=parcels["parcel_id"].astype(str).to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    found = lookup.reindex(loop["parcel_id"].astype(str).to_numpy()).to_numpy(dtype=object)
    unmatched = pd.isna(found)
    if unmatched.any():
        logger.warning("loop: %d of %d class-3 parcel(s) are not among the parcels drawn "
                       "(control.gpkg of another run?); drawn with their own geometry",
                       int(unmatched.sum()), len(loop))
    return np.where(unmatched, own, found)


def status_areas(loop: gpd.GeoDataFrame) -> list[tuple[str, str, str, str, int, float]]:
    """``(status, Chinese, English, colour, parcels, 亩)`` for each of the five loop
    statuses in order (zero when absent), then ``"other"`` when some status is unknown.

    The area is ``area_mu``, else the geometry area (in a metric CRS; a geographic layer
    is measured in its UTM zone)."""
    geom_mu = None
    if "area_mu" not in loop or pd.to_numeric(loop["area_mu"], errors="coerce").isna().any():
        metric = loop if loop.crs is None or loop.crs.is_projected else loop.to_crs(
            loop.estimate_utm_crs())
        geom_mu = metric.geometry.area.to_numpy() * MU_PER_M2
    area = (pd.to_numeric(loop["area_mu"], errors="coerce").astype(float).to_numpy()
            if "area_mu" in loop else np.full(len(loop), np.nan))
    if geom_mu is not None:
        area = np.where(np.isnan(area), geom_mu, area)
    status = (loop["loop_status"].astype(object).to_numpy() if "loop_status" in loop
              else np.full(len(loop), None, dtype=object))
    rows = []
    for key, (zh, en) in STATUS_LABELS.items():
        hit = status == key
        rows.append((key, zh, en, STATUS_COLOURS[key], int(hit.sum()), float(area[hit].sum())))
    other = ~np.isin(status, list(STATUS_LABELS))
    if other.any():
        rows.append(("other", "其他", "other", PALETTE[None], int(other.sum()),
                     float(area[other].sum())))
    return rows
