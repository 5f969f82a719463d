"""Input defects found in exploratory testing (December 2026): shapefile field names cut to
10 bytes, full-width numbers, fix texts that do not fit the column, messages naming the
wrong file or column. Tiny hand-built inputs in EPSG:4545 metres.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from conftest import X0, Y0
from shapely.geometry import box

from farmland import io
from farmland.errors import InputError
from farmland.io.columns import (
    dbf_truncations,
    kind_aliases,
    match_columns,
    truncated_aliases,
)

SOIL_HEADER = "样品编号,X,Y,pH,镉,汞,砷,铅,铬"
#: the DLTB names of the exploratory test, as a county writes them in Chinese
CHINESE = {"BSM": "图斑编号", "DLBM": "地类编码", "DLMC": "地类名称", "TBDLMJ": "图斑地类面积",
           "ZLDWMC": "坐落单位名称", "ZLDWDM": "坐落单位代码", "XZQMC": "乡镇名称",
           "XZQDM": "乡镇代码"}
NET = [9000.0, 8000.0, 7000.0]  # net areas, unlike the 10 000 m2 of each polygon


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="farmland")


def _parcels(n: int = 3) -> gpd.GeoDataFrame:
    data = {"BSM": [f"P{i + 1}" for i in range(n)], "DLBM": ["0101", "0103", "0201"][:n],
            "DLMC": ["水田", "旱地", "果园"][:n], "TBDLMJ": NET[:n],
            "ZLDWMC": ["东风村", "东风村", "红星村"][:n],
            "ZLDWDM": ["5201020010010000000"] * n, "XZQMC": ["城关镇"] * n,
            "XZQDM": ["520102001"] * n}
    geoms = [box(X0 + 100 * i, Y0, X0 + 100 * (i + 1), Y0 + 100) for i in range(n)]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=4545)


def _to_shapefile(gdf: gpd.GeoDataFrame, path: Path, encoding: str) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL reports each laundered (cut) field name
        gdf.to_file(path, encoding=encoding)
    return path


def _soil_csv(tmp_path: Path, rows: list[str], header: str = SOIL_HEADER,
              name: str = "soil.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" + "\n".join([header, *rows]) + "\n").encode("utf-8"))
    return path


def _row(sid: str, i: int = 0, ph: str = "6.5", pb: str = "35.2") -> str:
    return f"{sid},{X0 + 50 + 10 * i},{Y0 + 50},{ph},0.2,0.1,10,{pb},60"


# 1. shapefile field names cut to 10 bytes ------------------------------------------------
def test_gbk_shapefile_with_cut_chinese_names_reads_like_the_geopackage(tmp_path, caplog):
    full = _parcels().rename(columns=CHINESE)
    full.to_file(tmp_path / "full.gpkg", layer="DLTB")
    shp = _to_shapefile(full, tmp_path / "x.shp", "gbk")
    (tmp_path / "x.cpg").unlink(missing_ok=True)
    fields = list(pyogrio.read_info(shp, encoding="cp936")["fields"])
    assert {"图斑地类面", "坐落单位名", "坐落单位代"} <= set(fields)  # the repro holds

    from_gpkg = io.read_parcels(tmp_path / "full.gpkg")
    from_shp = io.read_parcels(shp)
    assert from_shp["net_area_m2"].tolist() == NET
    assert from_shp["net_area_m2"].sum() == from_gpkg["net_area_m2"].sum() == 24000.0
    assert from_shp["village"].tolist() == ["东风村", "东风村", "红星村"]
    assert from_shp["township_code"].tolist() == ["520102001"] * 3
    assert "column '图斑地类面' read as net_area_m2: it is '图斑地类面积' cut" in caplog.text
    assert "no net area column" not in caplog.text


def test_cut_forms_are_derived_for_gbk_and_utf8_and_ambiguous_ones_dropped():
    assert dbf_truncations("图斑地类面积") == {"图斑地类面", "图斑地"}
    assert dbf_truncations("坐落单位代码") == {"坐落单位代", "坐落单"}
    assert dbf_truncations("乡镇名称") == {"乡镇名"}  # 8 bytes GBK: only UTF-8 cuts it
    forms = truncated_aliases(kind_aliases("parcels"))
    cut = {key: canonical for canonical, pairs in forms.items() for key, _ in pairs}
    assert cut["图斑地类面"] == cut["图斑地"] == "net_area_m2"
    assert cut["坐落单位名"] == "village"
    assert cut["坐落单位代"] == "_zldwdm"
    assert "坐落单" not in cut  # 坐落单位名称 and 坐落单位代码 both cut to it in UTF-8
    assert "行政区" not in cut  # 行政区名称 / 行政区代码
    soil = {key for pairs in truncated_aliases(kind_aliases("soil")).values()
            for key, _ in pairs}
    assert "苯并" not in soil  # 苯并[a]芘 cut to 苯并[a] would take 苯并[b]荧蒽 too


def test_cut_forms_only_for_shapefiles():
    columns = ["图斑编号", "图斑地类面"]
    assert "net_area_m2" not in match_columns(columns, "parcels", mapping=None).source
    match = match_columns(columns, "parcels", mapping=None, shapefile=True)
    assert match.source["net_area_m2"] == "图斑地类面"
    assert match.truncated == {"net_area_m2": "图斑地类面积"}
    # a full alias of the same column wins over a cut form
    match = match_columns(["图斑编号", "图斑地类面", "TBDLMJ"], "parcels", mapping=None,
                          shapefile=True)
    assert match.source["net_area_m2"] == "TBDLMJ" and match.truncated == {}


def test_geometry_area_fallback_is_logged_naming_the_columns(tmp_path, caplog):
    """Without any area column (not a land-survey table) the fallback is said once in the
    log (INFO); with TBMJ or KCMJ present it is a warning (next test)."""
    path = tmp_path / "no_net.gpkg"
    _parcels().drop(columns="TBDLMJ").to_file(path, layer="DLTB")
    with caplog.at_level(logging.INFO):
        parcels = io.read_parcels(path)
    assert parcels["net_area_m2"].isna().all()
    warning = [r for r in caplog.records if r.levelno == logging.INFO
               and "no net area column" in r.getMessage()]
    assert len(warning) == 1
    text = warning[0].getMessage()
    assert text.startswith(f"{path}: no net area column (looked for ")
    assert "TBDLMJ/图斑地类面积" in text and "TBMJ/图斑面积 minus KCMJ/扣除面积" in text
    assert "geometry area" in text


def test_tbmj_without_deduction_says_where_the_area_comes_from(tmp_path, caplog):
    path = tmp_path / "tbmj.gpkg"
    _parcels().drop(columns="TBDLMJ").assign(TBMJ=[9500.0, 8500.0, 7500.0]).to_file(
        path, layer="DLTB")
    io.read_parcels(path)
    text = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "no net area column" in r.getMessage())
    assert "the file has 'TBMJ' but no KCMJ column" in text
    assert "the area of each polygon (geometry area) is used as its area, not 'TBMJ'" in text


# 2. full-width numbers -------------------------------------------------------------------
def test_full_width_numbers_are_read(tmp_path):
    path = _soil_csv(tmp_path, [_row("S1", 0, ph="６．５", pb="３５．２"),
                                _row("S2", 1, ph="－０．０", pb="＜０．０５"),
                                _row("S3", 2)])
    samples = io.read_soil_samples(path, crs="EPSG:4545")
    assert samples["ph"].tolist() == [6.5, 0.0, 6.5]
    assert samples["pb"].tolist() == [35.2, 0.025, 35.2]
    assert samples["pb_censored"].tolist() == [False, True, False]


@pytest.mark.parametrize("cell", ["abc", "3²", "①", "６。５", "1_0"])
def test_text_that_is_no_number_is_still_refused(tmp_path, cell):
    path = _soil_csv(tmp_path, [_row("S1", 0, pb=cell)])
    with pytest.raises(InputError) as err:
        io.read_soil_samples(path, crs="EPSG:4545")
    assert f"row/id S1, column '铅': non-numeric value (got {cell!r})" in str(err.value)


def test_full_width_negative_is_a_negative_concentration(tmp_path):
    path = _soil_csv(tmp_path, [_row("S1", 0, pb="－３")])
    with pytest.raises(InputError, match=r"column '铅': negative concentration \(got '－３'\)"):
        io.read_soil_samples(path, crs="EPSG:4545")


# 3. pH fix text ----------------------------------------------------------------------------
def test_non_numeric_ph_fix_says_what_ph_accepts(tmp_path):
    path = _soil_csv(tmp_path, [_row("S1", 0, ph="abc")])
    with pytest.raises(InputError) as err:
        io.read_soil_samples(path, crs="EPSG:4545")
    text = str(err.value)
    assert "row/id S1, column 'pH': non-numeric value (got 'abc')" in text
    fix = text.split(". Fix: ", 1)[1]
    assert "pH is a number from 0 to 14" in fix
    assert "0.05L" not in fix and "ND" not in fix
    assert "\n" not in text


def test_non_numeric_concentration_fix_still_offers_below_detection(tmp_path):
    path = _soil_csv(tmp_path, [_row("S1", 0, pb="abc")])
    with pytest.raises(InputError, match=r"Fix: write a number, a below-detection value such "
                                         r"as '<0.05', '0.05L' or 'ND'"):
        io.read_soil_samples(path, crs="EPSG:4545")


# 4. duplicate sample ids across files ----------------------------------------------------
def test_sample_ids_in_two_files_name_both_files_and_the_id_column(tmp_path):
    first = _soil_csv(tmp_path, [_row("S1", 0), _row("S2", 1), _row("S3", 2)], name="a.csv")
    second = _soil_csv(tmp_path, [_row("S2", 3), _row("S3", 4)], name="b.csv")
    third = _soil_csv(tmp_path, [_row("S3", 5)], header=SOIL_HEADER.replace("样品编号", "点位编号"),
                      name="c.csv")
    frames = [io.read_soil_samples(p, crs="EPSG:4545") for p in (first, second, third)]
    with pytest.raises(InputError) as err:
        io.concat_sample_files(frames)
    text = str(err.value)
    assert text.startswith(f"{first}, row/id S2, S3, column '样品编号': 2 sample id(s) appear "
                           f"both in this file and in {second} (+2 more pair(s) of files)")
    assert "'sample_id'" not in text
    assert "Fix: give re-sampled points new ids" in text
    ok = io.concat_sample_files(frames[:1] + [frames[2].iloc[0:0]])
    assert ok["sample_id"].tolist() == ["S1", "S2", "S3"]


def test_sample_id_clash_names_each_files_own_id_column(tmp_path):
    first = _soil_csv(tmp_path, [_row("S1", 0)], name="a.csv")
    second = _soil_csv(tmp_path, [_row("S1", 1)], name="b.csv",
                       header=SOIL_HEADER.replace("样品编号", "点位编号"))
    frames = [io.read_soil_samples(p, crs="EPSG:4545") for p in (first, second)]
    with pytest.raises(InputError, match=r"column '样品编号' / '点位编号': 1 sample id\(s\)"):
        io.concat_sample_files(frames)


# 5. a .cpg that names the wrong encoding --------------------------------------------------
def test_cpg_saying_utf8_on_a_gbk_dbf_says_what_to_do(tmp_path):
    shp = _to_shapefile(_parcels(), tmp_path / "x.shp", "gbk")
    (tmp_path / "x.cpg").write_text("UTF-8")
    with pytest.raises(InputError) as err:
        io.read_parcels(shp)
    text = str(err.value)
    assert "the code page file x.cpg says 'UTF-8'" in text
    assert "Fix: write GBK in x.cpg" in text and "delete x.cpg" in text
    assert "GeoPackage" in text
    assert "encoding=" not in text
    (tmp_path / "x.cpg").write_text("GBK")  # what the fix says: the reader honours it
    assert io.read_parcels(shp)["village"].tolist() == ["东风村", "东风村", "红星村"]


def test_utf8_names_cut_inside_a_character_are_named(tmp_path):
    shp = _to_shapefile(_parcels().rename(columns=CHINESE), tmp_path / "u.shp", "utf-8")
    with pytest.raises(InputError) as err:
        io.read_parcels(shp)
    text = str(err.value)
    assert "'图斑地…'" in text and "cut in the middle of a character" in text
    assert "export the layer as GeoPackage" in text


# 6. accepted names listed once -------------------------------------------------------------
def test_missing_column_lists_each_accepted_name_once(tmp_path):
    path = _soil_csv(tmp_path, ["S1,500050,3000050,6.5,0.1,10,35,60"],
                     header="样品编号,X,Y,pH,汞,砷,铅,铬")
    with pytest.raises(InputError) as err:
        io.read_soil_samples(path, crs="EPSG:4545")
    text = str(err.value)
    assert "cd: accepted names cd, 镉, Cd, CD, 总镉, 镉含量, cadmium;" in text
    names = text.split("cd: accepted names ", 1)[1].split(";", 1)[0].split(", ")
    assert len(names) == len(set(names))


# 8. units printed as written ---------------------------------------------------------------
def test_unit_conversion_log_keeps_the_slash(tmp_path, caplog):
    path = _soil_csv(tmp_path, [_row("S1", 0)], header=SOIL_HEADER.replace("汞", "汞(μg/kg)"))
    samples = io.read_soil_samples(path, crs="EPSG:4545")
    assert samples["hg"].iloc[0] == pytest.approx(0.0001)
    assert "column '汞(μg/kg)' is in μg/kg; values divided by 1000 to mg/kg" in caplog.text


# 9. the file's own township column ---------------------------------------------------------
def test_township_log_names_the_files_own_column(tmp_path, caplog):
    path = tmp_path / "cn.gpkg"
    _parcels().rename(columns=CHINESE).to_file(path, layer="DLTB")
    parcels = io.read_parcels(path)
    assert parcels["township"].tolist() == ["城关镇"] * 3
    assert "township names from the parcels' township column (乡镇名称)" in caplog.text
    assert "(XZQMC)" not in caplog.text


def test_township_codes_log_names_the_files_own_code_column(tmp_path, caplog):
    path = tmp_path / "codes.gpkg"
    _parcels().drop(columns=["XZQMC", "XZQDM"]).rename(columns=CHINESE).to_file(path,
                                                                                layer="DLTB")
    parcels = io.read_parcels(path)
    assert parcels["township"].tolist() == ["520102001"] * 3
    assert "only codes (first 9 digits of 坐落单位代码)" in caplog.text


def test_frames_read_without_a_file_keep_working():
    frame = pd.DataFrame({"样品编号": ["S1"], "X": [X0 + 50], "Y": [Y0 + 50], "pH": ["６．５"],
                          "镉": [0.2], "汞": [0.1], "砷": [10], "铅": [35.2], "铬": [60]})
    samples = io.read_soil_samples(frame, crs="EPSG:4545")
    assert samples["ph"].tolist() == [6.5]
    assert samples.attrs["source"] == {"file": "(in-memory DataFrame)", "id_column": "样品编号"}
