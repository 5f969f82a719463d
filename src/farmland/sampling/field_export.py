"""Field-team exports of a sampling plan: CSV, GPX, KML and GeoPackage.

:func:`write_plan` writes, all four or none (staged, then renamed into place by
:func:`farmland.io.write.atomic_folder`):

- ``plan.csv`` — UTF-8 with BOM (Excel shows Chinese correctly), bilingual headers;
- ``plan.gpx`` — GPX 1.1 waypoints (name = point id, desc = reason), WGS84;
- ``plan.kml`` — KML 2.2 placemarks, WGS84;
- ``plan.gpkg`` — layer ``plan`` in the plan's metric CRS.

Text goes through :mod:`xml.etree.ElementTree`, so ``<``, ``&`` and quotes in a reason
are escaped and the files are valid XML.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pandas as pd

from farmland.errors import InputError
from farmland.io.write import atomic_folder, final_path, write_gpkg_layers

log = logging.getLogger(__name__)

GPX_NS = "http://www.topografix.com/GPX/1/1"
KML_NS = "http://www.opengis.net/kml/2.2"
#: plan column → bilingual CSV header
CSV_HEADERS = {
    "point_id": "点位编号 point_id", "lon": "经度 lon (WGS84)", "lat": "纬度 lat (WGS84)",
    "x": "X 坐标 x (m)", "y": "Y 坐标 y (m)", "township": "乡镇 township",
    "parcel_id": "图斑编号 parcel_id", "mode": "布点方式 mode", "reason": "布点理由 reason",
    "priority": "优先级 priority", "expected_benefit": "预计减少错分(亩) expected_benefit_mu",
    "cluster_id": "聚集区 cluster_id", "candidate_id": "候选来源 candidate_id",
    "medium": "采样介质 medium",
}
#: document name of a sampling plan's GPX and KML
PLAN_TITLE = "加密采样布点 / sampling plan"
#: formats written by :func:`write_plan`, one file each: ``STEM.csv`` …
PLAN_FORMATS = ("csv", "gpx", "kml", "gpkg")


def write_plan(plan: gpd.GeoDataFrame, out_dir: str | os.PathLike[str], *,
               stem: str = "plan", overwrite: bool = False) -> dict[str, Path]:
    """Write a sampling plan for the field team.

    Parameters
    ----------
    plan
        Output of :func:`farmland.sampling.planner.plan_sampling` (``point_id``, ``lon``,
        ``lat`` in WGS84 and the other plan columns; geometry in a metric CRS).
    out_dir
        Folder (created if needed).
    stem
        File name without suffix: ``STEM.csv``, ``STEM.gpx``, ``STEM.kml``, ``STEM.gpkg``.
    overwrite
        Replace existing files; otherwise any existing target raises before anything
        is written. The four files are written all-or-nothing.

    Returns
    -------
    dict
        ``{"csv": path, "gpx": path, "kml": path, "gpkg": path}``.

    Raises
    ------
    OutputExistsError
        If a target exists and ``overwrite`` is False.
    InputError
        If the plan lacks ``point_id``, ``lon`` or ``lat``.
    """
    missing = [c for c in ("point_id", "lon", "lat") if c not in plan]
    if missing:
        raise InputError(f"plan lacks column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass the GeoDataFrame returned by plan_sampling")
    out = Path(out_dir)
    names = {fmt: f"{stem}.{fmt}" for fmt in PLAN_FORMATS}
    with atomic_folder(out, overwrite=overwrite, expected=names.values()) as stage:
        plan_table(plan).to_csv(stage / names["csv"], index=False, encoding="utf-8-sig")
        write_xml(gpx_tree(plan), stage / names["gpx"])
        write_xml(kml_tree(plan), stage / names["kml"])
        write_gpkg_layers(stage / names["gpkg"], {"plan": plan})
    paths = {fmt: out / name for fmt, name in names.items()}
    log.info("wrote %d planned point(s) to %s (csv, gpx, kml, gpkg)", len(plan),
             final_path(out))
    return paths


def plan_table(plan: pd.DataFrame) -> pd.DataFrame:
    """The plan as a plain table with bilingual headers and fixed decimals (6 for lon/lat,
    2 for x/y)."""
    cols = [c for c in CSV_HEADERS if c in plan]
    table = pd.DataFrame(plan[cols]).copy()
    for col, nd in (("lon", 6), ("lat", 6), ("x", 2), ("y", 2)):
        if col in table:
            table[col] = [f"{v:.{nd}f}" for v in table[col].astype(float)]
    return table.rename(columns=CSV_HEADERS)


def gpx_tree(plan: pd.DataFrame, *, title: str = PLAN_TITLE) -> ET.ElementTree:
    """GPX 1.1 document with one ``wpt`` per point (name, desc = reason, type = mode)."""
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "farmland"})
    meta = ET.SubElement(root, f"{{{GPX_NS}}}metadata")
    ET.SubElement(meta, f"{{{GPX_NS}}}name").text = title
    for row in plan.itertuples(index=False):
        wpt = ET.SubElement(root, f"{{{GPX_NS}}}wpt",
                            {"lat": f"{row.lat:.6f}", "lon": f"{row.lon:.6f}"})
        ET.SubElement(wpt, f"{{{GPX_NS}}}name").text = str(row.point_id)
        ET.SubElement(wpt, f"{{{GPX_NS}}}desc").text = _description(row)
        if hasattr(row, "mode"):
            ET.SubElement(wpt, f"{{{GPX_NS}}}type").text = str(row.mode)
    return ET.ElementTree(root)


def kml_tree(plan: pd.DataFrame, *, title: str = PLAN_TITLE) -> ET.ElementTree:
    """KML 2.2 document with one Placemark per point."""
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    doc = ET.SubElement(root, f"{{{KML_NS}}}Document")
    ET.SubElement(doc, f"{{{KML_NS}}}name").text = title
    for row in plan.itertuples(index=False):
        mark = ET.SubElement(doc, f"{{{KML_NS}}}Placemark")
        ET.SubElement(mark, f"{{{KML_NS}}}name").text = str(row.point_id)
        ET.SubElement(mark, f"{{{KML_NS}}}description").text = _description(row)
        point = ET.SubElement(mark, f"{{{KML_NS}}}Point")
        ET.SubElement(point, f"{{{KML_NS}}}coordinates").text = f"{row.lon:.6f},{row.lat:.6f}"
    return ET.ElementTree(root)


def _description(row) -> str:
    parts = [str(getattr(row, "reason", "") or "")]
    extra = [f"{label} {getattr(row, col)}" for col, label in
             (("medium", "介质 medium"), ("priority", "优先级 priority"),
              ("parcel_id", "图斑 parcel"),
              ("township", "乡镇 township")) if hasattr(row, col)]
    return " | ".join(p for p in parts + extra if p)


def write_xml(tree: ET.ElementTree, path: Path) -> None:
    ET.indent(tree, space="  ")
    tree.write(path, encoding="utf-8", xml_declaration=True)
