"""The closed loop on the map (``farmland map --control``, issue 18) and its QGIS style.

Fixture: six 100 m squares in a row (EPSG:4545, conftest X0, Y0); P1–P4 are class 3 and
have a loop: P1 closed 12.5 亩, P2 none 7.4 亩 (inspection failed), P3 inspected 3.1 亩, P4
closed 20.2 亩. By hand: none 7.4, notified 0.0, inspected 3.1, harvest checked 0.0, closed
32.7 亩 of 43.2 亩 (17.1 %, 0.0 %, 7.2 %, 0.0 %, 75.7 %).
"""

from __future__ import annotations

import re
import sqlite3
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import make_parcels
from test_maps import EVIL, control_names, layers_of, render

from farmland import classes as C
from farmland.control.stages import STATUS_COLOURS, STATUS_LABELS
from farmland.io.write import write_gpkg_layers
from farmland.maps.control import CONTROL_TITLE, loop_display, status_areas
from farmland.maps.layers import display_frame
from farmland.maps.page import make_map

STATUS_ROW = re.compile(r'<tr class="fl-status"><td><span class="fl-sw" '
                        r'style="background:(#[0-9a-f]{6})"></span></td><td>(.*?)</td>'
                        r'<td>(.*?)</td><td class="fl-num">(.*?)</td><td class="fl-num">(.*?)</td>')


def parcels() -> gpd.GeoDataFrame:
    return make_parcels(n=6, parcel_id=[f"P{i}" for i in range(6)],
                        township=["清水镇"] * 4 + ["黄塘镇"] * 2,
                        final_class=[1, 3, 3, 3, 3, 2],
                        area_mu=[15.0, 12.5, 7.4, 3.1, 20.2, 15.0])


def loop(village: str = "下寨村") -> gpd.GeoDataFrame:
    """The loop layer of control.gpkg for P1–P4 (as 'farmland control' writes it)."""
    p = parcels().iloc[1:5]
    nat = pd.NaT
    return gpd.GeoDataFrame({
        "parcel_id": p["parcel_id"].to_numpy(), "township": p["township"].to_numpy(),
        "village": [village] * 4, "area_mu": p["area_mu"].to_numpy(),
        "loop_status": ["closed", "none", "inspected", "closed"],
        "loop_status_zh": ["已闭环", "未启动", "已巡查", "已闭环"],
        "meets_min": [True, False, True, True],
        "missing_stage": ["", "notified", "harvest_checked", ""],
        "problem": ["", "未通过 failed: 种植巡查 planting inspected 2023-06-10 (种植 planted 稻谷)",
                    "缺失 missing: 收获/收储核查 harvest checked", ""],
        "carried_from": "", "previous_status": ["", "", "", "closed"],
        "strict_measures": "", "planted": ["玉米", "稻谷", "苗木", ""],
        "destination": ["收储(县粮食储备库)", "", "", ""], "lot_id": ["LS2023-903", "", "", ""],
        "date_notified": pd.to_datetime(["2023-02-03", nat, "2023-02-05", "2023-02-06"]),
        "date_inspected": pd.to_datetime(["2023-06-16", "2023-06-10", "2023-06-20", nat]),
        "n_contradictions": [1, 0, 0, 0]}, geometry=p.geometry.to_numpy(), crs=p.crs)


def zones(basis: str = "严格管控类图斑 2 个，19.9 亩") -> gpd.GeoDataFrame:
    geom = shapely.unary_union(parcels().geometry.iloc[1:3].to_numpy())
    return gpd.GeoDataFrame({"zone_id": ["PZ001"], "township": ["清水镇"], "village": ["下寨村"],
                             "area_mu": [19.9], "n_parcels": [2],
                             "controlled_products": ["rice,leafy_veg"], "controlled_zh": [""],
                             "allowed_products": ["maize"], "basis": [basis]},
                            geometry=[geom], crs="EPSG:4545")


# Legend, tooltips, geometry ------------------------------------------------------------
def test_legend_lists_the_five_statuses_with_their_mu(tmp_path):
    page = render(make_map(parcels(), loop=loop(), product_zones=zones()), tmp_path)
    rows = STATUS_ROW.findall(page)
    assert rows == [("#c51b7d", "未启动", "not started", "7.4 亩", "17.1 %"),
                    ("#9e6ebd", "已告知划定", "notified and designated", "0.0 亩", "0.0 %"),
                    ("#6b9bd1", "已巡查", "inspected", "3.1 亩", "7.2 %"),
                    ("#2166ac", "已收获核查", "harvest checked", "0.0 亩", "0.0 %"),
                    ("#01665e", "已闭环", "closed", "32.7 亩", "75.7 %")]
    assert control_names(page) == ["耕地图斑 Parcels", "闭环状态 Closed-loop status",
                                   "特定农产品管控区 Product control zones", "乡镇名称 Township names"]


def test_status_areas_fall_back_to_the_geometry():
    layer = loop().assign(area_mu=[12.5, np.nan, 3.1, 20.2])  # P2: 100 m × 100 m = 15 亩
    areas = {key: (n, mu) for key, _, _, _, n, mu in status_areas(layer)}
    assert areas["none"] == (1, pytest.approx(15.0))
    assert areas["closed"] == (2, pytest.approx(32.7))
    odd = status_areas(loop().assign(loop_status=["closed", "none", "inspected", "done"]))
    assert odd[-1][:2] == ("other", "其他") and odd[-1][4:] == (1, pytest.approx(20.2))


def _values(column: pd.Series) -> list:
    return [None if not isinstance(v, str) and pd.isna(v) else v for v in column]


def test_loop_tooltip_shows_status_problem_dates_and_harvest():
    disp = display_frame("loop", loop())
    assert _values(disp["_status"]) == ["已闭环 closed", "未启动 not started", "已巡查 inspected",
                                        "已闭环 closed"]
    assert _values(disp["_problem"])[:2] == [
        None, "未通过 failed: 种植巡查 planting inspected 2023-06-10 (种植 planted 稻谷)"]
    assert _values(disp["_date_notified"]) == ["2023-02-03", None, "2023-02-05", "2023-02-06"]
    assert disp["_date_inspected"].tolist()[1] == "2023-06-10"
    assert "_date_accepted" not in disp  # a stage without a date column shows no row
    assert disp["_previous"].tolist()[3] == "已闭环 closed"
    assert disp.loc[0, "lot_id"] == "LS2023-903" and disp.loc[0, "n_contradictions"] == 1
    zone = display_frame("product_zones", zones())
    assert zone.loc[0, "_controlled"] == "稻谷（以糙米计）、叶菜蔬菜"  # GB 2762 names
    assert zone.loc[0, "_allowed"] == "玉米"


def test_loop_parcels_use_the_parcels_display_geometry(caplog):
    p = parcels()
    display = np.array([shapely.Point(i, i) for i in range(6)], dtype=object)
    own = np.array([shapely.Point(9, 9)] * 5, dtype=object)
    rows = pd.concat([loop(), loop().iloc[:1].assign(parcel_id="P9")], ignore_index=True)
    out = loop_display(rows, p, display, own)
    assert [g.x for g in out] == [1, 2, 3, 4, 9]  # P9 is no drawn parcel: its own geometry
    assert "1 of 5 class-3 parcel(s) are not among the parcels drawn" in caplog.text


def test_township_map_keeps_the_loop_of_its_parcels(tmp_path):
    fmap = make_map(parcels(), loop=loop(), township="黄塘镇")  # P4 only
    assert layers_of(fmap)["loop"].n_features == 1
    rows = STATUS_ROW.findall(render(fmap, tmp_path))
    assert [r[3] for r in rows] == ["0.0 亩", "0.0 亩", "0.0 亩", "0.0 亩", "20.2 亩"]


def test_attribute_text_of_the_loop_never_becomes_markup(tmp_path):
    page = render(make_map(parcels(), loop=loop(village=EVIL), product_zones=zones(basis=EVIL)),
                  tmp_path)
    assert "<img" not in page
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page


# farmland map --control ----------------------------------------------------------------
@pytest.fixture
def run(tmp_path):
    """A run folder: classification.gpkg and the control.gpkg of 'farmland control'."""
    folder = tmp_path / "2023"
    folder.mkdir()
    parcels().to_file(folder / "classification.gpkg", layer="parcels")
    write_gpkg_layers(folder / "control.gpkg", {"loop": loop(), "product_zones": zones()})
    return folder


def test_cli_control_draws_both_layers_by_default(cli, run, tmp_path):
    out = tmp_path / "control.html"
    result = cli("map", run / "classification.gpkg", "--control", run / "control.gpkg",
                 "-o", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert control_names(page) == ["耕地图斑 Parcels", "闭环状态 Closed-loop status",
                                   "特定农产品管控区 Product control zones", "乡镇名称 Township names"]
    assert CONTROL_TITLE in page and '"zone_id":["PZ001"]' in page
    assert "32.7 亩" in page
    # the output folder of 'farmland control' works too; --layers picks one layer
    result = cli("map", run / "classification.gpkg", "--control", run, "--layers",
                 "parcels,loop", "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    names = control_names(out.read_text(encoding="utf-8"))
    assert "闭环状态 Closed-loop status" in names and "特定农产品管控区 Product control zones" not in names


def test_cli_control_layer_found_beside_the_classification(cli, run, tmp_path):
    out = tmp_path / "m.html"
    result = cli("map", run / "classification.gpkg", "--layers", "parcels,product_zones", "-o", out)
    assert result.exit_code == 0, result.output
    assert "特定农产品管控区 Product control zones" in control_names(out.read_text(encoding="utf-8"))


def _one_line_error(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [x for x in result.output.strip().splitlines() if not x.startswith("INFO ")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_cli_refuses_a_file_that_is_not_a_control_gpkg(cli, run, tmp_path):
    out = tmp_path / "m.html"
    gpkg = run / "classification.gpkg"
    csv = tmp_path / "control_townships.csv"
    csv.write_text("township,class3_mu\n清水镇,43.2\n", encoding="utf-8")
    line = _one_line_error(cli("map", gpkg, "--control", csv, "-o", out))
    assert "control_townships.csv" in line and "not the control.gpkg of 'farmland control'" in line
    line = _one_line_error(cli("map", gpkg, "--control", gpkg, "-o", out))
    assert "no layer 'loop'" in line and "parcels" in line
    only_loop = tmp_path / "only_loop.gpkg"
    write_gpkg_layers(only_loop, {"loop": loop()})
    assert "no layer 'product_zones'" in _one_line_error(cli("map", gpkg, "--control", only_loop,
                                                             "-o", out))
    no_status = tmp_path / "no_status.gpkg"
    write_gpkg_layers(no_status, {"loop": loop().drop(columns="loop_status"),
                                  "product_zones": zones()})
    line = _one_line_error(cli("map", gpkg, "--control", no_status, "-o", out))
    assert "no 'loop_status' column" in line
    text = tmp_path / "notes.txt"
    text.write_text("not a map\n", encoding="utf-8")
    assert "not a GeoPackage" in _one_line_error(cli("map", gpkg, "--control", text, "-o", out))
    assert not out.exists()


# QGIS style of control.gpkg ----------------------------------------------------------
def test_control_gpkg_layers_get_their_qgis_style(run):
    con = sqlite3.connect(run / "control.gpkg")
    rows = dict(con.execute("SELECT f_table_name, styleQML FROM layer_styles").fetchall())
    con.close()
    assert list(rows) == ["loop", "product_zones"]
    root = ET.fromstring(rows["loop"].split("\n", 1)[1])
    assert root.find("renderer-v2").get("attr") == "loop_status"
    labels = {c.get("value"): c.get("label") for c in root.iter("category")}
    assert labels == {"none": "未启动 not started", "notified": "已告知划定 notified and designated",
                      "inspected": "已巡查 inspected", "harvest_checked": "已收获核查 harvest checked",
                      "closed": "已闭环 closed", "": "其他 Other"}
    assert 'value="1,102,94,255"' in rows["loop"]  # closed: #01665e
    zone = ET.fromstring(rows["product_zones"].split("\n", 1)[1])
    assert zone.find("renderer-v2").get("type") == "singleSymbol"
    assert '<prop k="style" v="no" />' in rows["product_zones"]  # outline only


def test_status_vocabulary_is_shared_and_apart_from_the_classes():
    assert STATUS_LABELS == {"none": ("未启动", "not started"),
                             "notified": ("已告知划定", "notified and designated"),
                             "inspected": ("已巡查", "inspected"),
                             "harvest_checked": ("已收获核查", "harvest checked"),
                             "closed": ("已闭环", "closed")}
    assert list(STATUS_COLOURS) == list(STATUS_LABELS)
    assert len(set(STATUS_COLOURS.values())) == 5
    assert not set(STATUS_COLOURS.values()) & set(C.PALETTE.values())
