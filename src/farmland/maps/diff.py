"""A map of what changed between two classification runs (``farmland diff``).

The changed parcels (``changes.gpkg``, layer ``changes``: geometry, ``parcel_id``,
``class_a``, ``class_b``, ``flow`` such as "1→2", ``cause``, ``cause_detail``,
``area_mu``, ``township``) are coloured by flow — worse in warm colours (1→2 orange,
2→3 red, 1→3 dark red), better in blues (2→1, 3→2, 3→1), grey when a parcel lost its
class — over the township outlines and names and, when given, run B's parcels by class.
The legend lists each flow present with its number of parcels and area in 亩.
"""

from __future__ import annotations

import logging

import folium
import geopandas as gpd
import pandas as pd

from farmland.errors import InputError
from farmland.maps.layers import ReadyHook, display_frame
from farmland.maps.page import (
    _base_map,
    _check_crs,
    _display_geometry,
    _select_township,
    draw_layers,
    overlay_layers,
)
from farmland.maps.panels import Panel, diff_title_html, flows_legend_html

logger = logging.getLogger(__name__)

DIFF_TITLE = "耕地类别变化图 Farmland class changes"
#: run B's parcels under the changes: faded, so a class-2 amber is not read as a flow
FADED_PARCELS = {"fillOpacity": 0.25, "opacity": 0.25}


def make_diff_map(
    changes: gpd.GeoDataFrame,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    townships: gpd.GeoDataFrame | None = None,
    samples: gpd.GeoDataFrame | None = None,
    crops: gpd.GeoDataFrame | None = None,
    title: str = DIFF_TITLE,
    subtitle: str | None = None,
    tiles: str = "none",
    tiles_attr: str | None = None,
    simplify_m: float = 5.0,
) -> folium.Map:
    """Build a self-contained map of the parcels whose class changed between two runs.

    Parameters
    ----------
    changes
        The changed parcels in a projected CRS: ``flow`` (e.g. "1→2",
        "2→unclassified") or ``class_a``/``class_b``; shown when present:
        ``parcel_id``, ``township``, ``cause`` (or ``reason``), ``cause_detail``,
        ``area_mu``. Rows without a geometry are left out (logged).
    parcels
        Run B's classified parcels, drawn by class below the changes (optional).
    townships, samples, crops
        Optional overlays (any CRS). The township names are labelled from
        ``townships``, else from the ``township`` column of ``parcels`` or ``changes``.
    title, subtitle
        Title box text (escaped), e.g. the two run labels as subtitle.
    tiles, tiles_attr, simplify_m
        As for :func:`farmland.maps.page.make_map`.

    Returns
    -------
    folium.Map
        Save it with :func:`farmland.maps.page.save_map`.

    Raises
    ------
    CRSError
        A layer has no CRS, or the changes are not in a projected CRS.
    InputError
        No changed parcel has a geometry and no parcels are given.
    """
    _check_crs(changes, "changes", projected=True)
    missing = changes.geometry.isna() | changes.geometry.is_empty
    if missing.any():
        logger.warning("%d changed parcel(s) have no geometry and are not drawn",
                       int(missing.sum()))
    changes = changes[~missing.to_numpy()]
    if parcels is not None:
        _check_crs(parcels, "parcels", projected=True)
        parcels = _select_township(parcels, None)
    if changes.empty and parcels is None:
        raise InputError("no changed parcel has a geometry to draw", column="geometry",
                         fix="give the changes.gpkg written by 'farmland diff', or the "
                             "classification of run B to draw the unchanged county")
    base = parcels if parcels is not None else changes
    layers = {}
    if parcels is not None:
        layers["parcels"] = (parcels, _display_geometry(parcels, simplify_m))
    if not changes.empty:
        changes = changes.to_crs(base.crs)
        layers["changes"] = (changes, _display_geometry(changes, simplify_m))
    given = {"townships": townships, "samples": samples, "crops": crops}
    layers.update(overlay_layers(given, base, None))
    display = layers["parcels" if parcels is not None else "changes"][1]
    fmap = _base_map(display, title, tiles, tiles_attr)
    drawn = draw_layers(fmap, layers, base, styles={"parcels": FADED_PARCELS})
    keys = (display_frame("changes", changes)["_flow_key"] if not changes.empty
            else pd.Series([], dtype=object))
    area = _area_mu(changes)
    Panel(diff_title_html(title, len(changes), float(area.sum()), subtitle)).add_to(fmap)
    Panel(flows_legend_html(keys, area, [k for k in drawn if k != "changes"])).add_to(fmap)
    ReadyHook().add_to(fmap)
    logger.info("change map of %d parcel(s) with layers: %s", len(changes), ", ".join(drawn))
    return fmap


def _area_mu(changes: gpd.GeoDataFrame) -> pd.Series:
    """``area_mu``, else the geometry area in 亩."""
    from farmland.classes import MU_PER_M2

    geom_mu = changes.geometry.area * MU_PER_M2
    if "area_mu" not in changes:
        return geom_mu
    return pd.to_numeric(changes["area_mu"], errors="coerce").astype(float).fillna(geom_mu)
