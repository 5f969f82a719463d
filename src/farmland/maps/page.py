"""Interactive, self-contained, offline HTML maps of a classification.

:func:`make_map` builds a :class:`folium.Map` of classified parcels (coloured green /
amber / red / grey by final class) with optional overlays — soil and crop samples,
strict-control zones, sparse-data flags, planned sampling points, pollution sources,
township boundaries and names, the closed loop of the class-3 parcels and the product
control zones (:mod:`farmland.maps.control`), the contaminated-land clusters with their
candidate sources, Cd hot spots and confirmation samples (:mod:`farmland.maps.causes`) — a
bilingual legend with the area per class in 亩, a
title and a summary of the safe-utilisation rate. A township detail map clips every
overlay to the township (:mod:`farmland.maps.township`). :func:`save_map` writes it
atomically; :func:`farmland.maps.diff.make_diff_map` draws the changes between two runs.

The page needs no network: Leaflet and a small runtime are inlined
(:mod:`farmland.maps.assets`), no Bootstrap, jQuery or Font Awesome is loaded, and
the features travel in a compact delta-encoded format (:mod:`farmland.maps.layers`).
Every attribute value reaches the page either HTML-escaped (title, legend) or as
text through ``textContent`` (tooltips, popups), never as markup.

Geometry is simplified in the metric CRS (shared edges kept) and reprojected to
EPSG:4326 only for display.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from farmland import classes
from farmland.errors import CRSError, InputError
from farmland.io.write import atomic_write, refuse_existing
from farmland.maps import assets as map_assets
from farmland.maps.causes import CAUSE_SPECS, cause_rows, shown_area
from farmland.maps.control import loop_display
from farmland.maps.labels import add_labels
from farmland.maps.layers import LAYER_SPECS, FeatureLayer, ReadyHook
from farmland.maps.panels import (  # noqa: F401  (re-exported: the page's boxes)
    DEFAULT_TARGET,
    Panel,
    area_mu_by_class,
    legend_html,
    title_html,
)
from farmland.maps.township import clip_to_area, township_area

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "耕地土壤环境质量类别图 Farmland soil environmental quality classes"
#: deepest zoom: the scale bar stays at 10–20 m (zoom 19 ≈ 0.27 m per pixel at 25° N)
MAX_ZOOM = 19
#: deepest zoom of the tile services (tianditu, OSM); deeper tiles are enlarged
MAX_TILE_ZOOM = 18
#: the view can be zoomed out this many levels from the fitted county (or township) …
ZOOM_OUT_LEVELS = 2
#: … and panned at most this many view widths away from it (Leaflet ``maxBounds`` pad)
PAN_PAD = 1.0


def _tianditu(layer: str) -> tuple[str, str, str]:
    """Tianditu Web-Mercator (``_w``) WMTS tiles of ``layer`` as an XYZ template."""
    url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
           f"&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
           "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}")
    return url, "天地图 Tianditu", "01234567"


#: named tile presets: ``(URL template, attribution, subdomains)`` per tile layer
TILE_PRESETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "osm": (("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
             "&copy; OpenStreetMap contributors", "abc"),),
    "tianditu-vec": (_tianditu("vec"), _tianditu("cva")),  # vector map + annotation
    "tianditu-img": (_tianditu("img"), _tianditu("cia")),  # imagery + annotation
}


def make_map(
    parcels: gpd.GeoDataFrame,
    *,
    samples: gpd.GeoDataFrame | None = None,
    crops: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
    flags: gpd.GeoDataFrame | None = None,
    plan: gpd.GeoDataFrame | None = None,
    sources: gpd.GeoDataFrame | None = None,
    townships: gpd.GeoDataFrame | None = None,
    outliers: gpd.GeoDataFrame | None = None,
    loop: gpd.GeoDataFrame | None = None,
    product_zones: gpd.GeoDataFrame | None = None,
    clusters: gpd.GeoDataFrame | None = None,
    candidate_links: gpd.GeoDataFrame | None = None,
    hotspots: gpd.GeoDataFrame | None = None,
    confirm: gpd.GeoDataFrame | None = None,
    rate: Mapping[str, float] | None = None,
    township: str | None = None,
    title: str = DEFAULT_TITLE,
    tiles: str = "none",
    tiles_attr: str | None = None,
    simplify_m: float = 5.0,
) -> folium.Map:
    """Build a self-contained map of classified parcels and optional overlays.

    Parameters
    ----------
    parcels
        The classification ``parcels`` layer (docs/schema.md) in a projected (metric)
        CRS; needs ``final_class`` (Int8 1/2/3/<NA>). Other columns shown when
        present: parcel_id, township, village, landuse, dlbm, area_mu, rule,
        driving_element, sample_ids, p_class_1..3, measures, qa_flags.
    samples, crops, zones, flags, plan, sources, townships, outliers
        Optional overlays, any CRS; each is drawn (and listed in the layer control
        and legend) only when given and not empty. See ``LAYER_SPECS`` for the columns
        each one shows.
    loop, product_zones
        The layers of ``control.gpkg`` (``farmland control``): the class-3 parcels with
        their ``loop_status`` (filled by status, drawn with the simplified geometry of the
        parcel of the same ``parcel_id``; the legend gives the 亩 per status) and the
        specific-product control zones (outlined). On a township map the loop keeps the
        township's parcels.
    clusters, candidate_links, hotspots, confirm
        The layers of ``sources.gpkg`` (``farmland sources``): clusters filled by the type
        of their top candidate (the legend gives the 亩 per type), links from candidates to
        clusters (ranks 1–3), Cd Gi* hot spots, confirmation samples by mode.
    rate
        Safe-utilisation rate summary, e.g. ``{"rate": 0.897, "target": 0.91,
        "gap_mu": 1234.5}`` (rate and target as fractions, gap in 亩).
    township
        Draw only this township's parcels (detail map), every overlay clipped to the
        township (its polygon in ``townships``, else its parcels' union + 100 m;
        pollution sources within 1.5 km): :mod:`farmland.maps.township`. ``None``: the
        county overview.
    title
        Page and map title (escaped).
    tiles
        ``"none"`` (plain background), ``"osm"``, ``"tianditu-vec:KEY"``,
        ``"tianditu-img:KEY"`` or a URL template with ``{z}``, ``{x}``, ``{y}``.
    tiles_attr
        Attribution of a URL template (default: the template's host).
    simplify_m
        Simplification tolerance in metres (0: none). Parcels are simplified as a
        coverage so neighbours keep their shared edges.

    Returns
    -------
    folium.Map
        Save it with :func:`save_map`; the page works offline as one file.

    Raises
    ------
    CRSError
        A layer has no CRS, or the parcels are not in a projected CRS.
    InputError
        ``final_class`` is missing, no parcel has a geometry, or ``township`` matches
        no parcel.
    """
    _check_crs(parcels, "parcels", projected=True)
    if "final_class" not in parcels:
        raise InputError("the parcels have no 'final_class' column", column="final_class",
                         fix="pass the 'parcels' layer written by 'farmland classify'")
    shown = _select_township(parcels, township)
    given = {"samples": samples, "crops": crops, "zones": zones, "flags": flags, "plan": plan,
             "sources": sources, "townships": townships, "outliers": outliers, "loop": loop,
             "product_zones": product_zones, "clusters": clusters,
             "candidate_links": candidate_links, "hotspots": hotspots, "confirm": confirm}
    overlays = overlay_layers(given, shown, township, simplify_m=simplify_m)
    display = _display_geometry(shown, simplify_m)
    if "loop" in overlays:
        rows, own = overlays["loop"]
        overlays["loop"] = (rows, loop_display(rows, shown, display, own))
    fmap = _base_map(display, title, tiles, tiles_attr)
    drawn = draw_layers(fmap, {"parcels": (shown, display), **overlays}, shown)
    Panel(title_html(title, shown, township, rate)).add_to(fmap)
    Panel(legend_html(shown, [k for k in drawn if k != "parcels"],
                      loop=overlays["loop"][0] if "loop" in overlays else None,
                      causes={k: overlays[k][0] for k in CAUSE_SPECS if k in overlays})
          ).add_to(fmap)
    ReadyHook().add_to(fmap)
    logger.info("map of %d parcels (%s) with layers: %s", len(shown),
                township or "all parcels", ", ".join(drawn))
    return fmap


def save_map(fmap: folium.Map, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``fmap`` as one HTML file, atomically (temporary file, then rename).

    Parameters
    ----------
    fmap
        A map from :func:`make_map`.
    path
        Output ``.html`` path; missing parent folders are created.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    refuse_existing([path], overwrite=overwrite)
    _stable_ids(fmap)
    text = fmap.get_root().render()
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    logger.info("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
    return path


def _stable_ids(fmap: folium.Map) -> None:
    """Number the elements in tree order so the same map always renders the same bytes."""
    stack, counter = [fmap], 0
    while stack:
        element = stack.pop(0)
        element._id = f"{counter:08x}"
        counter += 1
        stack.extend(element._children.values())


# Inputs -----------------------------------------------------------------------------
def _check_crs(gdf: gpd.GeoDataFrame, name: str, *, projected: bool = False) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"the {name} layer is not a GeoDataFrame (got {type(gdf).__name__})",
                         fix="read it with geopandas / farmland.io.readers")
    if gdf.crs is None:
        raise CRSError(f"the {name} layer has no CRS",
                       fix="set it (e.g. gdf.set_crs('EPSG:4545')) or pass --crs")
    if projected and not gdf.crs.is_projected:
        raise CRSError(f"the {name} layer is in a geographic CRS ({gdf.crs.to_string()}); "
                       "simplification and areas need metres",
                       fix="project it to the metric CRS (CGCS2000 Gauss-Krüger) first")


def _select_township(parcels: gpd.GeoDataFrame, township: str | None) -> gpd.GeoDataFrame:
    parcels = parcels[~(parcels.geometry.isna() | parcels.geometry.is_empty)]
    if parcels.empty:
        raise InputError("there are no parcels with a geometry to draw", column="geometry",
                         fix="check that the classification's parcels layer is not empty")
    if township is None:
        return parcels.copy()
    if "township" not in parcels:
        raise InputError("a township detail map needs a 'township' column in the parcels",
                         column="township", fix="classify with township names, or omit --township")
    shown = parcels[parcels["township"] == township]
    if shown.empty:
        names = sorted(str(t) for t in parcels["township"].dropna().unique())
        raise InputError("no parcel lies in this township", column="township", value=township,
                         fix="use one of: " + ", ".join(names[:20]))
    return shown.copy()


def draw_layers(fmap: folium.Map, layers: dict[str, tuple[gpd.GeoDataFrame, np.ndarray]],
                parcels: gpd.GeoDataFrame | None,
                styles: Mapping[str, dict[str, object]] | None = None) -> list[str]:
    """Add the feature layers in drawing order (``styles``: Leaflet options overriding a
    layer's base style), the township labels and the layer control; returns the keys
    drawn."""
    drawn, clustered = [], False
    for key in LAYER_SPECS:  # drawing order, bottom to top
        if key in layers:
            style = (styles or {}).get(key)
            layer = FeatureLayer.from_frame(key, *layers[key], style=style).add_to(fmap)
            clustered = clustered or layer.clustered
            drawn.append(key)
    if clustered:  # Leaflet.markercluster inlined only when a layer needs it
        fmap.get_root().header.add_child(Element(map_assets.inline_head(cluster=True)),
                                         name="farmland_assets")
    towns = layers["townships"][0] if "townships" in layers else None
    crs = (parcels if parcels is not None else next(iter(layers.values()))[0]).crs
    add_labels(fmap, parcels, towns, crs)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    return drawn


def overlay_layers(given: dict[str, gpd.GeoDataFrame | None], parcels: gpd.GeoDataFrame,
                   township: str | None, *, simplify_m: float = 0.0
                   ) -> dict[str, tuple[gpd.GeoDataFrame, np.ndarray]]:
    """Given, non-empty overlays as ``key → (rows, EPSG:4326 geometry)``; on a township
    detail map (``township`` given, ``parcels`` its parcels) clipped to the township.
    Cluster outlines (dissolved parcels) are simplified by ``simplify_m`` metres."""
    given = {k: v for k, v in given.items() if v is not None}
    for key, gdf in given.items():
        _check_crs(gdf, key)
    area = source = None
    if township is not None:
        area, source = township_area(parcels, given.get("townships"), township)
        logger.info("township %s: overlays clipped to its %s", township,
                    "polygon" if source == "townships" else "parcels (+100 m)")
    out = {}
    for key, gdf in given.items():
        gdf = cause_rows(key, gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)])
        if key == "zones" and "final_class" in gdf:
            strict = (pd.to_numeric(gdf["final_class"], errors="coerce") == classes.STRICT_CONTROL)
            if not strict.all():
                logger.info("zones: drawing the %d strict-control (class 3) zones of %d",
                            int(strict.sum()), len(gdf))
            gdf = gdf[strict.to_numpy()]
        if area is not None and key == "townships" and source == "townships":
            gdf = gdf[(gdf["township"].astype(object) == township).to_numpy()]
        elif area is not None and key == "loop" and {"parcel_id"} <= set(gdf) & set(parcels):
            gdf = gdf[gdf["parcel_id"].astype(str).isin(parcels["parcel_id"].astype(str))]
        elif area is not None and key == "clusters":
            gdf = shown_area(gdf.to_crs(parcels.crs), clip_to_area(key, gdf, area, parcels.crs))
        elif area is not None:
            gdf = clip_to_area(key, gdf, area, parcels.crs)
        if gdf.empty:
            logger.info("layer %s has no features to show; left out", key)
            continue
        geometry = gdf.geometry
        if key == "clusters" and simplify_m > 0 and geometry.crs.is_projected:
            geometry = geometry.simplify(simplify_m, preserve_topology=True)
        out[key] = (gdf, geometry.to_crs(4326).to_numpy())
    return out


def _display_geometry(parcels: gpd.GeoDataFrame, simplify_m: float) -> np.ndarray:
    """Parcel geometry simplified in the metric CRS, then in EPSG:4326.

    The result for the same geometries (same WKB, order, CRS and tolerance) is kept for
    the next map of the same process: the demo draws five maps of one county's parcels
    (≈ 1.5 s each to check the coverage, simplify and reproject)."""
    source = parcels.geometry.to_numpy()
    wkb = b"".join(b"N" if w is None else w for w in shapely.to_wkb(source))  # N: no geometry
    key = (hashlib.sha256(wkb).hexdigest(), len(source),
           float(simplify_m), parcels.crs.to_wkt() if parcels.crs is not None else None)
    if key not in _DISPLAY_KEPT:
        geoms = simplify_coverage(source, simplify_m)
        if len(_DISPLAY_KEPT) >= 4:
            _DISPLAY_KEPT.pop(next(iter(_DISPLAY_KEPT)))
        _DISPLAY_KEPT[key] = gpd.GeoSeries(geoms, crs=parcels.crs).to_crs(4326).to_numpy()
    return _DISPLAY_KEPT[key].copy()


#: display geometry of the last parcel sets drawn (see :func:`_display_geometry`)
_DISPLAY_KEPT: dict[tuple, np.ndarray] = {}


def simplify_coverage(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Simplify polygons so that neighbours keep their shared edges.

    Parameters
    ----------
    geoms
        Polygons in a metric CRS.
    tolerance_m
        Tolerance in metres. For a valid coverage this is
        ``shapely.coverage_simplify`` (Visvalingam–Whyatt: removes vertices whose
        triangle area is below about ``tolerance_m``²); otherwise each polygon is
        simplified on its own (Douglas–Peucker, ``preserve_topology=True``), which
        can open slivers between neighbours, and a warning is logged.

    Returns
    -------
    numpy.ndarray
        Simplified geometries, same order and length.
    """
    geoms = np.asarray(geoms, dtype=object)
    if tolerance_m <= 0 or len(geoms) == 0:
        return geoms
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)).all()  # Polygon, MultiPolygon
    if polygonal and bool(shapely.coverage_is_valid(geoms)):
        return shapely.coverage_simplify(geoms, tolerance_m)
    logger.warning("parcels do not form a valid coverage (overlaps or unmatched shared edges); "
                   "simplifying each parcel on its own, neighbours may show slivers")
    return shapely.simplify(geoms, tolerance_m, preserve_topology=True)


# Page -------------------------------------------------------------------------------
def _base_map(display: np.ndarray, title: str, tiles: str,
              tiles_attr: str | None) -> folium.Map:
    minx, miny, maxx, maxy = shapely.total_bounds(display)
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=11,
                      tiles=None, prefer_canvas=True, control_scale=True,
                      font_size="13px")
    fmap.default_js, fmap.default_css = [], []  # no CDN assets; Leaflet is inlined
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.title = html.escape(title)
    root.header.add_child(Element(map_assets.inline_head()), name="farmland_assets")
    for url, attr, subdomains in _tile_layers(tiles, tiles_attr):
        folium.TileLayer(tiles=url, attr=attr, subdomains=subdomains, name="底图 Basemap",
                         control=False, max_zoom=MAX_ZOOM,
                         max_native_zoom=MAX_TILE_ZOOM).add_to(fmap)
    _FitBounds([[miny, minx], [maxy, maxx]]).add_to(fmap)
    return fmap


def _tile_layers(tiles: str, tiles_attr: str | None) -> list[tuple[str, str, str]]:
    """``(url, attribution, subdomains)`` of the basemap layers of ``tiles``."""
    if tiles in (None, "", "none"):
        return []
    name, _, key = tiles.partition(":")
    if name in TILE_PRESETS:
        if name.startswith("tianditu") and not key:
            raise InputError("Tianditu tiles need a key", column="tiles", value=tiles,
                             fix=f"pass {name}:YOUR_KEY (free at the Tianditu developer site)")
        return [(url.replace("{key}", key), html.escape(tiles_attr) if tiles_attr else attr, sub)
                for url, attr, sub in TILE_PRESETS[name]]
    if all(p in tiles for p in ("{z}", "{x}", "{y}")) and tiles.startswith(("http://", "https://")):
        host = tiles.split("/")[2]
        return [(tiles, html.escape(tiles_attr or host), "abc")]
    raise InputError("unknown basemap", column="tiles", value=tiles,
                     fix="use none, osm, tianditu-vec:KEY, tianditu-img:KEY or a URL template "
                         "with {z}, {x} and {y} (see docs/basemaps.md)")


class _FitBounds(MacroElement):
    """Fit the view before any layer is added, without animation; then limit zooming
    out to :data:`ZOOM_OUT_LEVELS` levels and panning to :data:`PAN_PAD` view widths
    around the fitted area, so the county cannot get lost.

    folium's ``fit_bounds`` runs after the layers and animates: every vertex is then
    projected twice, and a zoom animation is still running when the page reports ready.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.setMaxZoom({{ this.max_zoom }});
            {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {animate: false});
            {{ this._parent.get_name() }}.setMinZoom(
                Math.max(0, {{ this._parent.get_name() }}.getZoom() - {{ this.zoom_out }}));
            {{ this._parent.get_name() }}.setMaxBounds(
                L.latLngBounds({{ this.bounds|tojson }}).pad({{ this.pad }}));
        {% endmacro %}
    """)

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()
        self._name = "farmland_fit_bounds"
        self.bounds = bounds
        self.zoom_out = ZOOM_OUT_LEVELS
        self.max_zoom = MAX_ZOOM
        self.pad = PAN_PAD
