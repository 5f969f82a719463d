"""Field and government exports of the specific-product strict-control zones.

:func:`write_zone_kml` writes the zones of :func:`farmland.control.products.product_zones`
as KML 2.2 polygons in WGS84 lon/lat (EPSG:4326, reprojected for display only). Text
goes through :mod:`xml.etree.ElementTree`, so ``<``, ``&`` and quotes in a village name
or a basis are escaped and never become markup; the file is written atomically
(:func:`farmland.io.write.atomic_write`).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from farmland.classes import PALETTE, STRICT_CONTROL
from farmland.errors import InputError
from farmland.io.write import atomic_write, final_path

__all__ = ["KML_NS", "write_zone_kml", "zone_kml_tree"]

log = logging.getLogger(__name__)

KML_NS = "http://www.opengis.net/kml/2.2"
_STYLE_ID = "strict_control_zone"
def write_zone_kml(zones: gpd.GeoDataFrame, path: str | os.PathLike[str], *,
                   overwrite: bool = False) -> Path:
    """Write specific-product strict-control zones as a KML file.

    Parameters
    ----------
    zones
        ``ProductZones.zones``: ``zone_id``, ``village``, ``controlled_products``,
        ``controlled_zh``, ``allowed_products``, ``basis`` and polygon geometry with a CRS.
    path
        Output ``.kml`` file (its folder is created if needed).
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        If ``zones`` lacks ``zone_id`` or has no CRS.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    tree = zone_kml_tree(zones)
    ET.indent(tree, space="  ")
    with atomic_write(path, overwrite=overwrite) as tmp:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
    log.info("wrote %d strict-control zone(s) to %s", len(zones), final_path(path))
    return Path(path)


def zone_kml_tree(zones: gpd.GeoDataFrame) -> ET.ElementTree:
    """KML 2.2 document: one Placemark per zone (name = zone id and village, description =
    controlled and allowed products and the basis), polygons in EPSG:4326 lon/lat."""
    if "zone_id" not in zones:
        raise InputError("zones lack column zone_id", column="zone_id",
                         fix="pass ProductZones.zones from product_zones()")
    if zones.crs is None and len(zones):
        raise InputError("zones have no CRS: cannot convert them to lon/lat for KML",
                         fix="set the parcels' CRS (e.g. EPSG:4545) before product_zones()")
    lonlat = zones.to_crs(4326) if len(zones) else zones
    ET.register_namespace("", KML_NS)
    root = ET.Element(_k("kml"))
    doc = ET.SubElement(root, _k("Document"))
    ET.SubElement(doc, _k("name")).text = ("特定农产品严格管控区域 / specific-product "
                                          "strict-control zones")
    _style(doc)
    for row in lonlat.itertuples(index=False):
        mark = ET.SubElement(doc, _k("Placemark"))
        ET.SubElement(mark, _k("name")).text = _text(row, "zone_id", "village", sep=" ")
        ET.SubElement(mark, _k("description")).text = _description(row)
        ET.SubElement(mark, _k("styleUrl")).text = f"#{_STYLE_ID}"
        _geometry(mark, row.geometry)
    return ET.ElementTree(root)


def _k(tag: str) -> str:
    return f"{{{KML_NS}}}{tag}"


def _style(doc: ET.Element) -> None:
    """Strict-control red (the shared palette), half-transparent fill."""
    rgb = PALETTE[STRICT_CONTROL].lstrip("#")
    kml_colour = f"{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"  # KML colours are aabbggrr
    style = ET.SubElement(doc, _k("Style"), {"id": _STYLE_ID})
    line = ET.SubElement(style, _k("LineStyle"))
    ET.SubElement(line, _k("color")).text = f"ff{kml_colour}"
    ET.SubElement(line, _k("width")).text = "2"
    poly = ET.SubElement(style, _k("PolyStyle"))
    ET.SubElement(poly, _k("color")).text = f"80{kml_colour}"


def _text(row: object, *cols: str, sep: str) -> str:
    parts = [getattr(row, c, None) for c in cols]
    return sep.join(str(p) for p in parts if p is not None and not pd.isna(p) and str(p))


def _description(row: object) -> str:
    controlled = _text(row, "controlled_zh", sep="")
    codes = _text(row, "controlled_products", sep="")
    allowed = _text(row, "allowed_products", sep="")
    lines = [f"管控农产品 controlled products: {controlled} ({codes})" if codes
             else "管控农产品 controlled products: 无 none"]
    if allowed:
        lines.append(f"允许农产品 allowed products: {allowed}")
    basis = _text(row, "basis", sep="")
    if basis:
        lines.append(f"依据 basis: {basis}")
    return "\n".join(lines)


def _geometry(parent: ET.Element, geom: BaseGeometry | None) -> None:
    if geom is None or geom.is_empty:
        return
    polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    polys = [p for p in polys if isinstance(p, Polygon) and not p.is_empty]
    if len(polys) > 1:
        parent = ET.SubElement(parent, _k("MultiGeometry"))
    for poly in polys:
        node = ET.SubElement(parent, _k("Polygon"))
        _ring(ET.SubElement(node, _k("outerBoundaryIs")), poly.exterior.coords)
        for hole in poly.interiors:
            _ring(ET.SubElement(node, _k("innerBoundaryIs")), hole.coords)


def _ring(boundary: ET.Element, coords: object) -> None:
    ring = ET.SubElement(boundary, _k("LinearRing"))
    ET.SubElement(ring, _k("coordinates")).text = " ".join(
        f"{x:.7f},{y:.7f}" for x, y, *_ in coords)
