"""QGIS styles for the GeoPackages farmland writes.

A GeoPackage can carry QGIS styles in a ``layer_styles`` table (the table QGIS itself
creates with *Save as default* — columns ``id, f_table_catalog, f_table_schema,
f_table_name, f_geometry_column, styleName, styleQML, styleSLD, useAsDefault,
description, owner, ui, update_time``). QGIS applies a layer's default style when the
layer is opened, so ``classification.gpkg`` shows its classes green / amber / red with
bilingual labels instead of grey polygons.

:func:`style_qml` builds the QML document of one layer (XML made with
:mod:`xml.etree.ElementTree`, so every text is escaped); :func:`write_styles` writes
the styles of a GeoPackage's layers into its ``layer_styles`` table as their default
style. A layer gets a style when its name is one farmland writes (:data:`STYLED_LAYERS`)
*and* it has the column the style needs — no style rather than a broken one.

Colours and labels come from :mod:`farmland.classes` (the palette of the maps); the
overlay colours mirror ``farmland.maps.layers.LAYER_SPECS``.

The table is created through GDAL exactly as QGIS does (an ``attributes`` table
registered in ``gpkg_contents``, FID column ``id``): QGIS finds it by asking GDAL for
the layer ``layer_styles``, and GDAL opens only tables it lists, so ``layer_styles``
shows up in ``pyogrio.list_layers`` (without geometry, after the data layers). Readers
that pick layers by name are unaffected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyogrio

from farmland import classes as C
from farmland.vocabulary import ACCOUNTING_STATUSES, FLOWS, LOOP_STATUSES_STYLE, flow_key

log = logging.getLogger(__name__)

STYLE_TABLE = "layer_styles"
#: ``styleName`` of the styles farmland writes (QGIS shows it in the style manager)
STYLE_NAME = "farmland"
#: fixed ``update_time`` so the same data gives the same bytes (as ``OGR_CURRENT_DATE``)
UPDATE_TIME = pd.Timestamp("2000-01-01T00:00:00", tz="UTC")
#: QGIS version written into the QML (the oldest LTR the QML was checked with)
QGIS_VERSION = "3.22.16-Białowieża"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
#: layers whose categories follow the values found in the data (others are fixed)
VALUE_CATEGORIES = frozenset({"plan", "changes"})
#: at most this many distinct values of a category column become categories
MAX_CATEGORIES = 50

#: flag layers of ``flags.gpkg`` (``farmland.sampling.flags.LAYERS``): colour, brush, label
FLAG_STYLES: dict[str, tuple[str, str, str]] = {
    "empty_cells": ("#7b3294", "b_diagonal", "空白网格 Empty 1 km cells"),
    "sparse_townships": ("#2166ac", "f_diagonal", "点位密度不足乡镇 Sparse townships"),
    "thin_zones": ("#c51b7d", "cross", "点位不足连片区 Thin zones"),
    "uncertain_parcels": ("#8c510a", "solid", "类别不确定图斑 Uncertain parcels"),
    "crop_exceedance_class1": ("#e7298a", "solid", "优先保护类农产品超标 Crop exceedance on class 1"),
    "unclassified": ("#4d4d4d", "horizontal", "未分类图斑 Unclassified parcels"),
}
#: planned points of ``plan.gpkg`` by ``mode``: colour and bilingual label
PLAN_MODES: dict[str, tuple[str, str]] = {
    "uncertainty": ("#1f78b4", "不确定性 Uncertainty"),
    "coverage": ("#6a3d9a", "空间覆盖 Coverage"),
    "sources": ("#b15928", "污染源 Sources"),
}
#: what each styled layer shows (the ``description`` of its style in QGIS's style manager)
TITLES: dict[str, str] = {
    "parcels": "耕地图斑类别 Parcel classes", "samples": "土壤样点类别 Soil sample classes",
    "crops": "农产品样点 Crop samples", "zones": "管控连片区 Class zones",
    "plan": "加密采样点 Planned sampling points",
    "accounting": "安全利用率核算 Rate accounting per parcel",
    "changes": "类别变化 Class changes",
    "loop": "严格管控闭环状态 Closed-loop status", "product_zones": "特定农产品管控区 Product control zones",
    **{name: label for name, (_, _, label) in FLAG_STYLES.items()},
}
#: crop samples by ``exceeds`` (as the maps: red when above the limit, blue ring else)
CROP_EXCEEDS = "#d7301f"
CROP_OK = "#1f5fa8"
#: outline of class-3 zones in the maps
ZONE_OUTLINE = "#67000d"
#: outline of the specific-product control zones (control.gpkg) in the maps
PRODUCT_ZONE_OUTLINE = "#1a1a1a"
OUTLINE = "#4d4d4d"

_KINDS = {"POINT": "marker", "MULTIPOINT": "marker", "LINESTRING": "line",
          "MULTILINESTRING": "line", "CURVE": "line", "MULTICURVE": "line",
          "COMPOUNDCURVE": "line", "CIRCULARSTRING": "line", "POLYGON": "fill",
          "MULTIPOLYGON": "fill", "SURFACE": "fill", "MULTISURFACE": "fill",
          "CURVEPOLYGON": "fill", "TRIANGLE": "fill", "TIN": "fill",
          "POLYHEDRALSURFACE": "fill"}
_GEOMETRY_TYPE = {"marker": "0", "line": "1", "fill": "2"}


@dataclass(frozen=True)
class Look:
    """How one category (or a whole layer) is drawn; adapts to the geometry kind."""

    colour: str
    outline: str = OUTLINE
    alpha: int = 255
    outline_alpha: int = 255
    width: float = 0.26  # outline (fill, marker) or line width, mm
    size: float = 2.0  # marker diameter, mm
    brush: str = "solid"  # QGIS fill style: solid, b_diagonal, cross, horizontal …
    dash: str = "solid"  # outline / line style: solid, dash, dot
    shape: str = "circle"  # marker shape


@dataclass(frozen=True)
class LayerStyle:
    """A layer's renderer: one ``look``, or ``categories`` of ``attr`` (field or expression)."""

    kind: str  # default geometry kind when the file does not say: marker / line / fill
    column: str | None = None  # the column the style needs (None: any layer of that name)
    attr: str | None = None  # categorized on this field or expression
    categories: tuple[tuple[str, str, Look], ...] = ()  # (value, label, look); "" = NULL/other
    look: Look | None = None  # single symbol


# -- the styles of farmland's layers ----------------------------------------------------
Builder = Callable[[frozenset[str], Sequence[object]], LayerStyle]


def _class_label(code: int | None) -> str:
    prefix = f"{code} " if code is not None else ""
    return f"{prefix}{C.LABEL_ZH[code]} {C.LABEL_EN[code]}"


def _class_categories(look: Callable[[int | None], Look]) -> tuple[tuple[str, str, Look], ...]:
    return tuple(("" if code is None else str(code), _class_label(code), look(code))
                 for code in (*C.CLASS_CODES, None))


def _parcels(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    return LayerStyle("fill", "final_class", "final_class", _class_categories(
        lambda code: Look(C.PALETTE[code], outline=OUTLINE, outline_alpha=128, width=0.1)))


def _samples(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    return LayerStyle("marker", "point_class", "point_class", _class_categories(
        lambda code: Look(C.PALETTE[code], outline="#222222", width=0.2, size=2.0)))


def _zone_look(code: int | None) -> Look:
    outline = ZONE_OUTLINE if code == C.STRICT_CONTROL else C.PALETTE[code]
    return Look(C.PALETTE[code], outline=outline, alpha=64, width=0.6, dash="dash")


def _zones(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    # 'farmland flag' writes the strict-control zones only, without final_class
    if "final_class" not in columns:
        return LayerStyle("fill", None, look=_zone_look(C.STRICT_CONTROL))
    return LayerStyle("fill", "final_class", "final_class", _class_categories(_zone_look))


def _crops(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    # booleans arrive as 1/0, true/false or text: normalise them in the expression
    attr = ("CASE WHEN \"exceeds\" IS NULL THEN '' "
            "WHEN lower(to_string(\"exceeds\")) IN ('1', 'true', 'yes') THEN 'true' "
            "ELSE 'false' END")
    return LayerStyle("marker", "exceeds", attr, (
        ("true", "超标 Above the limit", Look(CROP_EXCEEDS, outline="#67000d", width=0.4,
                                            size=3.2)),
        ("false", "未超标 Within the limit", Look("#ffffff", outline=CROP_OK, width=0.5,
                                              size=2.4)),
        ("", "未知 Unknown", Look("#ffffff", outline=C.PALETTE[None], width=0.5, size=2.4))))


def _plan(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    def look(colour: str) -> Look:
        return Look(colour, outline="#ffffff", width=0.4, size=3.0)

    cats = [(mode, label, look(colour)) for mode, (colour, label) in PLAN_MODES.items()]
    extra = sorted({str(v) for v in values if v is not None and str(v) not in PLAN_MODES})
    cats += [(v, v, look(C.PALETTE[None])) for v in extra[:MAX_CATEGORIES]]
    cats.append(("", "其他 Other", look(C.PALETTE[None])))
    return LayerStyle("marker", "mode", "mode", tuple(cats))


def _accounting(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    """rate.gpkg: every parcel by its accounting status (what backs its counted 亩)."""
    cats = tuple((status, f"{zh} {en}", Look(colour, outline=OUTLINE, outline_alpha=128,
                                              width=0.1))
                 for status, (zh, en, colour) in ACCOUNTING_STATUSES.items())
    return LayerStyle("fill", "status", "status", cats)


def _changes(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    """changes.gpkg: the changed parcels by class flow, coloured as on the change map."""
    seen = sorted({str(v) for v in values if v is not None})[:MAX_CATEGORIES]
    cats = []
    for value in seen:
        zh, en, colour = FLOWS[flow_key(value)]
        cats.append((value, f"{value} {zh} {en}", Look(colour, outline=OUTLINE, width=0.1)))
    cats.append(("", "其他 Other", Look(FLOWS["?"][2], outline=OUTLINE, width=0.1)))
    return LayerStyle("fill", "flow", "flow", tuple(cats))


def _loop(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    """control.gpkg: each class-3 parcel by its closed-loop status (as on the map)."""
    cats = [(status, f"{zh} {en}", Look(colour, outline=OUTLINE, outline_alpha=128, width=0.1))
            for status, (zh, en, colour) in LOOP_STATUSES_STYLE.items()]
    cats.append(("", "其他 Other", Look(C.PALETTE[None], outline=OUTLINE, width=0.1)))
    return LayerStyle("fill", "loop_status", "loop_status", tuple(cats))


def _product_zones(columns: frozenset[str], values: Sequence[object]) -> LayerStyle:
    """control.gpkg: the specific-product control zones, outlined (the loop shows below)."""
    return LayerStyle("fill", None, look=Look(PRODUCT_ZONE_OUTLINE, alpha=0,
                                              outline=PRODUCT_ZONE_OUTLINE, width=0.8,
                                              brush="no", dash="dash"))


def _flag(name: str) -> Builder:
    colour, brush, _ = FLAG_STYLES[name]
    kind = "marker" if name == "crop_exceedance_class1" else "fill"
    look = Look(colour, outline=colour, alpha=90 if brush == "solid" else 255, width=0.5,
                brush=brush, dash="dash", shape="star", size=4.0)
    return lambda columns, values: LayerStyle(kind, None, look=look)


#: layer name → style builder (given the layer's columns and the distinct values of the
#: style's column)
STYLES: dict[str, Builder] = {
    "parcels": _parcels, "samples": _samples, "crops": _crops, "zones": _zones,
    "plan": _plan, "accounting": _accounting, "changes": _changes, "loop": _loop,
    "product_zones": _product_zones,
    **{name: _flag(name) for name in FLAG_STYLES},
}
STYLED_LAYERS = tuple(STYLES)


def style_column(layer: str, columns: Iterable[str]) -> str | None:
    """The column the style of ``layer`` (with these ``columns``) needs (``None``: none,
    or no style)."""
    return STYLES[layer](frozenset(columns), ()).column if layer in STYLES else None


# -- QML ----------------------------------------------------------------------------------
def style_qml(layer: str, columns: Iterable[str], geometry_type: str | None = None,
              values: Sequence[object] = ()) -> str | None:
    """QML document of the default style of ``layer``, or ``None`` when it has none.

    Parameters
    ----------
    layer
        Layer name (``parcels``, ``samples``, ``crops``, ``zones``, ``plan`` or a flag
        layer of ``flags.gpkg``).
    columns
        The layer's columns; without the column its style needs there is no style.
    geometry_type
        GeoPackage geometry type name (``MULTIPOLYGON``, ``POINT`` …); symbols follow it
        (``GEOMETRY`` or ``None``: the layer's usual kind).
    values
        Distinct values of the style's column (extra ``plan`` modes become categories).
    """
    if layer not in STYLES:
        return None
    columns = frozenset(columns)
    style = STYLES[layer](columns, values)
    if style.column is not None and style.column not in columns:
        log.debug("no style for layer %s: no column %s", layer, style.column)
        return None
    kind = _KINDS.get(str(geometry_type or "").upper(), style.kind)
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "Symbology"})
    if style.look is not None:
        renderer = ET.SubElement(root, "renderer-v2", _renderer_attrs("singleSymbol"))
        symbols = ET.SubElement(renderer, "symbols")
        _symbol(symbols, "0", kind, style.look)
    else:
        renderer = ET.SubElement(root, "renderer-v2",
                                 {**_renderer_attrs("categorizedSymbol"), "attr": style.attr})
        cats = ET.SubElement(renderer, "categories")
        symbols = ET.SubElement(renderer, "symbols")
        for i, (value, label, look) in enumerate(style.categories):
            ET.SubElement(cats, "category", {"value": value, "label": label, "symbol": str(i),
                                             "render": "true"})
            _symbol(symbols, str(i), kind, look)
    ET.SubElement(root, "layerGeometryType").text = _GEOMETRY_TYPE[kind]
    ET.indent(root)
    return _DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"


def _renderer_attrs(kind: str) -> dict[str, str]:
    return {"type": kind, "symbollevels": "0", "forceraster": "0", "enableorderby": "0"}


def _rgba(colour: str, alpha: int = 255) -> str:
    text = colour.lstrip("#")
    return ",".join(str(int(text[i:i + 2], 16)) for i in (0, 2, 4)) + f",{alpha}"


def _symbol(parent: ET.Element, name: str, kind: str, look: Look) -> None:
    symbol = ET.SubElement(parent, "symbol", {"type": kind, "name": name, "alpha": "1",
                                              "clip_to_extent": "1", "force_rhr": "0"})
    if kind == "fill":
        cls, props = "SimpleFill", {
            "color": _rgba(look.colour, look.alpha), "style": look.brush,
            "outline_color": _rgba(look.outline, look.outline_alpha),
            "outline_style": look.dash, "outline_width": f"{look.width:g}",
            "outline_width_unit": "MM", "joinstyle": "bevel", "offset": "0,0",
            "offset_unit": "MM"}
    elif kind == "marker":
        cls, props = "SimpleMarker", {
            "name": look.shape, "color": _rgba(look.colour, look.alpha),
            "outline_color": _rgba(look.outline, look.outline_alpha), "outline_style": "solid",
            "outline_width": f"{look.width:g}", "outline_width_unit": "MM",
            "size": f"{look.size:g}", "size_unit": "MM", "angle": "0",
            "scale_method": "diameter", "joinstyle": "bevel", "offset": "0,0",
            "offset_unit": "MM", "horizontal_anchor_point": "1", "vertical_anchor_point": "1"}
    else:
        cls, props = "SimpleLine", {
            "line_color": _rgba(look.colour, look.alpha), "line_style": look.dash,
            "line_width": f"{max(look.width, 0.26):g}", "line_width_unit": "MM",
            "capstyle": "square", "joinstyle": "bevel", "offset": "0", "offset_unit": "MM"}
    layer = ET.SubElement(symbol, "layer", {"class": cls, "enabled": "1", "locked": "0",
                                            "pass": "0"})
    # QGIS >= 3.26 reads the Option map, older versions the <prop> elements: write both
    options = ET.SubElement(layer, "Option", {"type": "Map"})
    for key, value in props.items():
        ET.SubElement(options, "Option", {"name": key, "type": "QString", "value": value})
    for key, value in props.items():
        ET.SubElement(layer, "prop", {"k": key, "v": value})


# -- writing into a GeoPackage -----------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def layer_style_rows(path: str | os.PathLike[str],
                     layers: Iterable[str] | None = None) -> list[dict[str, object]]:
    """``layer_styles`` rows for the spatial layers of the GeoPackage ``path`` that have a
    style (``layers``: only these, in this order; default every spatial layer)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:
        geometry = {str(t): (str(col), str(gtype)) for t, col, gtype in con.execute(
            "SELECT table_name, column_name, geometry_type_name FROM gpkg_geometry_columns")}
        names = list(geometry) if layers is None else [n for n in layers if n in geometry]
        rows = []
        for name in names:
            if name not in STYLES:
                continue
            columns = [str(r[1]) for r in con.execute(f"PRAGMA table_info({_quote(name)})")]
            column = style_column(name, columns)
            values: list[object] = []
            if name in VALUE_CATEGORIES and column is not None and column in columns:
                values = [v for (v,) in con.execute(
                    f"SELECT DISTINCT {_quote(column)} FROM {_quote(name)} "
                    f"ORDER BY 1 LIMIT {MAX_CATEGORIES + len(PLAN_MODES)}")]
            geom_column, geom_type = geometry[name]
            qml = style_qml(name, columns, geom_type, values)
            if qml is None:
                continue
            rows.append({"f_table_catalog": "", "f_table_schema": "", "f_table_name": name,
                         "f_geometry_column": geom_column, "styleName": STYLE_NAME,
                         "styleQML": qml, "styleSLD": "", "useAsDefault": True,
                         "description": f"farmland: {TITLES[name]}", "owner": "", "ui": "",
                         "update_time": UPDATE_TIME})
    return rows


def write_styles(path: str | os.PathLike[str], layers: Iterable[str] | None = None) -> list[str]:
    """Write the farmland styles of ``layers`` into the GeoPackage ``path`` as their
    default QGIS style (``useAsDefault = 1``).

    Creates ``layer_styles`` when absent (through GDAL, as QGIS does). An existing
    default style of a styled layer stops being the default, and a style named
    :data:`STYLE_NAME` of that layer is replaced, so writing twice leaves one style.
    ``update_time`` is fixed and the rows are written in layer order: the same file
    gives the same bytes.

    Parameters
    ----------
    path
        A GeoPackage (modified in place).
    layers
        Layer names to style, in this order (default: every spatial layer).

    Returns
    -------
    list of str
        The layers that got a style (layers without a known style, without the column
        their style needs, or without geometry get none).
    """
    path = Path(path)
    rows = layer_style_rows(path, layers)
    if not rows:
        return []
    names = [str(r["f_table_name"]) for r in rows]
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        exists = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                             "AND lower(name) = ?", (STYLE_TABLE,)).fetchone() is not None
        if exists:
            for row in rows:
                key = (row["f_table_name"], row["f_geometry_column"])
                con.execute(f"DELETE FROM {STYLE_TABLE} WHERE f_table_name = ? AND "
                            "f_geometry_column = ? AND styleName = ?", (*key, STYLE_NAME))
                con.execute(f"UPDATE {STYLE_TABLE} SET useAsDefault = 0 WHERE "
                            "f_table_name = ? AND f_geometry_column = ?", key)
    from farmland.io.write import FIXED_GPKG_DATE  # write.py imports this module

    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        pyogrio.write_dataframe(pd.DataFrame(rows), path, layer=STYLE_TABLE, driver="GPKG",
                                append=exists, layer_options=None if exists else {"FID": "id"})
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        # GeoPackage DATETIME text with milliseconds: GDAL < 3.8 (QGIS 3.22–3.34) warns
        # about "2000-01-01T00:00:00Z", the form recent GDAL writes for whole seconds
        con.executemany(f"UPDATE {STYLE_TABLE} SET update_time = ? WHERE styleName = ? "
                        "AND f_table_name = ?", [(FIXED_GPKG_DATE, STYLE_NAME, n) for n in names])
    log.debug("%s: QGIS styles for %s", path, ", ".join(names))
    return names
