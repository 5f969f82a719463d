"""Defects of ``farmland sources`` found by a county analyst (December 2026): duplicate
confirmation samples, evidence layers far from the county, a non-numeric wind frequency,
and codes shown where words belong (console and causes map)."""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, X0, Y0, make_parcels
from test_cli_sources import _county

from farmland.errors import InputError
from farmland.io import read_wind_rose
from farmland.io.write import write_gpkg_layers
from farmland.maps.causes import candidate_text, elements_text, factor_shares_text
from farmland.maps.layers import display_frame
from farmland.sources.confirm import ConfirmRule, confirmation_samples, merge_same_place


# 1. One confirmation sample per place ---------------------------------------------------
def _points(rows):
    return pd.DataFrame(rows, columns=["cluster_id", "candidate_id", "mode", "medium", "reason",
                                       "priority", "x", "y", "parcel_id", "township"])


def test_points_at_one_place_are_merged_and_list_every_cluster():
    pts = _points([
        ("CL001", "E01~irrigation", "water", "w", "CL001: 100 m", 1, 0.0, 0.0, "P1", "甲镇"),
        ("CL001", "E01~irrigation", "water", "w", "CL001: 2000 m", 1, 2000.0, 0.0, "", ""),
        # 0.5 m from the first point (0.3² + 0.4²): the same place, another cluster
        ("CL002", "E01~irrigation", "water", "w", "CL002: 100 m", 2, 0.3, 0.4, "P9", "乙镇"),
        # 1.5 m from the second: a different place
        ("CL002", "E01~irrigation", "water", "w", "CL002: 2000 m", 2, 2000.0, 1.5, "", ""),
        # same place as the first, but a soil sample: a different sample, kept
        ("CL003", "E02", "soil", "s", "CL003: transect", 3, 0.0, 0.0, "P1", "甲镇"),
        # same place and cluster as the first: once
        ("CL001", "E01~irrigation", "water", "w", "CL001: 100 m", 1, 0.0, 0.0, "P1", "甲镇"),
    ])
    out = merge_same_place(pts, 1.0)
    assert out["cluster_id"].tolist() == ["CL001,CL002", "CL001", "CL002", "CL003"]
    assert out["candidate_id"].tolist() == ["E01~irrigation", "E01~irrigation",
                                            "E01~irrigation", "E02"]
    assert out["reason"].tolist()[0] == "CL001: 100 m | CL002: 100 m"
    assert out["priority"].tolist() == [1, 1, 2, 3]
    # the merged point keeps the place, parcel and township of the first
    assert out.loc[0, ["x", "y", "parcel_id", "township"]].tolist() == [0.0, 0.0, "P1", "甲镇"]
    assert out[["x", "y"]].to_numpy().tolist()[1:3] == [[2000.0, 0.0], [2000.0, 1.5]]
    assert list(out.columns) == list(pts.columns)


def test_water_points_below_one_outfall_serve_both_clusters_downstream():
    """One river west → east along y = 0 (X0…X0 + 6000 m), nodes every 100 m; enterprise
    E1 discharges at its source. CL001 (x 2900–3100, y 100–300) has river nodes within
    500 m from x 2500 to 3500, CL002 (x 5400–5600) from 5000 to 6000. Water points at
    100 m, every 2000 m, and at the farthest node beside the cluster: CL001 at 100, 2000,
    3500; CL002 at 100, 2000, 4000, 6000. The points at 100 and 2000 m are the same two
    places: five points, not seven."""
    boxes = [(2900, 100, 3100, 300), (5400, 100, 5600, 300)]
    parcels = make_parcels(boxes, township=["甲镇", "乙镇"])
    clusters = gpd.GeoDataFrame({"cluster_id": ["CL001", "CL002"], "area_mu": [90.0, 60.0]},
                                geometry=parcels.geometry.to_numpy(), crs=CRS)
    found = SimpleNamespace(clusters=clusters, parcels=parcels.assign(
        cluster_id=["CL001", "CL002"], area_mu=[90.0, 60.0]))
    top = pd.DataFrame({"cluster_id": ["CL001", "CL002"], "rank": [1, 1],
                        "candidate_id": ["E1~irrigation"] * 2,
                        "candidate_type": ["irrigation"] * 2, "score": [0.8, 0.7]})
    ent = gpd.GeoDataFrame({"source_id": ["E1"]}, geometry=[shapely.Point(X0, Y0 + 50)],
                           crs=CRS)
    rivers = gpd.GeoDataFrame({"name": ["清江"], "kind": ["river"]}, geometry=[
        shapely.LineString([(X0, Y0), (X0 + 6000, Y0)])], crs=CRS)
    plan = confirmation_samples(found, top, parcels, ent, rivers=rivers, rule=ConfirmRule())
    assert plan["point_id"].tolist() == ["C001", "C002", "C003", "C004", "C005"]
    assert (plan["x"] - X0).round(2).tolist() == [100.0, 2000.0, 3500.0, 4000.0, 6000.0]
    assert plan["cluster_id"].tolist() == ["CL001,CL002", "CL001,CL002", "CL001", "CL002",
                                           "CL002"]
    assert plan["priority"].tolist() == [1, 1, 1, 2, 2]
    assert plan.loc[0, "reason"].startswith("CL001：E1 排口下游 100 m（清江）")
    assert " | CL002：E1 排口下游 100 m（清江）" in plan.loc[0, "reason"]
    assert set(plan["mode"]) == {"water"}


# 2. Evidence layers far from the county ---------------------------------------------------
def _refused(res, name):
    errors = [ln for ln in res.output.splitlines() if ln.startswith("farmland: error:")]
    assert res.exit_code == 2, res.output
    assert len(errors) == 1 and name in errors[0], res.output
    assert "Traceback" not in res.output
    return errors[0]


def test_geology_shifted_300_km_is_refused(cli, tmp_path):
    gpkg, ent = _county(tmp_path)
    geology = gpd.GeoDataFrame({"岩性": ["石灰岩"]},
                               geometry=[shapely.box(X0, Y0, X0 + 2000, Y0 + 1000)], crs=CRS)
    write_gpkg_layers(tmp_path / "geology_far.gpkg",
                      {"geology": geology.set_geometry(geology.translate(300_000, 0))})
    res = cli("sources", gpkg, "--sources", ent, "--crs", CRS, "--geology",
              tmp_path / "geology_far.gpkg", "-o", tmp_path / "out")
    line = _refused(res, "geology_far.gpkg")
    assert "no geology polygon" in line and "parcels' extent" in line
    assert "x 800000..802000" in line  # the file's own extent, 300 km east


def test_rivers_shifted_400_km_are_refused(cli, tmp_path):
    gpkg, ent = _county(tmp_path)
    line = shapely.LineString([(X0 - 500, Y0 + 500), (X0 + 2500, Y0 + 500)])
    rivers = gpd.GeoDataFrame({"名称": ["清江"]}, geometry=[line], crs=CRS)
    write_gpkg_layers(tmp_path / "rivers_far.gpkg",
                      {"rivers": rivers.set_geometry(rivers.translate(400_000, 0))})
    res = cli("sources", gpkg, "--sources", ent, "--crs", CRS, "--rivers",
              tmp_path / "rivers_far.gpkg", "-o", tmp_path / "out")
    assert "no river or canal line" in _refused(res, "rivers_far.gpkg")


def test_enterprises_of_another_county_are_refused(cli, tmp_path):
    gpkg, ent = _county(tmp_path)
    far = pd.read_csv(ent, encoding="utf-8-sig")
    far["Y"] = far["Y"] - 300_000
    far.to_csv(tmp_path / "far.csv", index=False, encoding="utf-8-sig")
    res = cli("sources", gpkg, "--sources", tmp_path / "far.csv", "--crs", CRS,
              "-o", tmp_path / "out")
    assert "no enterprise" in _refused(res, "far.csv")


def test_layers_in_the_county_are_read(tmp_path):
    from farmland.cli.sources import read_layers

    parcels = make_parcels([(0, 0, 2000, 1000)])
    ent = tmp_path / "e.gpkg"
    write_gpkg_layers(ent, {"e": gpd.GeoDataFrame(
        {"企业编号": ["E1"], "企业名称": ["厂"], "特征污染物": ["Cd"]},
        geometry=[shapely.Point(X0 + 16_000, Y0)], crs=CRS)})  # 14 km east: still a candidate
    rivers = tmp_path / "r.gpkg"  # 400 m north of the parcels: within the 500 m buffer
    write_gpkg_layers(rivers, {"rivers": gpd.GeoDataFrame({"名称": ["清江"]}, geometry=[
        shapely.LineString([(X0, Y0 + 1400), (X0 + 2000, Y0 + 1400)])], crs=CRS)})
    layers = read_layers(ent, rivers, None, None, parcels.crs, parcels=parcels)
    assert layers.enterprises["source_id"].tolist() == ["E1"] and len(layers.rivers) == 1


# 3. A text wind frequency ---------------------------------------------------------------
def test_text_frequency_in_the_first_row_names_the_row_column_and_value(tmp_path):
    path = tmp_path / "wind.csv"
    path.write_text("风向,频率\nN,abc\nS,30\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_wind_rose(path)
    text = str(err.value)
    assert "line 2" in text and "'频率'" in text and "not a number" in text
    assert "'abc'" in text and "sum to 100" not in text


def test_a_real_second_header_row_is_still_a_header(tmp_path):
    path = tmp_path / "wind.csv"
    path.write_text("风向,频率\ndirection,%\nN,60\nS,40\n", encoding="utf-8")
    rose = read_wind_rose(path)
    assert rose["direction_deg"].tolist() == [0.0, 180.0]
    assert rose["frequency"].tolist() == pytest.approx([0.6, 0.4])


# 4. Words, not codes ----------------------------------------------------------------------
def test_candidate_and_element_words():
    assert candidate_text("E01~irrigation") == "E01 经灌溉渠 via irrigation"
    assert candidate_text("geogenic") == "地质高背景 geogenic"
    assert candidate_text("E04") == "E04"
    assert candidate_text("E04", "enterprise") == "E04 企业近场 near field"
    assert candidate_text("E01~irrigation,E02") == "E01 经灌溉渠 via irrigation; E02"
    assert candidate_text(None) is None
    assert elements_text("cd,pb,zn,as") == "Cd 镉, Pb 铅, Zn 锌, As 砷"
    assert elements_text("CD、xx") == "Cd 镉, xx"


def test_the_map_names_elements_as_the_report_does():
    from farmland.report.excel import display_value

    assert elements_text("cd,pb") == display_value("driving_elements", "cd,pb", "zh")


def test_factor_shares_read_with_their_labels():
    text = factor_shares_text(["F1", "F2", "F5"], np.array([0.012, np.nan, 0.9703]),
                              ["Cu-Ni-Cr-Zn", "As", "Cd"])
    assert text == "F1 Cu-Ni-Cr-Zn 1 % · F5 Cd 97 %"


def test_causes_map_tooltips_use_words():
    clusters = gpd.GeoDataFrame({
        "cluster_id": ["CL001", "CL002"], "area_mu": [100.0, 60.0],
        "dominant_elements": ["cd", "as"],
        "top_candidate_id": ["E01~irrigation", "geogenic"],
        "top_candidate_type": ["irrigation", "geogenic"],
        "top_name": ["鑫源冶炼厂", None], "top_score": [0.82, 0.5],
        "factor_F1_cd_share": [0.02, 0.5], "factor_F5_cd_share": [0.96, 0.5],
        "main_factor": ["F5", "F1"], "main_factor_label": ["Cd", "Cu-Ni"],
        "factor_F1_label": ["Cu-Ni", "Cu-Ni"], "factor_F5_label": ["Cd", "Cd"]},
        geometry=[shapely.box(X0, Y0, X0 + 10, Y0 + 10)] * 2, crs=CRS)
    disp = display_frame("clusters", clusters)
    assert disp["_top"].tolist() == ["鑫源冶炼厂 (E01 经灌溉渠 via irrigation)",
                                     "地质高背景 geogenic"]
    assert disp["_factors"].tolist() == ["F1 Cu-Ni 2 % · F5 Cd 96 %",
                                         "F1 Cu-Ni 50 % · F5 Cd 50 %"]
    assert disp["_dominant"].tolist() == ["Cd 镉", "As 砷"]
    # without the label columns (a sources.gpkg of before), the main factor keeps its label
    old = display_frame("clusters", clusters.drop(columns=["factor_F1_label",
                                                           "factor_F5_label"]))
    assert old["_factors"].tolist() == ["F1 2 % · F5 Cd 96 %", "F1 Cu-Ni 50 % · F5 50 %"]
    links = gpd.GeoDataFrame({"cluster_id": ["CL001", "CL002"],
                              "candidate_id": ["E01~irrigation", "geogenic"],
                              "candidate_type": ["irrigation", "geogenic"], "rank": [1, 1],
                              "score": [0.82, 0.5]},
                             geometry=[shapely.LineString([(X0, Y0), (X0 + 5, Y0)])] * 2,
                             crs=CRS)
    assert display_frame("candidate_links", links)["_link"].tolist() == [
        "CL001 → E01 经灌溉渠 via irrigation", "CL002 → 地质高背景 geogenic"]
    confirm = gpd.GeoDataFrame({"point_id": ["C001"], "cluster_id": ["CL001,CL002"],
                                "candidate_id": ["E01~irrigation"], "mode": ["water"]},
                               geometry=[shapely.Point(X0, Y0)], crs=CRS)
    shown = display_frame("confirm", confirm)
    assert shown["_candidate"].tolist() == ["E01 经灌溉渠 via irrigation"]
    assert shown["_clusters"].tolist() == ["CL001, CL002"]


def test_console_summary_uses_words():
    from farmland.cli.sources import summary_lines

    table = pd.DataFrame({"cluster_id": ["CL001", "CL003"], "township": ["东岩乡", "黄塘镇"],
                          "area_mu": [5745.5, 2580.7], "dominant_elements": ["cd", "cd,pb"],
                          "top_candidate_id": ["E01~irrigation", "E04"],
                          "top_candidate_type": ["irrigation", "enterprise"],
                          "top_score": [0.82, 0.59], "top_margin": [0.39, 0.12]})
    result = SimpleNamespace(cluster_table=lambda: table, summary={
        "n_clusters": 2, "area_mu": 8326.2, "zone_gap_m": 30.0,
        "top_candidate_area_mu": {"irrigation": 5745.5, "enterprise": 2580.7},
        "n_confirmation_samples": 9})
    lines = summary_lines(result)
    assert "  CL001 东岩乡 5,745.5 亩 [Cd 镉] → E01 经灌溉渠 via irrigation (score 0.82, " \
           "margin 0.39)" in lines
    assert "  CL003 黄塘镇 2,580.7 亩 [Cd 镉, Pb 铅] → E04 企业近场 near field (score 0.59, " \
           "margin 0.12)" in lines


def test_the_report_lists_a_shared_point_under_each_cluster():
    from farmland.runs.source_outputs import per_cluster

    confirm = pd.DataFrame({"point_id": ["C001", "C002"], "cluster_id": ["CL001,CL002", "CL003"],
                            "mode": ["water", "soil"]})
    out = per_cluster(confirm)
    assert out[["point_id", "cluster_id"]].to_numpy().tolist() == [
        ["C001", "CL001"], ["C001", "CL002"], ["C002", "CL003"]]


def test_the_console_groups_cluster_areas_as_the_map_legend_does():
    """The console summed clusters by their top candidate's type while the causes map puts a
    cluster whose top score is below 0.2 under "unexplained": the demo's 11,472 亩 of
    enterprise near field were 10,700 on the map. Both now group by ``cause_keys``."""
    from farmland.cli.sources import cause_area_lines
    from farmland.sources.confirm import UNEXPLAINED_BELOW, cause_keys

    clusters = pd.DataFrame({"top_candidate_type": ["enterprise", "enterprise", "geogenic",
                                                    None, "irrigation"],
                             "top_score": [0.5, 0.19, 0.2, 0.9, np.nan],
                             "area_mu": [100.0, 40.0, 60.0, 5.0, 7.0]})
    assert UNEXPLAINED_BELOW == 0.2
    keys = cause_keys(clusters)
    assert keys == ["enterprise", "unexplained", "geogenic", "unexplained", "unexplained"]
    areas = clusters["area_mu"].groupby(keys).sum().to_dict()
    assert areas == {"enterprise": 100.0, "geogenic": 60.0, "unexplained": 52.0}
    lines = cause_area_lines({"cause_area_mu": areas, "unexplained_below": 0.2,
                              "top_candidate_area_mu": {"enterprise": 140.0}})
    assert lines == ["企业近场 enterprise near field: 100.0 亩",
                     "地质高背景 geogenic (parent material): 60.0 亩",
                     "未明 unexplained (top score below 0.2): 52.0 亩"]   # unexplained last
    # a sources.json written before has the areas by type only
    assert cause_area_lines({"top_candidate_area_mu": {"irrigation": 5.0}}) == [
        "灌溉水 irrigation water: 5.0 亩"]
