"""``farmland map``: the HTML map of a classification folder, layers read from raw files.

The parcels are the six squares of test_maps.py (EPSG:4545, from the origin X0, Y0)."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely
from conftest import X0, Y0, square
from test_maps import control_names, map_parcels, points


@pytest.fixture
def gpkg(tmp_path):
    path = tmp_path / "classification.gpkg"
    map_parcels().to_file(path, layer="parcels")
    points([(X0 + 50, Y0 + 50)], sample_id=["S1"], point_class=[1]).to_file(path, layer="samples")
    points([(X0 + 150, Y0 + 50)], sample_id=["C1"], exceeds=[True]).to_file(path, layer="crops")
    return path


def test_cli_writes_map_and_refuses_overwrite(cli, gpkg, tmp_path):
    out = tmp_path / "maps" / "county.html"
    rate = tmp_path / "rate.json"
    rate.write_text(json.dumps({"target": 0.91, "rows": [
        {"level": "county", "name": "县", "rate": 0.5, "target": 0.91, "gap_mu": 12.0},
        {"level": "township", "name": "清水镇", "rate": 0.25, "target": 0.91, "gap_mu": 9.9}]}))
    args = ["map", gpkg, "-o", out, "--township", "清水镇", "--rate-json", rate]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "map: " in result.output
    page = out.read_text(encoding="utf-8")
    assert "25.0 %" in page and "差距 gap 9.9 亩" in page and "农产品样点 Crop samples" in page
    again = cli(*args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert cli(*args, "--overwrite").exit_code == 0


def test_cli_layers_option_and_csv_plan(cli, gpkg, tmp_path):
    plan = tmp_path / "plan.csv"
    lon, lat = gpd.GeoSeries([shapely.Point(X0 + 250, Y0 + 50)], crs=4545).to_crs(4326).iloc[0].xy
    # bilingual headers as the field-team CSV export writes them
    plan.write_text("点位编号 point_id,经度 lon (WGS84),纬度 lat (WGS84),布点方式 mode\n"
                    f"N1,{lon[0]},{lat[0]},infill\n", encoding="utf-8-sig")
    flags = tmp_path / "flags.gpkg"  # several flag layers, as 'farmland flag' writes them
    gpd.GeoDataFrame({"flag": ["empty_cell"], "reason_zh": ["无样点"]},
                     geometry=[square(0, 0, 1000)], crs="EPSG:4545").to_file(flags, layer="cells")
    points([(X0 + 450, Y0 + 50)], flag=["unclassified"], reason_en=["too far"]).to_file(
        flags, layer="unclassified")
    out = tmp_path / "m.html"
    result = cli("map", gpkg, "-o", out, "--layers", "parcels,plan,flags", "--plan", plan,
                 "--flags", flags)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "加密采样点 Planned sampling points" in page and "土壤样点" not in page
    assert '"point_id":["N1"]' in page and '"mode":["infill"]' in page
    # flag codes in words, as the report writes them
    assert '"flag":["无土壤点位网格 cell without soil samples"]' in page
    assert '"flag":["未分类图斑 unclassified parcel"]' in page
    bad = cli("map", gpkg, "-o", out, "--layers", "roads")
    assert bad.exit_code == 2 and "unknown map layer" in bad.output


def test_cli_reads_raw_township_and_source_files(cli, gpkg, tmp_path):
    towns = tmp_path / "towns.gpkg"
    gpd.GeoDataFrame({"XZQDM": ["450299101"], "XZQMC": ["清水镇"]}, geometry=[square(0, 0, 600)],
                     crs="EPSG:4545").to_file(towns, layer="townships")
    sources = tmp_path / "sources.geojson"
    gpd.GeoDataFrame({"企业编号": ["E01"], "企业名称": ["冶炼厂"], "行业": ["有色金属冶炼"],
                      "特征污染物": ["Cd,Pb"]}, geometry=[shapely.Point(X0 + 300, Y0 + 300)],
                     crs="EPSG:4545").to_crs(4326).to_file(sources)
    out = tmp_path / "m.html"
    result = cli("map", gpkg, "-o", out, "--townships", towns, "--sources", sources)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert '"township":["清水镇"]' in page and '"township_code":["450299101"]' in page
    assert '"name":["冶炼厂"]' in page and '"industry":["有色金属冶炼"]' in page


def test_cli_diff_map_from_changes_gpkg(cli, gpkg, tmp_path):
    from test_maps import diff_changes

    folder = tmp_path / "diff_2023_2024"
    folder.mkdir()
    diff_changes().to_file(folder / "changes.gpkg", layer="changes")
    (folder / "diff.json").write_text(json.dumps({"run_a": "R0001", "run_b": "R0002"}))
    towns = tmp_path / "towns.gpkg"
    gpd.GeoDataFrame({"XZQMC": ["清水镇"]}, geometry=[square(0, 0, 600)],
                     crs="EPSG:4545").to_file(towns, layer="townships")
    out = tmp_path / "changes.html"
    result = cli("map", "--diff", folder, "-o", out, "--townships", towns)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert control_names(page) == ["乡镇边界 Townships", "类别变化 Class changes",
                                   "乡镇名称 Township names"]
    assert "R0001 → R0002" in page and '"township":["清水镇"]' in page
    # with run B's classification below (faded); its samples layer is not asked for
    result = cli("map", gpkg, "--diff", folder / "changes.gpkg", "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert control_names(page) == ["耕地图斑 Parcels", "类别变化 Class changes",
                                   "乡镇名称 Township names"]
    assert "土壤样点" not in page and '"fillOpacity":0.25' in page


def test_cli_diff_map_from_changes_csv_needs_the_classification(cli, gpkg, tmp_path):
    folder = tmp_path / "diff"
    folder.mkdir()
    (folder / "changes.csv").write_text(
        "parcel_id,township,area_mu,class_a,class_b,reason\n"
        "P3,清水镇,15.0,2,3,new soil samples\nP9,清水镇,1.0,1,2,gone\n", encoding="utf-8-sig")
    out = tmp_path / "d.html"
    bad = cli("map", "--diff", folder, "-o", out)
    assert bad.exit_code == 2 and "changes.csv has no geometry" in bad.output
    result = cli("map", gpkg, "--diff", folder, "-o", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert '"_flow_key":["2→3"]' in page and "new soil samples" in page  # P9: no geometry
    none = cli("map", "-o", tmp_path / "x.html")
    assert none.exit_code == 2 and "no classification to map" in none.output


def test_cli_diff_refuses_a_table_that_is_not_a_diff(cli, gpkg, tmp_path):
    wrong = tmp_path / "samples.csv"
    wrong.write_text("sample_id,pH,Cd\nS1,6.0,0.3\n", encoding="utf-8-sig")
    out = tmp_path / "d.html"
    result = cli("map", gpkg, "--diff", wrong, "-o", out)
    assert result.exit_code == 2
    lines = [x for x in result.output.strip().splitlines() if not x.startswith("INFO ")]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "not the changes written by 'farmland diff'" in lines[0]
    assert "samples.csv" in lines[0] and "parcel_id" in lines[0]
    assert not out.exists()
    no_flow = tmp_path / "changes.csv"
    no_flow.write_text("parcel_id,area_mu\nP3,15.0\n", encoding="utf-8-sig")
    result = cli("map", gpkg, "--diff", no_flow, "-o", out)
    assert result.exit_code == 2 and "no 'flow' column" in result.output
