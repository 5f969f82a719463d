"""Tests for farmland.io.readers: readers, value parsing, errors, atomic writes.

Fixtures are tiny files written into tmp_path; coordinates in EPSG:4545 (CGCS2000
3-degree GK CM 108E) unless a test is about another CRS.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from pathlib import Path

import geopandas as gpd
import openpyxl  # a dependency of farmland (Excel input and reports), never optional
import pandas as pd
import pyogrio
import pytest
from conftest import X0, Y0
from shapely.geometry import Point, Polygon, box

from farmland import io
from farmland.errors import CRSError, InputError, OutputExistsError
from farmland.io.columns import kind_aliases, normalise_name, unit_factor
from farmland.io.values import parse_cell

SOIL_HEADER = "样品编号,X,Y,pH,镉,汞,砷,铅,铬,铜,镍,锌,采样年份,调查类型"


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="farmland")


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _soil_csv(tmp_path: Path, rows: list[str], header: str = SOIL_HEADER,
              name: str = "soil.csv") -> Path:
    return _write(tmp_path / name, "\ufeff" + "\n".join([header, *rows]) + "\n")


def _parcels(n: int = 3, **columns) -> gpd.GeoDataFrame:
    data = {"BSM": [f"P{i + 1}" for i in range(n)], "DLBM": ["0101", "0103", "0201"][:n],
            "TBDLMJ": [9000.0, 8000.0, 7000.0][:n], "ZLDWDM": ["5201020010010000000"] * n,
            "ZLDWMC": ["东风村"] * n, "XZQDM": ["520102001"] * n, "XZQMC": ["城关镇"] * n}
    data.update(columns)
    geoms = [box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(n)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=4545)


# Aliases -----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "norm"), [("镉(mg/kg)", "镉"), ("Cd_mgkg", "cd"), ("CD", "cd"),
                                            (" pH值 ", "ph值"), ("镉（µg/kg）", "镉"),
                                            ("苯并[a]芘(mg/kg)", "苯并[a]芘"), ("Ｃｄ", "cd"),
                                            ("sample_id", "sampleid"), ("X(m)", "x")])
def test_normalise_name(name, norm):
    assert normalise_name(name) == norm


@pytest.mark.parametrize(("label", "factor"), [("镉(µg/kg)", 0.001), ("镉(μg/kg)", 0.001),
                                               ("Cd_ugkg", 0.001), ("cd ppb", 0.001),
                                               ("镉(mg/kg)", 1.0), ("镉", 1.0)])
def test_unit_factor(label, factor):
    assert unit_factor(label)[0] == factor


def test_every_schema_column_has_aliases():
    expected = {
        "parcels": {"parcel_id", "dlbm", "dlmc", "landuse", "net_area_m2", "township",
                    "township_code", "village"},
        "soil": {"sample_id", "ph", "cd", "hg", "as", "pb", "cr", "cu", "ni", "zn", "hch", "ddt",
                 "bap", "landuse", "year", "survey"},
        "crops": {"sample_id", "crop", "cd", "pb", "hg", "as", "cr", "year", "unit"},
        "measures": {"parcel_id", "measure_type", "measure_class", "year"},
        "sources": {"source_id", "name", "industry", "metals"},
        "townships": {"township", "township_code"},
    }
    for kind, columns in expected.items():
        table = kind_aliases(kind)
        assert columns <= set(table), kind
        assert all(len(table[c]) >= 2 for c in columns), kind


@pytest.mark.parametrize(("cell", "parsed"), [
    ("<0.05", ("limit", 0.05)), ("＜0.05", ("limit", 0.05)), ("0.05L", ("limit", 0.05)),
    ("≤ 0.2", ("limit", 0.2)), ("ND(0.01)", ("limit", 0.01)), ("-", ("missing", None)),
    ("abc", ("bad", None))])
def test_parse_cell(cell, parsed):
    status, value = parse_cell(cell)
    assert status == parsed[0]
    assert (math.isnan(value) if parsed[1] is None else value == parsed[1])


def test_years_from_text_numbers_and_dates():
    from farmland.io.values import Problems, parse_years

    raw = pd.Series(["2023年", "2023.0", 2021, 2022.0, "20190512", "2020-06-01", "", "明年"])
    rows = pd.Series([f"S{i}" for i in range(8)])
    problems = Problems("s.csv")
    years = parse_years(raw, rows, "采样年份", problems)
    assert str(years.dtype) == "Int64"
    assert years.iloc[:6].tolist() == [2023, 2023, 2021, 2022, 2019, 2020]
    assert years.iloc[6:].isna().all()
    with pytest.raises(InputError, match=r"s\.csv, row/id S7, column '采样年份': not a year"):
        problems.raise_if_any()


def test_crop_unit_column_is_not_taken_for_the_adjustment_unit():
    assert "unit" not in kind_aliases("crops")["unit"]
    assert "调整单元" in kind_aliases("crops")["unit"]


def test_not_detected_words_have_no_value():
    for cell in ("ND", "nd", "未检出", "<DL", "N.D."):
        status, value = parse_cell(cell)
        assert status == "nd" and math.isnan(value)


# Parcels ------------------------------------------------------------------------------
def test_read_parcels_canonical_columns(tmp_path):
    path = tmp_path / "parcels.gpkg"
    _parcels().to_file(path, layer="DLTB")
    out = io.read_parcels(path)
    assert list(out.columns) == ["parcel_id", "dlbm", "dlmc", "landuse", "net_area_m2", "township",
                                 "township_code", "village", "geometry"]
    assert out["parcel_id"].tolist() == ["P1", "P2", "P3"]
    assert out["landuse"].tolist() == ["paddy", "dry", "orchard"]
    assert out["net_area_m2"].tolist() == [9000.0, 8000.0, 7000.0]
    assert out["township"].tolist() == ["城关镇"] * 3
    assert out["township_code"].tolist() == ["520102001"] * 3
    assert out.crs.to_epsg() == 4545


def test_gbk_shapefile_without_cpg_round_trip(tmp_path, caplog):
    gdf = gpd.GeoDataFrame(
        {"图斑编号": ["甲1", "乙2"], "地类编码": ["0101", "0102"], "地类名称": ["水田", "水浇地"],
         "乡镇名称": ["城关镇", "河西乡"], "ZLDWMC": ["东风村", "红星村"]},
        geometry=[box(X0, Y0, X0 + 50, Y0 + 50), box(X0 + 50, Y0, X0 + 100, Y0 + 50)], crs=4545)
    path = tmp_path / "dltb.shp"
    gdf.to_file(path, encoding="gbk")
    (tmp_path / "dltb.cpg").unlink()
    assert "城关镇".encode("gbk") in (tmp_path / "dltb.dbf").read_bytes()
    out = io.read_parcels(path)
    assert out["parcel_id"].tolist() == ["甲1", "乙2"]
    assert out["dlmc"].tolist() == ["水田", "水浇地"]
    assert out["township"].tolist() == ["城关镇", "河西乡"]
    assert out["village"].tolist() == ["东风村", "红星村"]
    assert out["landuse"].tolist() == ["paddy", "irrigated"]
    assert "decoding it as GBK" in caplog.text


def test_parcel_codes_fallbacks_and_rotation(tmp_path, caplog):
    gdf = _parcels(3).drop(columns=["XZQDM", "XZQMC"])
    gdf["DLBM"] = [101, 201, 102]  # numeric codes that lost their leading zero
    gdf["水旱轮作"] = ["否", "", "是"]
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    out = io.read_parcels(path)
    assert out["dlbm"].tolist() == ["0101", "0201", "0102"]
    assert out["landuse"].tolist() == ["paddy", "orchard", "rotation"]
    assert out["township_code"].tolist() == ["520102001"] * 3  # first 9 digits of ZLDWDM
    # no XZQMC: parcels are grouped by the township code, never by village (ZLDWMC)
    assert out["township"].tolist() == ["520102001"] * 3
    assert out["village"].tolist() == ["东风村"] * 3
    assert "only codes (first 9 digits of ZLDWDM)" in caplog.text
    # a township table (XZQDM, XZQMC; no geometry) names them by code
    table = tmp_path / "towns.csv"
    table.write_text("XZQDM,XZQMC\n520102001,东风镇\n520102002,西岭乡\n", encoding="utf-8")
    named = io.read_parcels(path, townships=table)
    assert named["township"].tolist() == ["东风镇"] * 3
    assert "township names from the townships layer, by code (XZQDM) (3 of 3" in caplog.text


def test_parcel_codes_with_suffix_and_legacy_codes(tmp_path):
    path = tmp_path / "p.gpkg"
    _parcels(3, DLBM=["0201K", "011", "0204"]).to_file(path)
    out = io.read_parcels(path)
    assert out["dlbm"].tolist() == ["0201", "0101", "0204"]
    assert out["landuse"].tolist() == ["orchard", "paddy", "garden"]


def test_parcels_without_landuse_are_unknown_with_warning(tmp_path, caplog):
    path = tmp_path / "p.gpkg"
    _parcels(2).drop(columns=["DLBM"]).to_file(path)
    out = io.read_parcels(path)
    assert out["landuse"].tolist() == ["unknown", "unknown"]
    assert out["dlbm"].isna().all()
    assert "no land-use code (DLBM)" in caplog.text


def test_bow_tie_polygon_is_repaired_and_empty_dropped(tmp_path, caplog):
    bow_tie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    gdf = _parcels(3)
    gdf.geometry = [bow_tie, box(X0, Y0 + 200, X0 + 10, Y0 + 210), Polygon()]
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    out = io.read_parcels(path)
    assert out["parcel_id"].tolist() == ["P1", "P2"]
    assert out.is_valid.all()
    assert out.geometry.iloc[0].geom_type == "MultiPolygon"
    assert out.geometry.iloc[0].area == pytest.approx(5000.0)  # two 2 500 m² triangles
    assert "repaired 1 invalid polygon(s) with make_valid" in caplog.text
    assert "dropped 1 parcel(s) with empty geometry: P3" in caplog.text


def test_parcels_must_be_polygons(tmp_path):
    path = tmp_path / "p.gpkg"
    gpd.GeoDataFrame({"BSM": ["A"]}, geometry=[Point(X0, Y0)], crs=4545).to_file(path)
    with pytest.raises(InputError, match=r"p\.gpkg, row/id A: parcels must be polygons"):
        io.read_parcels(path)


def test_filegdb_layer(tmp_path):
    path = tmp_path / "county.gdb"
    _parcels(2).to_file(path, layer="XZQ", driver="OpenFileGDB")
    _parcels(3).to_file(path, layer="DLTB", driver="OpenFileGDB")
    assert len(io.read_parcels(path, layer="DLTB")) == 3
    assert len(io.read_parcels(path)) == 3  # DLTB preferred
    with pytest.raises(InputError, match="no layer 'TDLY'.*layers: "):
        io.read_parcels(path, layer="TDLY")


def test_geographic_parcels_go_to_the_derived_gk_zone(tmp_path, caplog):
    path = tmp_path / "p.geojson"
    _parcels(2).to_crs(4326).to_file(path)
    out = io.read_parcels(path)
    assert out.crs.to_epsg() == 4545
    assert out.area.sum() == pytest.approx(20_000.0, rel=1e-6)
    assert "projected to EPSG:4545" in caplog.text


def test_target_crs_and_geoparquet(tmp_path):
    path = tmp_path / "p.gpkg"
    _parcels(1).to_file(path)
    out = io.read_parcels(path, target_crs="EPSG:4524")
    assert out.total_bounds[0] == pytest.approx(36_500_000.0)
    with pytest.raises(CRSError, match="not projected"):
        io.read_parcels(path, target_crs=4490)
    parquet = tmp_path / "p.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        parquet.write_bytes(b"PAR1")
        with pytest.raises(InputError, match="GeoParquet needs pyarrow"):
            io.read_parcels(parquet)
    else:  # pragma: no cover - depends on the environment
        _parcels(2).to_parquet(parquet)
        assert io.read_parcels(parquet)["parcel_id"].tolist() == ["P1", "P2"]


# Soil samples -----------------------------------------------------------------------
def _demo_soil_rows() -> list[str]:
    return [f"S1,{X0 + 50},{Y0 + 50},6.2,0.35,ND,<0.01,30,60,20,25,80,2023年,详查",
            f"S2,{X0 + 150},{Y0 + 50},5.1,<0.05,0.1,10,30,60,20,25,80,2023,加密",
            f"S3,{X0 + 250},{Y0 + 50},7.8,0.05L,0.2,12,35,70,21,26,81,2023.0,例行"]


def test_demo_style_soil_csv(tmp_path, caplog):
    out = io.read_soil_samples(_soil_csv(tmp_path, _demo_soil_rows()), crs="EPSG:4545")
    assert out["sample_id"].tolist() == ["S1", "S2", "S3"]
    assert out["cd"].tolist() == [0.35, 0.025, 0.025]
    assert out["cd_censored"].tolist() == [False, True, True]
    assert math.isnan(out["hg"].iloc[0]) and out["hg_censored"].iloc[0]
    assert out["as"].iloc[0] == 0.005 and out["as_censored"].iloc[0]
    assert out["year"].tolist() == [2023, 2023, 2023] and str(out["year"].dtype) == "Int64"
    assert out["survey"].tolist() == ["详查", "加密", "例行"]
    assert out.geometry.x.tolist() == [X0 + 50, X0 + 150, X0 + 250]
    assert out.crs.to_epsg() == 4545
    assert {"cu", "ni", "zn", "zn_censored"} <= set(out.columns)
    assert "hch" not in out.columns
    assert "not detected without a detection limit (S1)" in caplog.text


@pytest.mark.parametrize(("option", "expected"), [("half", 0.025), ("limit", 0.05), ("zero", 0.0)])
def test_below_detection_option(tmp_path, option, expected):
    out = io.read_soil_samples(_soil_csv(tmp_path, _demo_soil_rows()), crs="EPSG:4545",
                               below_detection=option)
    assert out["cd"].iloc[1] == expected


def test_lonlat_csv_with_not_detected_values(tmp_path, caplog):
    path = _write(tmp_path / "soil.csv", "\n".join([
        "编号,经度,纬度,PH,Cd,Hg,As,Pb,Cr",
        "A1,108.1,27.0,6.0,<0.05,ND,0.05L,＜0.05,60",
        "A2,108.2,27.1,6.5,0.3,0.1,10,30,"]) + "\n")
    out = io.read_soil_samples(path)
    assert out["cd"].tolist() == [0.025, 0.3]
    assert out["cd_censored"].tolist() == [True, False]
    assert math.isnan(out["hg"].iloc[0]) and out["hg_censored"].tolist() == [True, False]
    assert out["as"].iloc[0] == 0.025 and out["pb"].iloc[0] == 0.025
    assert math.isnan(out["cr"].iloc[1]) and not out["cr_censored"].iloc[1]  # blank: missing
    assert out.crs.to_epsg() == 4545
    assert "assuming EPSG:4490" in caplog.text
    again = io.read_soil_samples(path, crs="EPSG:4545")  # the CLI's --crs for x/y inputs
    assert again.geometry.equals(out.geometry)


def test_microgram_columns_are_converted(tmp_path, caplog):
    path = _write(tmp_path / "soil.csv", "\n".join([
        "样品编号,X,Y,pH,镉(µg/kg),Hg_ugkg,砷,铅,铬",
        f"S1,{X0},{Y0},6.0,300,<50,10,30,60"]) + "\n")
    out = io.read_soil_samples(path, crs=4545)
    assert out["cd"].iloc[0] == pytest.approx(0.3)
    assert out["hg"].iloc[0] == pytest.approx(0.025) and out["hg_censored"].iloc[0]
    assert "column '镉(µg/kg)' is in μg/kg; values divided by 1000 to mg/kg" in caplog.text


def test_gbk_csv_falls_back(tmp_path, caplog):
    text = SOIL_HEADER + "\n" + _demo_soil_rows()[1] + "\n"
    out = io.read_soil_samples(_write(tmp_path / "gbk.csv", text, "gbk"), crs=4545)
    assert out["survey"].tolist() == ["加密"]
    assert "decoded as GBK" in caplog.text


def test_prefixed_eastings_derive_the_zone(tmp_path, caplog):
    rows = [f"S1,{36_000_000 + X0},{Y0},6.0,0.2,0.1,10,30,60,20,25,80,2023,详查"]
    out = io.read_soil_samples(_soil_csv(tmp_path, rows))
    assert out.crs.to_epsg() == 4524
    assert out.geometry.x.iloc[0] == 36_500_000.0
    assert "eastings carry zone number 36; using EPSG:4524" in caplog.text


def test_surveying_xy_order_is_swapped_with_warning(tmp_path, caplog):
    rows = [f"S1,{Y0},{X0},6.0,0.2,0.1,10,30,60,20,25,80,2023,详查"]  # X = northing
    out = io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)
    assert (out.geometry.x.iloc[0], out.geometry.y.iloc[0]) == (X0, Y0)
    assert "surveying convention X = north" in caplog.text


def test_xlsx_with_units_row_and_merged_header(tmp_path, caplog):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["样品编号", "X", "Y", "pH", "重金属含量", None, None, None, None, "采样年份"])
    sheet.append(["Sample ID", "m", "m", "无量纲", "Cd (µg/kg)", "Hg", "As", "Pb", "Cr", "Year"])
    sheet.append(["S1", X0, Y0, 6.1, 200, 0.1, 10, 30, 60, "2022年"])
    sheet.append(["S2", X0 + 10, Y0, 6.2, "<100", 0.2, 11, 31, 61, 2022])
    sheet.merge_cells("E1:I1")
    path = tmp_path / "soil.xlsx"
    book.save(path)
    out = io.read_soil_samples(path, crs=4545)
    assert out["sample_id"].tolist() == ["S1", "S2"]
    assert out["cd"].tolist() == [pytest.approx(0.2), pytest.approx(0.05)]
    assert out["pb"].tolist() == [30.0, 31.0]
    assert out["year"].tolist() == [2022, 2022]
    assert "row 2 read as a second header row" in caplog.text


def test_xlsx_data_row_with_text_is_a_clear_error(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["样品编号", "X", "Y", "pH", "镉", "汞", "砷", "铅", "铬"])
    sheet.append(["S1", X0, Y0, 6.1, "二百", 0.1, 10, 30, 60])
    path = tmp_path / "soil.xlsx"
    book.save(path)
    with pytest.raises(InputError, match=r"soil\.xlsx, row/id S1, column '镉': non-numeric "
                                         r"value \(got '二百'\)"):
        io.read_soil_samples(path, crs=4545)


# Errors ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_file_without_crs(tmp_path):
    path = tmp_path / "soil.shp"
    gpd.GeoDataFrame({"编号": ["S1"], "pH": [6.0], "Cd": [0.2], "Hg": [0.1], "As": [10.0],
                      "Pb": [30.0], "Cr": [60.0]}, geometry=[Point(X0, Y0)]).to_file(path)
    assert not (tmp_path / "soil.prj").exists()
    with pytest.raises(CRSError, match=r"soil\.shp: no coordinate reference system .*"
                                       r"--crs EPSG:4545"):
        io.read_soil_samples(path)


def test_csv_xy_without_crs(tmp_path):
    rows = [f"S1,{X0},{Y0},6.0,0.2,0.1,10,30,60,20,25,80,2023,详查"]
    with pytest.raises(CRSError, match=r"soil\.csv: no coordinate reference system"):
        io.read_soil_samples(_soil_csv(tmp_path, rows))


def test_missing_required_column(tmp_path):
    header = "样品编号,X,Y,pH,汞,砷,铅,铬"
    path = _soil_csv(tmp_path, [f"S1,{X0},{Y0},6.0,0.1,10,30,60"], header=header)
    with pytest.raises(InputError, match=r"soil\.csv, column 'cd': missing required column\(s\) "
                                         r"cd .*accepted names cd, 镉, Cd"):
        io.read_soil_samples(path, crs=4545)


def test_unreadable_and_unknown_files(tmp_path):
    corrupt = tmp_path / "broken.gpkg"
    corrupt.write_bytes(b"this is not a geopackage")
    with pytest.raises(InputError, match=r"broken\.gpkg: cannot open the file"):
        io.read_parcels(corrupt)
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.xyz: cannot open the file"):
        io.read_parcels(unknown)
    with pytest.raises(InputError, match=r"missing\.gpkg: file not found"):
        io.read_parcels(tmp_path / "missing.gpkg")


def test_non_numeric_value_names_file_row_and_column(tmp_path):
    rows = _demo_soil_rows()
    rows[1] = rows[1].replace(",0.1,10,", ",abc,10,")
    with pytest.raises(InputError, match=r"soil\.csv, row/id S2, column '汞': non-numeric value "
                                         r"\(got 'abc'\)"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)


def test_negative_value(tmp_path):
    rows = _demo_soil_rows()
    rows[2] = rows[2].replace(",35,", ",-35,")
    with pytest.raises(InputError, match=r"row/id S3, column '铅': negative concentration "
                                         r"\(got '-35'\)"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)


def test_ph_outside_range(tmp_path):
    rows = _demo_soil_rows()
    rows[0] = rows[0].replace(",6.2,", ",15,")
    with pytest.raises(InputError, match=r"soil\.csv, row/id S1, column 'pH': pH outside 0-14 "
                                         r"\(got '15'\)"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)


def test_implausible_and_infinite_values(tmp_path):
    rows = _demo_soil_rows()
    rows[0] = rows[0].replace(",0.35,", ",20000,")
    rows[1] = rows[1].replace(",60,", ",inf,")
    with pytest.raises(InputError, match=r"row/id S1, column '镉': implausible concentration "
                                         r"\(above 10000 mg/kg\).*S2 column '铬' infinite"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)


def test_duplicate_ids(tmp_path):
    rows = _demo_soil_rows()
    rows[2] = rows[2].replace("S3,", "S1,")
    with pytest.raises(InputError, match=r"soil\.csv, row/id S1, column '样品编号': duplicate id "
                                         r"\(2 rows share 1 ids\)"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)


def test_all_problems_of_a_file_in_one_error(tmp_path):
    rows = _demo_soil_rows()
    rows[0] = rows[0].replace(",6.2,", ",15,")
    rows[1] = rows[1].replace(",0.1,10,", ",abc,10,")
    rows[2] = rows[2].replace(",35,", ",-35,")
    with pytest.raises(InputError) as info:
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)
    text = str(info.value)
    assert "S1, column 'pH': pH outside 0-14" in text
    assert "row/id S2 column '汞' non-numeric value (got 'abc')" in text
    assert "row/id S3 column '铅' negative concentration (got '-35')" in text


def test_swapped_lonlat(tmp_path):
    path = _write(tmp_path / "soil.csv", "\n".join([
        "编号,经度,纬度,pH,Cd,Hg,As,Pb,Cr",
        "A1,27.0,108.1,6.0,0.2,0.1,10,30,60"]) + "\n")
    with pytest.raises(CRSError, match=r"soil\.csv: longitude and latitude look swapped"):
        io.read_soil_samples(path)


def test_zero_features(tmp_path):
    path = tmp_path / "p.gpkg"
    _parcels(1).iloc[:0].to_file(path)
    with pytest.raises(InputError, match=r"p\.gpkg: no features"):
        io.read_parcels(path)
    with pytest.raises(InputError, match=r"soil\.csv: no features"):
        io.read_soil_samples(_soil_csv(tmp_path, []), crs=4545)


def test_missing_coordinates_and_empty_points(tmp_path):
    rows = _demo_soil_rows()
    rows[1] = rows[1].replace(f",{Y0 + 50},", ",,")
    with pytest.raises(InputError, match=r"row/id S2, column 'Y': missing coordinate"):
        io.read_soil_samples(_soil_csv(tmp_path, rows), crs=4545)
    path = tmp_path / "pts.gpkg"
    gpd.GeoDataFrame({"样品编号": ["S1", "S2"], "pH": [6.0, 6.1], "Cd": [0.2, 0.2],
                      "Hg": [0.1, 0.1],
                      "As": [10.0, 10.0], "Pb": [30.0, 30.0], "Cr": [60.0, 60.0]},
                     geometry=[Point(X0, Y0), Point()], crs=4545).to_file(path)
    with pytest.raises(InputError, match=r"pts\.gpkg, row/id S2: 1 point\(s\) without geometry"):
        io.read_soil_samples(path)


def test_inputs_are_byte_identical_after_reading(tmp_path):
    gpkg = tmp_path / "p.gpkg"
    _parcels().to_file(gpkg, layer="DLTB")
    shp = tmp_path / "p.shp"
    _parcels().to_file(shp, encoding="gbk")
    (tmp_path / "p.cpg").unlink()
    csv = _soil_csv(tmp_path, _demo_soil_rows())
    before = {p: io.sha256_file(p) for p in (gpkg, shp, csv)}
    mtimes = {p: os.stat(p).st_mtime_ns for p in tmp_path.iterdir()}
    io.read_parcels(gpkg)
    io.read_parcels(shp)
    io.read_soil_samples(csv, crs=4545)
    assert {p: io.sha256_file(p) for p in before} == before
    assert {p: os.stat(p).st_mtime_ns for p in tmp_path.iterdir()} == mtimes


# Crops, measures, sources, townships ------------------------------------------------------
def test_crop_samples(tmp_path):
    path = _write(tmp_path / "crops.csv", "\ufeff" + "\n".join([
        "样品编号,X,Y,作物,镉,铅,汞,砷,铬,采样年份",
        f"C1,{X0},{Y0},稻谷,0.25,0.1,ND,0.1,0.2,2023",
        f"C2,{X0 + 10},{Y0},玉米,<0.02,0.1,0.001,0.1,0.2,2023",
        f"C3,{X0 + 20},{Y0},叶菜类,0.1,0.2,0.002,0.1,0.2,2023",
        f"C4,{X0 + 30},{Y0},大米,0.1,0.2,0.002,0.1,0.2,2023",
        f"C5,{X0 + 40},{Y0},马铃薯,0.1,0.2,0.002,0.1,0.2,2023",
        f"C6,{X0 + 50},{Y0},Wheat,0.1,0.2,0.002,0.1,0.2,2023"]) + "\n")
    out = io.read_crop_samples(path, crs="EPSG:4545")
    assert out["crop"].tolist() == ["rice", "maize", "leafy_veg", "milled_rice", "tuber_veg",
                                    "wheat"]
    assert out["cd"].iloc[:2].tolist() == [0.25, 0.01]
    assert out["cd_censored"].iloc[:2].tolist() == [False, True]
    assert out["year"].tolist() == [2023] * 6


def test_crop_file_with_one_element_and_unknown_crop(tmp_path):
    path = _write(tmp_path / "crops.csv", "\n".join([
        "样品编号,X,Y,作物,镉", f"C1,{X0},{Y0},稻谷,0.25", f"C2,{X0},{Y0 + 5},茶叶,0.1"]) + "\n")
    with pytest.raises(InputError, match=r"row/id C2, column '作物': unrecognised value \(crop; "
                                         r"accepted: .*rice.*\(got '茶叶'\)"):
        io.read_crop_samples(path, crs=4545)
    path = _write(tmp_path / "c2.csv", f"样品编号,X,Y,作物,镉\nC1,{X0},{Y0},稻谷,0.25\n")
    out = io.read_crop_samples(path, crs=4545)
    assert out["cd"].tolist() == [0.25] and math.isnan(out["pb"].iloc[0])
    path = _write(tmp_path / "c3.csv", f"样品编号,X,Y,作物\nC1,{X0},{Y0},稻谷\n")
    with pytest.raises(InputError, match="no element column"):
        io.read_crop_samples(path, crs=4545)


def test_measures(tmp_path):
    path = _write(tmp_path / "measures_2023.csv", "\ufeff" + "\n".join([
        "图斑编号,措施类型,措施类别,年度",
        "P1,品种替代、水分调控,安全利用,2023",
        "P2,种植结构调整,,2023年",
        "P3,施用石灰,安全利用,2023",
        "P4,禁产区,严格管控,2023"]) + "\n")
    out = io.read_measures(path)
    assert list(out.columns) == ["parcel_id", "measure_type", "measure_class", "year"]
    assert out["parcel_id"].tolist() == ["P1", "P1", "P2", "P3", "P4"]
    assert out["measure_type"].tolist() == ["low_accumulation_variety", "water_management",
                                            "crop_structure_change", "lime", "ban_zone"]
    assert out["measure_class"].tolist() == ["safe_use", "safe_use", "strict_control", "safe_use",
                                             "strict_control"]
    assert out["year"].tolist() == [2023] * 5


def test_unknown_measure_without_class(tmp_path):
    path = _write(tmp_path / "m.csv", "图斑编号,措施类型\nP1,休耕\nP2,喷水\n")
    with pytest.raises(InputError, match=r"m\.csv, row/id P2, column '措施类型': unrecognised "
                                         r"value of measure type without a measure class"):
        io.read_measures(path)


def test_sources_and_townships(tmp_path):
    src = tmp_path / "pollution_sources.geojson"
    gpd.GeoDataFrame({"企业名称": ["甲冶炼厂"], "行业": ["有色金属冶炼"],
                      "特征污染物": ["镉、铅,砷 铊"]}, geometry=[Point(108.0, 27.1)],
                     crs=4326).to_file(src)
    out = io.read_sources(src)
    assert out[["source_id", "name", "industry", "metals"]].iloc[0].tolist() == [
        "S1", "甲冶炼厂", "有色金属冶炼", "cd,pb,as,铊"]
    assert out.crs.to_epsg() == 4545
    assert out.geometry.x.iloc[0] == pytest.approx(500_000.0)
    towns = tmp_path / "townships.gpkg"
    county = gpd.GeoDataFrame({"XZQMC": ["某县"]}, geometry=[box(X0, Y0, X0 + 300, Y0 + 100)],
                              crs=4545)
    county.to_file(towns, layer="county")
    _parcels(2)[["XZQDM", "XZQMC", "geometry"]].assign(XZQMC=["城关镇", "河西乡"]).to_file(
        towns, layer="townships")
    out = io.read_townships(towns)
    assert out["township"].tolist() == ["城关镇", "河西乡"]
    assert out["township_code"].tolist() == ["520102001", "520102001"]


def test_mapping_file_overrides_aliases(tmp_path):
    mapping = _write(tmp_path / "map.toml",
                     '样点号 = "sample_id"\n"镉 含量" = "cd"  # quoted\nE = "x"\nN = "y"\n')
    path = _write(tmp_path / "soil.csv", "样点号,E,N,pH,镉 含量,镉,汞,砷,铅,铬\n"
                  f"Q1,{X0},{Y0},6.0,0.5,9.9,0.1,10,30,60\n")
    out = io.read_soil_samples(path, crs=4545, mapping=mapping)
    assert out["sample_id"].tolist() == ["Q1"] and out["cd"].tolist() == [0.5]
    assert io.read_mapping(mapping)["样点号"] == "sample_id"
    bad = _write(tmp_path / "bad.json", '{"样点号": "sampleid"}')
    with pytest.raises(InputError, match=r"bad\.json, column '样点号': unknown canonical column"):
        io.read_mapping(bad)


def test_demo_files():
    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    parcels = io.read_parcels(demo / "parcels.gpkg", layer="DLTB")
    soil = io.read_soil_samples(demo / "soil_samples.csv", crs="EPSG:4545")
    crops = io.read_crop_samples(demo / "crop_samples.csv", crs="EPSG:4545")
    measures = io.read_measures(demo / "measures_2023.csv")
    sources = io.read_sources(demo / "pollution_sources.geojson")
    towns = io.read_townships(demo / "townships.gpkg")
    assert parcels.crs.to_epsg() == soil.crs.to_epsg() == sources.crs.to_epsg() == 4545
    assert set(parcels["landuse"]) <= {"paddy", "irrigated", "dry", "orchard", "garden"}
    assert set(crops["crop"]) <= {"rice", "maize", "leafy_veg"}
    assert set(measures["measure_class"]) == {"safe_use", "strict_control"}
    assert towns["township"].notna().all() and towns["township_code"].str.len().eq(9).all()
    unknown = set(measures["parcel_id"]) - set(parcels["parcel_id"])  # a few phantom ids
    assert len(unknown) < 0.01 * len(measures)


# Writing -------------------------------------------------------------------------------
def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out" / "summary.csv"
    with pytest.raises(RuntimeError, match="boom"), io.atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".csv"
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(target.parent.iterdir()) == []


def test_atomic_write_refuses_to_overwrite(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old")
    with pytest.raises(OutputExistsError,
                       match=r"summary\.csv: output already exists.*--overwrite"):
        with io.atomic_write(target) as tmp:
            tmp.write_text("new")
    assert target.read_text() == "old"
    with io.atomic_write(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_write_gpkg_layers_is_atomic_and_reproducible(tmp_path):
    parcels = _parcels()
    table = pd.DataFrame({"township": ["城关镇"], "area_mu": [36.0]})
    first, second = tmp_path / "a" / "c.gpkg", tmp_path / "b" / "c.gpkg"
    io.write_gpkg_layers(first, {"parcels": parcels, "summary": table})
    io.write_gpkg_layers(second, {"parcels": parcels, "summary": table})
    assert {name for name, _ in pyogrio.list_layers(first)} == {"parcels", "summary"}
    back = gpd.read_file(first, layer="parcels")
    assert back["BSM"].tolist() == ["P1", "P2", "P3"] and back.crs.to_epsg() == 4545
    assert io.sha256_file(first) == io.sha256_file(second)
    with pytest.raises(OutputExistsError):
        io.write_gpkg_layers(first, {"parcels": parcels})
    with pytest.raises((TypeError, ValueError)):  # the second layer is no frame
        io.write_gpkg_layers(tmp_path / "c" / "x.gpkg", {"parcels": parcels, "bad": "oops"})
    assert list((tmp_path / "c").iterdir()) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_utf8_field_name_cut_by_the_dbf_limit(tmp_path):
    path = tmp_path / "soil.shp"
    gpd.GeoDataFrame({"样品编号": ["S1"]}, geometry=[Point(X0, Y0)], crs=4545).to_file(path)
    with pytest.raises(InputError, match=r"soil\.shp: text that is not valid utf-8.*10 bytes"):
        io.read_soil_samples(path)


def test_sha256_of_a_shapefile_covers_its_members(tmp_path):
    shp = tmp_path / "p.shp"
    _parcels().to_file(shp)
    whole = io.sha256_file(shp)
    assert whole != io.sha256_file(tmp_path / "p.dbf")
    (tmp_path / "p.cpg").write_text("GBK")
    assert io.sha256_file(shp) != whole
    gdb = tmp_path / "c.gdb"
    _parcels().to_file(gdb, layer="DLTB", driver="OpenFileGDB")
    before = io.sha256_file(gdb)
    _parcels(1).to_file(gdb, layer="XZQ", driver="OpenFileGDB")
    assert io.sha256_file(gdb) != before  # every file of the folder counts


def test_sha256_of_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    """A run hashes its parcels for the manifest and the parcel cache: the second hash of
    the same unchanged file is remembered; a rewritten file (new size or times) is read
    again, and folders are always read."""
    from farmland.io import write

    path = tmp_path / "p.csv"
    path.write_text("a,b\n1,2\n")
    reads = []
    real = write._update
    monkeypatch.setattr(write, "_update", lambda d, m: (reads.append(m.name), real(d, m)))
    first = io.sha256_file(path)
    assert io.sha256_file(path) == first and reads == ["p.csv"]
    path.write_text("a,b\n1,30\n")  # rewritten: another size and modification time
    second = io.sha256_file(path)
    assert second != first and reads == ["p.csv", "p.csv"]
    assert second == hashlib.sha256(b"a,b\n1,30\n").hexdigest()
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "x").write_text("1")
    io.sha256_file(folder)
    io.sha256_file(folder)
    assert reads.count("x") == 2
