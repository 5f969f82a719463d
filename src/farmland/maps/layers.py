"""Map layers: what each overlay shows, and the compact format it travels in.

Each overlay of a farmland map is described by a :class:`LayerSpec` (name, style,
tooltip rows) held as data in :data:`LAYER_SPECS`. Its features are written into the
page in a columnar, delta-encoded form (:func:`encode_layer`) that the runtime in
:mod:`farmland.maps.assets` decodes into Leaflet layers:

- coordinates: EPSG:4326 degrees × 10⁶ rounded to integers (6 decimals, ≈ 0.1 m),
  stored as differences from the previous vertex of the layer, rings without their
  closing vertex; ``rl`` vertices per ring, ``pr`` rings per polygon, ``fp``
  polygons per feature; for lines ``vl`` vertices per line and ``fl`` lines per feature;
- properties: one array per shown column; a text column with many repeats is
  stored as a dictionary ``{"d": [values], "i": [index per feature]}``.

Parcels are styled on the client from their class code (one small style table per
layer, not folium's one style object per feature).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template

from farmland import classes
from farmland.classify.outliers import ACTION_LABELS, hot_spot
from farmland.maps import display as disp_text
from farmland.maps.causes import CAUSE_SPECS, cause_columns
from farmland.maps.choropleth import OVERVIEW_SPECS
from farmland.maps.control import CONTROL_SPECS, control_columns
from farmland.maps.rendered import HtmlAsRendered
from farmland.maps.spec import LayerSpec
from farmland.vocabulary import FLOWS, flow_key, qa_flags_text, rule_text

logger = logging.getLogger(__name__)

#: coordinates are written as integers of 10⁻⁶ degree (6 decimals)
COORD_SCALE = 1_000_000

#: land-use vocabulary (docs/schema.md) with Chinese names for tooltips
LANDUSE_ZH = {"paddy": "水田", "irrigated": "水浇地", "dry": "旱地", "orchard": "果园",
              "garden": "其他园地", "rotation": "水旱轮作", "unknown": "未知"}

#: display formats of tooltip rows: decimals written and shown (``d``), unit appended
#: (``u``); ``auto``: decimals inferred per column from the lab's precision
#: (:func:`farmland.maps.display.lab_decimals`), else ``d`` fixed decimals or ``sig``
#: significant digits per value
FORMATS: dict[str, dict[str, object]] = {
    "text": {}, "bool": {"f": "bool"}, "int": {"d": 0},
    "mu": {"d": 2, "u": "亩"},
    "p": {"d": 2},
    "q": {"d": 3},
    "ph": {"d": 2, "auto": True},
    "mgkg": {"u": "mg/kg", "auto": True, "sig": disp_text.FALLBACK_SIGNIFICANT},
    "pct": {"d": 1, "u": "%"},
    "link": {"f": "link", "t": "打开 open"},
}
#: keys of a format that stay on the Python side
_SERVER_KEYS = ("auto", "sig")

#: at most this many sample ids are listed in a parcel tooltip
MAX_SAMPLE_IDS = 6
#: a point layer whose spec says ``cluster`` is drawn clustered above this many points
CLUSTER_MIN_POINTS = 2_000
#: Leaflet.markercluster options: points from zoom 13 (≈ 17 m/px), no animation, no spiderfy
CLUSTER_OPTIONS: dict[str, object] = {
    "disableClusteringAtZoom": 13, "maxClusterRadius": 60, "animate": False,
    "showCoverageOnHover": False, "spiderfyOnMaxZoom": False, "removeOutsideVisibleBounds": True}


def _class_styles(*, outline: bool) -> dict[str, dict[str, object]]:
    """Class code (text, ``"null"`` = unclassified) → fill colour (and same-colour outline)."""
    out = {}
    for code in (*classes.CLASS_CODES, None):
        colour = classes.PALETTE[code]
        out["null" if code is None else str(code)] = (
            {"fillColor": colour, "color": colour} if outline else {"fillColor": colour})
    return out


_ELEMENT_ROWS = (*((el.capitalize(), (el,), "mgkg") for el in disp_text.POPUP_METALS),
                 ("未检出 Not detected (ND)", ("_nd",), "text"))

#: the overlays, bottom to top (drawing order); keys are the ``make_map`` arguments
LAYER_SPECS: dict[str, LayerSpec] = {
    "townships": LayerSpec(
        "乡镇边界 Townships",
        {"color": "#333333", "weight": 1.6, "opacity": 0.9, "fill": False},
        (("乡镇 Township", ("township",), "text"), ("代码 Code", ("township_code",), "text")),
        symbol="line"),
    "parcels": LayerSpec(
        "耕地图斑 Parcels",
        {"weight": 1, "opacity": 0.6, "fillOpacity": 0.78},
        (("图斑 Parcel", ("parcel_id",), "text"),
         ("乡镇 Township", ("township",), "text"),
         ("村 Village", ("village",), "text"),
         ("地类 Land use", ("_landuse",), "text"),
         ("类别 Class", ("_class",), "text"),
         ("面积 Area", ("area_mu",), "mu"),
         ("依据 Rule", ("_rule",), "text"),
         ("主控元素 Driving element", ("driving_element",), "text"),
         ("样点 Samples used", ("_sample_ids",), "text"),
         ("概率 P(1/2/3)", ("p_class_1", "p_class_2", "p_class_3"), "p"),
         ("校准概率 Calibrated P(1/2/3)", tuple(f"p_calibrated_{k}" for k in (1, 2, 3)), "p"),
         ("措施 Measures", ("measures",), "text"),
         ("质控 QA flags", ("_qa_flags",), "text")),
        by="final_class", styles=_class_styles(outline=True), symbol="fill",
        zoomed=((15, {"color": "#4d4d4d", "weight": 0.6, "opacity": 0.8}),)),
    "loop": CONTROL_SPECS["loop"],  # class-3 parcels by closed-loop status, above the classes
    "changes": LayerSpec(
        "类别变化 Class changes",
        {"weight": 1.5, "opacity": 1.0, "fillOpacity": 0.85},
        (("图斑 Parcel", ("parcel_id",), "text"), ("乡镇 Township", ("township",), "text"),
         ("变化 Flow", ("_flow",), "text"), ("原因 Cause", ("_cause",), "text"),
         ("详情 Detail", ("cause_detail",), "text"), ("面积 Area", ("area_mu",), "mu")),
        by="_flow_key", styles={k: {"fillColor": c, "color": c}
                                for k, (_, _, c) in FLOWS.items()},
        symbol="flows",
        zoomed=((15, {"color": "#333333", "weight": 1.2}),)),
    "clusters": CAUSE_SPECS["clusters"],  # contaminated-land clusters by top candidate type
    "product_zones": CONTROL_SPECS["product_zones"],
    "zones": LayerSpec(
        "严格管控区 Strict-control zones",
        {"color": "#67000d", "weight": 2.5, "opacity": 1.0, "dashArray": "6 4", "fill": False},
        (("管控区 Zone", ("zone_id",), "text"), ("乡镇 Township", ("township",), "text"),
         ("面积 Area", ("area_mu",), "mu"), ("样点数 Samples", ("n_samples",), "int"),
         ("主控元素 Driving elements", ("driving_elements",), "text")),
        symbol="line"),
    "flags": LayerSpec(
        "数据稀疏标记 Sparse-data flags",
        {"color": "#7b3294", "weight": 2, "opacity": 1.0, "dashArray": "3 3", "fill": False,
         "radius": 6},
        (("标记 Flag", ("flag",), "text"),
         ("原因 Reason", ("reason_zh", "reason_en", "reason"), "text"),
         ("乡镇 Township", ("township",), "text"), ("图斑 Parcel", ("parcel_id",), "text")),
        symbol="line"),
    "candidate_links": CAUSE_SPECS["candidate_links"],
    "samples": LayerSpec(
        "土壤样点 Soil samples",
        {"radius": 2, "color": "#222222", "weight": 0.5, "fillOpacity": 1.0},
        (("样点 Sample", ("sample_id",), "text"), ("类别 Point class", ("_class",), "text"),
         ("主控元素 Driving element", ("driving_element",), "text"),
         ("pH", ("ph",), "ph"), *_ELEMENT_ROWS),
        by="point_class", styles=_class_styles(outline=False), symbol="classdots",
        zoomed=((12, {"radius": 3, "weight": 1}), (14, {"radius": 5})), cluster=True),
    "crops": LayerSpec(
        "农产品样点 Crop samples",
        {"radius": 3, "color": "#1f5fa8", "weight": 1.5, "fillColor": "#ffffff",
         "fillOpacity": 1.0},
        (("样品 Sample", ("sample_id",), "text"), ("作物 Crop", ("crop",), "text"),
         ("等级 Grade", ("crop_grade",), "int"), ("超标 Exceeds limit", ("exceeds",), "bool"),
         *_ELEMENT_ROWS),
        by="exceeds", styles={"true": {"color": "#d7301f", "weight": 2.5, "radius": 5}},
        cluster=True),
    "hotspots": CAUSE_SPECS["hotspots"],
    "sources": LayerSpec(
        "污染源 Pollution sources",
        {"radius": 6, "color": "#ffd60a", "weight": 2, "fillColor": "#000000",
         "fillOpacity": 1.0},
        (("名称 Name", ("name",), "text"), ("行业 Industry", ("industry",), "text"),
         ("重金属 Metals", ("metals",), "text"))),
    "confirm": CAUSE_SPECS["confirm"],
    "outliers": LayerSpec(   # a ring: left out of the surfaces; filled: a kept hot spot
        "可疑数值与高值点 Suspect values and hot spots",
        {"radius": 7, "color": "#e7298a", "weight": 2.5, "fillColor": "#ffffff",
         "fillOpacity": 0.0},
        (("样点 Sample", ("sample_id",), "text"), ("项目 Item", ("element",), "text"),
         ("数值 Value", ("value",), "text"), ("检查 Check", ("check",), "text"),
         ("说明 Detail", ("detail",), "text"), ("处理 Action", ("_action",), "text")),
        by="_kept", styles={"false": {"fillColor": "#ffffff", "fillOpacity": 0.0},
                            "true": {"fillColor": "#e7298a", "fillOpacity": 0.85}},
        symbol="dots"),
    "plan": LayerSpec(
        "加密采样点 Planned sampling points",
        {"radius": 5, "color": "#ffffff", "weight": 1.5, "fillColor": "#1f78b4",
         "fillOpacity": 1.0},
        (("点号 Point", ("point_id",), "text"), ("方式 Mode", ("mode",), "text"),
         ("原因 Reason", ("_reason",), "text"),
         ("变化概率 P(change)", ("_p_change",), "text"),
         ("优先级 Priority", ("priority",), "text")), cluster=True),
    **OVERVIEW_SPECS,  # province overview: counties and townships, one layer per theme
}


# Display columns derived from the canonical ones ------------------------------------
def display_frame(key: str, gdf: pd.DataFrame) -> pd.DataFrame:
    """Columns layer ``key`` (of :data:`LAYER_SPECS`) shows, derived from the canonical
    columns of ``gdf`` (not modified): text labels, truncated lists. Only the columns named
    by the layer's style and tooltip rows that exist and hold at least one value."""
    spec = LAYER_SPECS[key]
    out = pd.DataFrame(index=gdf.index)
    class_col = {"parcels": "final_class", "samples": "point_class"}.get(key)
    if class_col is not None and class_col in gdf:
        codes = classes.as_class(gdf[class_col].to_numpy()).set_axis(gdf.index)
        out[class_col] = codes
        out["_class"] = _map_distinct(
            codes, lambda c: f"{classes.label_zh(c)} {classes.label_en(c)}")
    if key == "parcels":
        if "landuse" in gdf or "dlbm" in gdf:
            out["_landuse"] = _landuse_text(gdf)
        for col, text in (("sample_ids", _short_id_list), ("rule", rule_text),
                          ("qa_flags", qa_flags_text)):   # texts per distinct value
            if col in gdf:
                out[f"_{col}"] = _map_distinct(gdf[col], text)
    if key == "plan":
        if "mode" in gdf:
            out["mode"] = gdf["mode"].map(lambda m: disp_text.MODE_LABELS.get(m, m))
        if "reason" in gdf:
            texts = [disp_text.plan_reason(r) for r in gdf["reason"]]
            out["_reason"] = [t[0] for t in texts]
            out["_p_change"] = [t[1] for t in texts]
    if key == "outliers" and "action" in gdf:
        out["_kept"] = hot_spot(gdf["action"])
        out["_action"] = gdf["action"].map(
            lambda a: " ".join(ACTION_LABELS.get(a, (a,))) if isinstance(a, str) else None)
    if key in ("samples", "crops") and (nd := disp_text.not_detected(gdf)) is not None:
        out["_nd"] = nd
    if key == "changes":
        _change_columns(gdf, out)
    if key in CONTROL_SPECS:
        control_columns(key, gdf, out)
    if key in CAUSE_SPECS:
        cause_columns(key, gdf, out)
    formats = {c: fmt for _, cols, fmt in spec.tip for c in cols}
    for col in [*formats, *([spec.by] if spec.by else [])]:
        if col in gdf and col not in out:
            out[col] = (gdf[col].astype("boolean") if formats.get(col) == "bool"
                        else disp_text.coded(col, gdf[col]))
    return out.loc[:, out.notna().any().to_numpy()]  # e.g. p_class_* all NaN: no row


def _change_columns(gdf: pd.DataFrame, out: pd.DataFrame) -> None:
    """Flow key (style), flow text and cause of the changed parcels of ``farmland diff``."""
    none = pd.Series(None, index=gdf.index, dtype=object)
    flow, a, b = (gdf.get(c, none) for c in ("flow", "class_a", "class_b"))
    keys = [flow_key(f, x, y) for f, x, y in zip(flow, a, b, strict=True)]
    out["_flow_key"] = keys
    out["_flow"] = [disp_text.flow_text(f, k) for f, k in zip(flow, keys, strict=True)]
    cause = gdf.get("cause", gdf.get("reason", none))
    out["_cause"] = cause.map(disp_text.cause_text)


def _landuse_text(gdf: pd.DataFrame) -> list[str | None]:
    landuse = gdf["landuse"] if "landuse" in gdf else pd.Series(None, index=gdf.index)
    dlbm = gdf["dlbm"] if "dlbm" in gdf else pd.Series(None, index=gdf.index)
    out: list[str | None] = []
    for lu, code in zip(landuse.to_numpy(dtype=object), dlbm.to_numpy(dtype=object), strict=True):
        parts = []
        if isinstance(lu, str) and lu:
            parts.append(f"{LANDUSE_ZH.get(lu, lu)} {lu}")
        if isinstance(code, str) and code:
            parts.append(f"({code})")
        out.append(" ".join(parts) or None)
    return out


def _map_distinct(column: pd.Series, text: Callable[[object], object]) -> pd.Series:
    """``column.map(text)`` as objects, calling ``text`` once per distinct value (30 000
    parcels share a few thousand rules and sample lists)."""
    values = column.to_numpy(dtype=object)
    codes, distinct = pd.factorize(values)  # missing values: code -1
    shown = [text(v) for v in distinct]
    return pd.Series([shown[c] if c >= 0 else text(v) for c, v in zip(codes, values, strict=True)],
                     index=column.index, dtype=object)


def _short_id_list(ids: object) -> object:
    """``'S1,S2,…'`` cut to :data:`MAX_SAMPLE_IDS` ids plus ``(+n)``."""
    if not isinstance(ids, str):
        return None
    items = [i.strip() for i in ids.split(",") if i.strip()]
    if len(items) <= MAX_SAMPLE_IDS:
        return ", ".join(items) or None
    return ", ".join(items[:MAX_SAMPLE_IDS]) + f" (+{len(items) - MAX_SAMPLE_IDS})"


# Encoding ---------------------------------------------------------------------------
def encode_layer(key: str, disp: pd.DataFrame, geometry: np.ndarray,
                 decimals: dict[str, int | None] | None = None) -> list[dict]:
    """Encode one layer's features (EPSG:4326 geometry) in the compact page format.

    Parameters
    ----------
    key
        Layer key of :data:`LAYER_SPECS`.
    disp
        The layer's shown columns (:func:`display_frame`), aligned with ``geometry``.
    geometry
        Shapely geometries in EPSG:4326 (lon/lat degrees).
    decimals
        Decimals per column (:func:`column_decimals` of the whole layer by default).

    Returns
    -------
    list of dict
        One part each for the polygonal, the point and the line features (each only
        when present). Other geometry types are skipped with a warning.
    """
    geometry = np.asarray(geometry, dtype=object)
    types = shapely.get_type_id(geometry)
    polygonal = np.isin(types, (3, 6))  # Polygon, MultiPolygon
    point = np.isin(types, (0, 4))  # Point, MultiPoint
    line = np.isin(types, (1, 5))  # LineString, MultiLineString
    other = ~(polygonal | point | line) & ~shapely.is_empty(geometry)
    if other.any():
        logger.warning("%s: %d feature(s) that are not points, lines or polygons are not drawn",
                       key, int(other.sum()))
    decimals = column_decimals(key, disp) if decimals is None else decimals
    parts = []
    for mask, encoder in ((polygonal, _encode_polygons), (point, _encode_points),
                          (line, _encode_lines)):
        mask = mask & ~shapely.is_empty(geometry)
        if mask.any():
            part, rows = encoder(geometry[mask])
            part["cols"] = encode_columns(key, disp.iloc[np.flatnonzero(mask)[rows]], decimals)
            parts.append(part)
    return parts


def _encode_polygons(geoms: np.ndarray) -> tuple[dict, np.ndarray]:
    polys, feature = shapely.get_parts(geoms, return_index=True)
    rings, poly = shapely.get_rings(polys, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    per_ring = np.bincount(ring, minlength=len(rings))
    keep = np.ones(len(coords), dtype=bool)
    keep[np.cumsum(per_ring) - 1] = False  # closing vertex
    return {"kind": "polygon", "n": len(geoms), "s": COORD_SCALE,
            "xy": _deltas(coords[keep]),
            "rl": (per_ring - 1).tolist(),
            "pr": np.bincount(poly, minlength=len(polys)).tolist(),
            "fp": np.bincount(feature, minlength=len(geoms)).tolist()}, np.arange(len(geoms))


def _encode_lines(geoms: np.ndarray) -> tuple[dict, np.ndarray]:
    lines, feature = shapely.get_parts(geoms, return_index=True)  # MultiLineString → lines
    coords, line = shapely.get_coordinates(lines, return_index=True)
    return {"kind": "line", "n": len(geoms), "s": COORD_SCALE, "xy": _deltas(coords),
            "vl": np.bincount(line, minlength=len(lines)).tolist(),
            "fl": np.bincount(feature, minlength=len(geoms)).tolist()}, np.arange(len(geoms))


def _encode_points(geoms: np.ndarray) -> tuple[dict, np.ndarray]:
    pts, feature = shapely.get_parts(geoms, return_index=True)  # MultiPoint → its points
    coords = shapely.get_coordinates(pts)
    return {"kind": "point", "n": len(pts), "s": COORD_SCALE, "xy": _deltas(coords)}, feature


def _deltas(coords: np.ndarray) -> list[int]:
    q = np.round(coords * COORD_SCALE).astype(np.int64)
    return np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel().tolist()


def column_decimals(key: str, disp: pd.DataFrame) -> dict[str, int | None]:
    """Decimals each numeric shown column is written and displayed with.

    Fixed by the row's format, or for ``auto`` formats inferred from the column's values
    (the lab's precision, :func:`farmland.maps.display.lab_decimals`); ``None`` for a
    column shown with significant digits or as written.
    """
    out: dict[str, int | None] = {}
    for _, cols, fmt in LAYER_SPECS[key].tip:
        f = FORMATS[fmt]
        for c in cols:
            if c not in disp or not f.get("auto"):
                out[c] = f.get("d")  # type: ignore[assignment]
                continue
            d = disp_text.lab_decimals(disp[c])
            out[c] = d if d is not None else (None if "sig" in f else f.get("d"))  # type: ignore
    return out


def encode_columns(key: str, disp: pd.DataFrame,
                   decimals: dict[str, int | None] | None = None) -> dict[str, object]:
    """Shown columns as JSON-ready arrays, rounded to their display decimals
    (:func:`column_decimals` of ``disp`` unless given for the whole layer)."""
    decimals = column_decimals(key, disp) if decimals is None else decimals
    sig = {c: FORMATS[fmt]["sig"] for _, cols, fmt in LAYER_SPECS[key].tip for c in cols
           if "sig" in FORMATS[fmt]}
    out = {}
    for col in disp.columns:
        s = disp[col]
        if col in sig and decimals.get(col) is None and pd.api.types.is_numeric_dtype(s.dtype):
            s = disp_text.round_significant(s, sig[col])  # type: ignore[arg-type]
        out[col] = _encode_column(s, decimals.get(col))
    return out


def _encode_column(s: pd.Series, decimals: object) -> object:
    if pd.api.types.is_bool_dtype(s.dtype):
        return [None if pd.isna(v) else bool(v) for v in s]
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.astype("Float64").round(decimals if isinstance(decimals, int) else 6)
        values = values.where(np.isfinite(values.astype(float)))  # NaN, ±inf -> missing
        missing = values.isna().to_numpy()
        numbers = values.to_numpy(dtype=float, na_value=np.nan).tolist()  # plain floats: fast
        if decimals == 0 or pd.api.types.is_integer_dtype(s.dtype):
            return [None if m else int(v) for v, m in zip(numbers, missing, strict=True)]
        return [None if m else float(v) for v, m in zip(numbers, missing, strict=True)]
    text = [None if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v)
            for v in s.to_numpy(dtype=object)]  # iterating the array itself is slow for str
    uniques = pd.unique(pd.Series(text, dtype=object))
    if 2 * len(uniques) > len(text):
        return text
    lookup = {v: i for i, v in enumerate(uniques)}
    return {"d": list(uniques), "i": [lookup[v] for v in text]}


def to_script_json(obj: object) -> str:
    """Compact JSON that is safe inside a ``<script>`` element (no ``<``, ``>``, ``&``)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, esc)
    return text


def client_spec(key: str, disp_columns: object,
                decimals: dict[str, int | None] | None = None) -> dict[str, object]:
    """The style and tooltip rows of a layer as the runtime reads them; ``decimals``
    (:func:`column_decimals`) overrides the decimals of ``auto`` rows (``None``: the
    value as written, already rounded to significant digits)."""
    spec = LAYER_SPECS[key]
    present = set(disp_columns)
    tip = []
    for label, cols, fmt in spec.tip:
        shown = [c for c in cols if c in present]
        if not shown:
            continue
        row = {k: v for k, v in FORMATS[fmt].items() if k not in _SERVER_KEYS}
        if FORMATS[fmt].get("auto") and decimals is not None:
            ds = [decimals.get(c) for c in shown]
            row.pop("d", None)
            if all(d is not None for d in ds):
                row["d"] = max(ds)  # type: ignore[type-var]
        tip.append({"l": label, "c": shown, **row})
    return {"style": {"base": spec.base, "by": spec.by, "map": spec.styles,
                      "zoomed": [{"minZoom": z, "style": st} for z, st in spec.zoomed]},
            "tip": tip}


class FeatureLayer(HtmlAsRendered, Layer):
    """A toggleable overlay drawn by the farmland runtime from the compact format."""

    _html = Template("""{% macro html(this, kwargs) %}
            <script type="application/json" id="{{ this.get_name() }}_data">{{ this.data_json }}</script>
        {% endmacro %}""")
    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = farmland.layer({{ this.key|tojson }},
                {{ this.spec_json }}, farmland.data("{{ this.get_name() }}_data"));
        {% endmacro %}
    """)

    @classmethod
    def from_frame(cls, key: str, gdf: pd.DataFrame, geometry: np.ndarray,
                   style: dict[str, object] | None = None, *, overlay: bool = True,
                   show: bool = True) -> FeatureLayer:
        """The layer ``key`` of the rows ``gdf`` drawn with ``geometry`` (EPSG:4326);
        ``style`` overrides Leaflet options of every feature (e.g. faded parcels). A
        layer whose spec allows it is clustered above :data:`CLUSTER_MIN_POINTS` points.
        ``overlay=False``: one of the exclusive base layers (the overview's themes),
        drawn at opening when ``show``."""
        disp = display_frame(key, gdf)
        decimals = column_decimals(key, disp)
        spec = client_spec(key, disp.columns, decimals)
        if style:
            spec["style"]["base"] = {**spec["style"]["base"], **style}  # type: ignore[index]
        parts = encode_layer(key, disp, geometry, decimals)
        if LAYER_SPECS[key].cluster and sum(
                p["n"] for p in parts if p["kind"] == "point") > CLUSTER_MIN_POINTS:
            spec["cluster"] = dict(CLUSTER_OPTIONS)
        return cls(key, parts, spec, overlay=overlay, show=show)

    def __init__(self, key: str, parts: list[dict], spec: dict[str, object], *,
                 overlay: bool = True, show: bool = True) -> None:
        super().__init__(name=LAYER_SPECS[key].name, overlay=overlay, control=True, show=show)
        self._name = f"farmland_{key}"
        self.key = key
        self.clustered = "cluster" in spec
        self.spec_json = to_script_json(spec)
        self.data_json = to_script_json(parts)
        self.n_features = sum(p["n"] for p in parts)


class ReadyHook(MacroElement):
    """Calls ``farmland.ready(map)`` once every layer has been added (render timing)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            farmland.ready({{ this._parent.get_name() }});
        {% endmacro %}
    """)
