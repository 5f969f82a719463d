"""QGIS default styles in the GeoPackages farmland writes (``layer_styles``)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from conftest import make_parcels, make_points

from farmland import classes as C
from farmland.io import styles
from farmland.io.write import write_gpkg_layers

SYSTEM_PYTHON = "/usr/bin/python3"
NASTY = "<script>alert('x')</script> & co"


def _rgba(code: int | None) -> str:
    text = C.PALETTE[code].lstrip("#")
    return ",".join(str(int(text[i:i + 2], 16)) for i in (0, 2, 4)) + ",255"


def _classification_layers() -> dict:
    parcels = make_parcels(n=4, final_class=[1, 2, 3, None], soil_class=[1, 2, 3, None],
                           note=[NASTY, "a & b", "<b>", ""])
    samples = make_points([(50, 50), (150, 50), (250, 50), (350, 50)],
                          sample_id=["S1", "S2", "S3", "S4"], point_class=[1, 2, 3, None])
    crops = make_points([(60, 60), (160, 60)], sample_id=["C1", "C2"], crop=["rice", "rice"],
                        exceeds=[True, False])
    return {"parcels": parcels, "samples": samples, "crops": crops}


def _rows(path: Path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM layer_styles ORDER BY id")]


@pytest.fixture
def classification(tmp_path) -> Path:
    path = tmp_path / "run" / "classification.gpkg"
    write_gpkg_layers(path, _classification_layers())
    return path


def test_classification_gets_one_default_style_per_layer(classification):
    with contextlib.closing(sqlite3.connect(classification)) as con:
        contents = con.execute("SELECT data_type, identifier FROM gpkg_contents "
                               "WHERE table_name = 'layer_styles'").fetchall()
        geometry = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
        columns = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
    assert contents == [("attributes", "layer_styles")]  # registered as QGIS does
    assert columns == ["id", "f_table_catalog", "f_table_schema", "f_table_name",
                       "f_geometry_column", "styleName", "styleQML", "styleSLD", "useAsDefault",
                       "description", "owner", "ui", "update_time"]
    rows = _rows(classification)
    assert [r["f_table_name"] for r in rows] == ["parcels", "samples", "crops"]
    for row in rows:
        assert row["f_geometry_column"] == geometry[row["f_table_name"]]
        assert row["useAsDefault"] == 1 and row["styleName"] == styles.STYLE_NAME
        assert row["f_table_schema"] == "" and row["update_time"] == "2000-01-01T00:00:00.000Z"
        assert row["description"] == "farmland: " + styles.TITLES[row["f_table_name"]]
        root = ET.fromstring(row["styleQML"].split("\n", 1)[1])  # after the DOCTYPE line
        assert root.tag == "qgis" and root.find("renderer-v2") is not None


def test_parcel_style_has_the_map_colours_and_bilingual_labels(classification):
    qml = next(r["styleQML"] for r in _rows(classification) if r["f_table_name"] == "parcels")
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "final_class"
    cats = renderer.findall("categories/category")
    assert [c.get("value") for c in cats] == ["1", "2", "3", ""]  # "" = NULL: unclassified
    labels = [c.get("label") for c in cats]
    assert "优先保护类" in labels[0] and "Priority protection" in labels[0]
    assert labels[1] == "2 安全利用类 Safe utilisation" and labels[3] == "未分类 Unclassified"
    fills = {s.get("name"): s.find("layer/prop[@k='color']").get("v")
             for s in renderer.findall("symbols/symbol")}
    for cat, code in zip(cats, (1, 2, 3, None), strict=True):
        assert fills[cat.get("symbol")] == _rgba(code)
    assert {s.get("type") for s in renderer.findall("symbols/symbol")} == {"fill"}


def test_point_layers_follow_their_columns(classification):
    rows = {r["f_table_name"]: r["styleQML"] for r in _rows(classification)}
    samples = ET.fromstring(rows["samples"].split("\n", 1)[1]).find("renderer-v2")
    assert samples.get("attr") == "point_class"
    assert {s.get("type") for s in samples.findall("symbols/symbol")} == {"marker"}
    crops = ET.fromstring(rows["crops"].split("\n", 1)[1]).find("renderer-v2")
    assert '"exceeds"' in crops.get("attr")
    assert [c.get("value") for c in crops.findall("categories/category")] == ["true", "false", ""]
    assert "215,48,31,255" in rows["crops"]  # exceedances red, as on the maps


def test_text_from_the_data_is_escaped(tmp_path):
    plan = make_points([(0, 0), (100, 0), (200, 0)], point_id=["A1", "A2", "A3"],
                       mode=["uncertainty", NASTY, "coverage"])
    path = write_gpkg_layers(tmp_path / "plan.gpkg", {"plan": plan})
    (row,) = _rows(path)
    assert "<script>" not in row["styleQML"] and "&amp;" in row["styleQML"]
    cats = ET.fromstring(row["styleQML"].split("\n", 1)[1]).findall(
        "renderer-v2/categories/category")
    assert [c.get("value") for c in cats] == ["uncertainty", "coverage", "sources", NASTY, ""]
    assert cats[3].get("label") == NASTY and cats[0].get("label") == "不确定性 Uncertainty"


def test_style_qml_escapes_and_refuses_missing_columns():
    qml = styles.style_qml("plan", ["mode"], "POINT", values=["a&b", "<x>"])
    values = [c.get("value") for c in ET.fromstring(qml.split("\n", 1)[1]).iter("category")]
    assert {"a&b", "<x>"} <= set(values)
    assert styles.style_qml("parcels", ["parcel_id"], "POLYGON") is None  # no final_class
    assert styles.style_qml("parcels", ["final_class"], "POLYGON") is not None
    assert styles.style_qml("somewhere", ["final_class"], "POLYGON") is None
    # a parcels layer of points is drawn with markers rather than a broken fill
    assert 'type="marker"' in styles.style_qml("parcels", ["final_class"], "POINT")


def test_every_layer_still_reads_and_lists(classification):
    layers = [tuple(x) for x in pyogrio.list_layers(classification)]
    assert layers[:3] == [("parcels", "Polygon"), ("samples", "Point"), ("crops", "Point")]
    assert layers[3:] == [("layer_styles", None)]  # last, without geometry
    for name, _ in layers[:3]:
        frame = pyogrio.read_dataframe(classification, layer=name)
        assert len(frame) and frame.crs.to_epsg() == 4545
    back = pyogrio.read_dataframe(classification, layer="parcels")
    assert back["note"].tolist()[:3] == [NASTY, "a & b", "<b>"]
    assert len(pyogrio.read_dataframe(classification, layer="layer_styles")) == 3


def test_farmland_readers_ignore_the_style_table(classification):
    from farmland.cli.map import read_map_layers
    from farmland.io.formats import choose_layer
    from farmland.runs.folder import load_classification, read_beside, read_classification

    parcels, samples, crops = load_classification(classification.parent)
    assert parcels["final_class"].tolist()[:3] == [1, 2, 3] and parcels["final_class"].isna()[3]
    assert len(samples) == 4 and len(crops) == 2
    _, crop_table, _ = read_classification(classification)
    assert crop_table["exceeds"].tolist() == [True, False]
    beside = read_beside(classification.parent, "classification.gpkg", layer="samples")
    assert beside["sample_id"].tolist() == ["S1", "S2", "S3", "S4"]
    frames = read_map_layers(classification, {"samples", "crops", "zones"}, {})
    assert set(frames) == {"parcels", "samples", "crops"}
    assert choose_layer(classification, None, ("parcels",)) == "parcels"
    plan = write_gpkg_layers(classification.parent / "plan.gpkg", {"plan": make_points(
        [(0, 0)], point_id=["A1"], mode=["coverage"])})
    assert choose_layer(plan, None, ()) == "plan"  # the first layer, not layer_styles


def test_same_input_same_bytes_and_idempotent(tmp_path):
    first = write_gpkg_layers(tmp_path / "a" / "c.gpkg", _classification_layers())
    second = write_gpkg_layers(tmp_path / "b" / "c.gpkg", _classification_layers())
    assert first.read_bytes() == second.read_bytes()
    # a user's own default loses the flag; farmland's style is replaced, not duplicated
    with contextlib.closing(sqlite3.connect(first)) as con, con:
        con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                    "f_geometry_column, styleName, styleQML, useAsDefault) "
                    "VALUES ('', '', 'parcels', 'geom', 'mine', '<qgis/>', 1)")
    assert styles.write_styles(first, ["parcels"]) == ["parcels"]
    rows = [(r["styleName"], r["useAsDefault"]) for r in _rows(first)
            if r["f_table_name"] == "parcels"]
    assert sorted(rows) == [("farmland", 1), ("mine", 0)]


def test_no_table_without_a_styled_layer(tmp_path):
    parcels = make_parcels(n=2)  # no final_class: no style
    table = pd.DataFrame({"township": ["T1"], "area_mu": [1.0]})
    path = write_gpkg_layers(tmp_path / "x.gpkg", {"parcels": parcels, "summary": table})
    assert {name for name, _ in pyogrio.list_layers(path)} == {"parcels", "summary"}
    bare = write_gpkg_layers(tmp_path / "y.gpkg", _classification_layers(), styles=False)
    assert "layer_styles" not in {name for name, _ in pyogrio.list_layers(bare)}


def test_flag_layers_and_overlay_colours_match_the_rest_of_farmland():
    from farmland.maps.layers import LAYER_SPECS
    from farmland.sampling.flags import LAYERS

    assert tuple(styles.FLAG_STYLES) == LAYERS
    assert set(styles.STYLED_LAYERS) == {"parcels", "samples", "crops", "zones", "plan",
                                         "accounting", "changes", "loop", "product_zones",
                                         *LAYERS}
    assert set(styles.TITLES) == set(styles.STYLED_LAYERS)
    assert styles.CROP_EXCEEDS == LAYER_SPECS["crops"].styles["true"]["color"]
    assert styles.CROP_OK == LAYER_SPECS["crops"].base["color"]
    assert styles.ZONE_OUTLINE == LAYER_SPECS["zones"].base["color"]
    assert styles.PRODUCT_ZONE_OUTLINE == LAYER_SPECS["product_zones"].base["color"]
    assert styles.PLAN_MODES["uncertainty"][0] == LAYER_SPECS["plan"].base["fillColor"]
    assert styles.FLAG_STYLES["empty_cells"][0] == LAYER_SPECS["flags"].base["color"]
    colours = [c for c, _, _ in styles.FLAG_STYLES.values()]
    assert len(set(colours)) == len(colours)
    assert not set(colours) & set(C.PALETTE.values())


def test_accounting_and_change_layers_are_styled(tmp_path):
    parcels = make_parcels(n=3)
    accounting = parcels.assign(status=["achieved_verified", "uncontrolled", "class1"])
    changes = parcels.assign(flow=["1→2", "unclassified→3", "absent→2"])
    write_gpkg_layers(tmp_path / "rate.gpkg", {"accounting": accounting})
    write_gpkg_layers(tmp_path / "changes.gpkg", {"changes": changes})
    rate_qml = ET.fromstring(_rows(tmp_path / "rate.gpkg")[0]["styleQML"].split("\n", 1)[1])
    labels = {c.get("value"): c.get("label") for c in rate_qml.iter("category")}
    assert labels["uncontrolled"] == "严格管控未落实 class 3 uncontrolled"
    assert labels["loop_incomplete"] == ("管控措施未闭环 strict measure, closed loop below the "
                                         "minimum stage")
    assert len(labels) == 11
    change_qml = _rows(tmp_path / "changes.gpkg")[0]["styleQML"]
    root = ET.fromstring(change_qml.split("\n", 1)[1])
    values = [c.get("value") for c in root.iter("category")]
    assert values == ["1→2", "absent→2", "unclassified→3", ""]
    assert "#fdae61" in change_qml.lower() or "253,174,97" in change_qml   # the map's 1→2


def test_flag_layers_get_single_symbols(tmp_path):
    cells = make_parcels(n=2, flag="empty_cell")
    crops = make_points([(10, 10)], sample_id=["C1"], flag=["crop_exceedance_class1"])
    zones = make_parcels(n=1, zone_id=["SC001"])  # strict-control zones: no final_class
    path = write_gpkg_layers(tmp_path / "flags.gpkg", {
        "empty_cells": cells, "crop_exceedance_class1": crops, "zones": zones,
        "summary": pd.DataFrame({"township": ["T1"]})})
    rows = {r["f_table_name"]: r["styleQML"] for r in _rows(path)}
    assert list(rows) == ["empty_cells", "crop_exceedance_class1", "zones"]  # not summary
    for qml in rows.values():
        assert ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2").get("type") == \
            "singleSymbol"
    assert '"b_diagonal"' in rows["empty_cells"]  # hatched
    assert 'type="marker"' in rows["crop_exceedance_class1"]
    assert _rgba(3).replace(",255", ",64") in rows["zones"]  # translucent class-3 red


# -- QGIS itself (PyQGIS of the system Python, when installed) ---------------------------
RENDER = r"""
import json, sys
from qgis.core import QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsVectorLayer
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

app = QgsApplication([], False)
app.initQgis()
layer = QgsVectorLayer(sys.argv[1] + "|layername=parcels", "parcels", "ogr")
renderer = layer.renderer()
settings = QgsMapSettings()
settings.setLayers([layer])
settings.setDestinationCrs(layer.crs())
extent = layer.extent()
extent.grow(50)
settings.setExtent(extent)
settings.setOutputSize(QSize(300, 120))
settings.setBackgroundColor(QColor(255, 255, 255))
job = QgsMapRendererParallelJob(settings)
job.start()
job.waitForFinished()
image = job.renderedImage()
image.save(sys.argv[2])
pixels = {}
for x in range(image.width()):
    for y in range(image.height()):
        name = QColor(image.pixel(x, y)).name()
        pixels[name] = pixels.get(name, 0) + 1
print(json.dumps({"valid": layer.isValid(), "renderer": renderer.type(),
                  "labels": [c.label() for c in renderer.categories()],
                  "pixels": pixels}, ensure_ascii=False))
del job, image, renderer, layer, settings  # before exitQgis, or Python crashes at exit
app.exitQgis()
"""


@pytest.fixture(scope="module")
def pyqgis() -> str:
    """The system Python when it can import PyQGIS (else the test is skipped)."""
    found = os.access(SYSTEM_PYTHON, os.X_OK) and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=120,
        check=False).returncode == 0
    if not found:
        pytest.skip("PyQGIS not installed for /usr/bin/python3 (apt-get install "
                    "--no-install-recommends python3-qgis qgis-providers)")
    return SYSTEM_PYTHON


def test_qgis_draws_the_classes_in_their_colours(pyqgis, classification, tmp_path):
    script = tmp_path / "render.py"
    script.write_text(RENDER, encoding="utf-8")
    png = tmp_path / "parcels.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.run([pyqgis, str(script), str(classification), str(png)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["valid"] and result["renderer"] == "categorizedSymbol", result
    assert result["labels"][0] == "1 优先保护类 Priority protection"
    for code in (*C.CLASS_CODES, None):  # each square of 100 m is ~ 50 × 50 pixels
        assert result["pixels"].get(C.PALETTE[code], 0) > 500, (code, result["pixels"])
    assert png.stat().st_size > 0
