#!/usr/bin/env python
"""Generate the corpus of hostile and messy inputs under ``tests/data/bad/``.

Everything is written from literals below: no randomness, no clock. Byte-for-byte
reproducible except GeoPackages, whose SQLite pages may differ between GDAL
versions (they are written with a fixed ``OGR_CURRENT_DATE`` and compared by content
in ``tests/test_bad_inputs.py``). Shapefile DBFs carry a fixed last-update date and
XLSX zip members a fixed timestamp.

The *base* dataset (``base/``) is valid: 4 parcels of 200 m x 200 m (EPSG:4545,
CGCS2000 3-degree GK CM 108E, around x 620 000, y 2 722 000) and 6 soil samples whose
classes are computed by hand from GB 15618-2018:

====  ======  ====  =======  ==========================================  =====
id    parcel  pH    landuse  Cd (mg/kg) vs screening / intervention       class
====  ======  ====  =======  ==========================================  =====
S1    P1      6.0   paddy    0.20 <= 0.4                                  1
S2    P1      6.0   paddy    0.25 <= 0.4                                  1
S3    P2      6.0   paddy    0.4 < 0.80 <= 2.0                            2
S4    P3      7.0   dry      3.5 > 3.0                                    3
S5    P4      8.0   dry      0.50 <= 0.6                                  1
S6    P4      8.0   dry      0.6 < 0.70 <= 4.0                            2
====  ======  ====  =======  ==========================================  =====

Hg 0.10, As 10, Pb 30, Cr 60 are class 1 everywhere. Parcels: P1 = 1 (majority),
P2 = 2, P3 = 3 (strict override), P4 = 2 (tie 1:1 goes to the stricter class).
Every other file varies ONE input of this base; see ``docs/bad_inputs.md``.

Usage::

    python tests/make_bad_inputs.py [OUT_DIR]      # default: tests/data/bad
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import sys
import warnings
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import openpyxl
import pyogrio
import pyproj
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, box

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "bad"
CRS = 4545
X0, Y0, SIDE = 620_000.0, 2_722_000.0, 200.0
FIXED_GPKG_DATE = "2000-01-01T00:00:00.000Z"
FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)

PARCEL_IDS = ("P1", "P2", "P3", "P4")
PARCEL_ATTRS = {"DLBM": ["0101", "0101", "0103", "0103"],
                "TBDLMJ": [40000.0, 40000.0, 40000.0, 40000.0],
                "ZLDWMC": ["东风村", "东风村", "新华村", "新华村"],
                "XZQMC": ["城关镇", "城关镇", "新村乡", "新村乡"]}
SOIL_COLUMNS = ["样品编号", "X", "Y", "pH", "镉", "汞", "砷", "铅", "铬", "采样年份"]
#: sample id, x, y, pH, Cd, Hg, As, Pb, Cr, year
SAMPLES = [
    ["S1", "620050", "2722050", "6.0", "0.20", "0.10", "10", "30", "60", "2023"],
    ["S2", "620150", "2722150", "6.0", "0.25", "0.10", "10", "30", "60", "2023"],
    ["S3", "620300", "2722100", "6.0", "0.80", "0.10", "10", "30", "60", "2023"],
    ["S4", "620100", "2722300", "7.0", "3.5", "0.10", "10", "30", "60", "2023"],
    ["S5", "620300", "2722300", "8.0", "0.50", "0.10", "10", "30", "60", "2023"],
    ["S6", "620350", "2722350", "8.0", "0.70", "0.10", "10", "30", "60", "2023"],
]
MEASURES = [["图斑编号", "措施类型", "年度"], ["P2", "品种替代", "2023"],
            ["P4", "水分调控", "2023"], ["P3", "特定农产品禁止生产区", "2023"]]


# Writers ------------------------------------------------------------------------------
def _squares() -> list[Polygon]:
    """P1 P2 in the south row, P3 P4 in the north row."""
    return [box(X0 + SIDE * i, Y0 + SIDE * j, X0 + SIDE * (i + 1), Y0 + SIDE * (j + 1))
            for j in range(2) for i in range(2)]


def base_parcels(**changes: object) -> gpd.GeoDataFrame:
    """The base parcels as a GeoDataFrame (EPSG:4545); ``changes`` replace columns."""
    data: dict[str, object] = {"BSM": list(PARCEL_IDS), **PARCEL_ATTRS}
    data.update({k: v for k, v in changes.items() if k not in ("geometry", "crs")})
    geoms = changes.get("geometry", _squares())
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=changes.get("crs", CRS))


def base_samples(rows: list[list[str]] | None = None, crs: object = CRS) -> gpd.GeoDataFrame:
    """The base samples as points (numeric columns as floats)."""
    rows = SAMPLES if rows is None else rows
    data = {c: [r[i] for r in rows] for i, c in enumerate(SOIL_COLUMNS) if c not in ("X", "Y")}
    for col in SOIL_COLUMNS[3:]:
        data[col] = [float(v) for v in data[col]]
    geoms = [Point(float(r[1]), float(r[2])) for r in rows]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS).to_crs(crs)


def write_gpkg(path: Path, gdf: gpd.GeoDataFrame, layer: str = "DLTB") -> None:
    """A one-layer GeoPackage with a fixed GDAL timestamp (same data, same bytes).

    Written without spatial index and vacuumed with 512-byte pages, which brings a
    GeoPackage from 96 KB down to about 20 KB (its metadata tables need ~40 pages).
    """
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "'crs' was not provided"
            pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG",
                                    layer_options={"SPATIAL_INDEX": "NO"})
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA page_size = 512")
        con.execute("VACUUM")


def write_shapefile(path: Path, gdf: gpd.GeoDataFrame, *, encoding: str = "utf-8",
                    drop: tuple[str, ...] = ()) -> None:
    """A shapefile with a fixed DBF date; ``drop`` removes sidecars (``.prj``, ``.cpg``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(gdf, path, encoding=encoding,
                                layer_options={"DBF_DATE_LAST_UPDATE": "2000-01-01"})
    for suffix in drop:
        path.with_suffix(suffix).unlink()


def write_csv(path: Path, rows: list[list[str]], *, sep: str = ",", encoding: str = "utf-8",
              bom: bool = False) -> None:
    """Rows of text cells as a CSV (no quoting: the cells hold no separator)."""
    text = "\n".join(sep.join(r) for r in rows) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode(encoding) + text.encode(encoding))


def soil_rows(edit: Callable[[list[list[str]]], None] | None = None,
              columns: list[str] | None = None) -> list[list[str]]:
    """Header + base sample rows, a copy changed by ``edit``."""
    rows = [list(columns or SOIL_COLUMNS)] + [list(r) for r in SAMPLES]
    if edit is not None:
        edit(rows)
    return rows


def _set(sample: str, column: str, value: str) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        col = rows[0].index(column)
        next(r for r in rows if r[0] == sample)[col] = value
    return edit


def _every(column: str, change: Callable[[str], str]) -> Callable[[list[list[str]]], None]:
    """An edit applying ``change`` to every cell of ``column``."""
    def edit(rows: list[list[str]]) -> None:
        col = rows[0].index(column)
        for r in rows[1:]:
            r[col] = change(r[col])
    return edit


def _without(column: str) -> list[list[str]]:
    """Header + base rows without ``column``."""
    col = SOIL_COLUMNS.index(column)
    return [r[:col] + r[col + 1:] for r in soil_rows()]


def write_xlsx(path: Path, rows: list[list[object]], merges: tuple[str, ...] = ()) -> None:
    """An XLSX sheet with fixed document times and zip member timestamps."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "土壤点位"
    for row in rows:
        ws.append(row)
    for cells in merges:
        ws.merge_cells(cells)
    wb.properties.created = datetime(*FIXED_ZIP_TIME)
    wb.save(path)
    _fix_zip_times(path)


def _fix_zip_times(path: Path) -> None:
    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in members:
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" on save
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z",
                              data)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            zout.writestr(fixed, data)


def lonlat_of_samples() -> list[tuple[float, float]]:
    """(lon, lat) in EPSG:4490 of the base samples."""
    t = pyproj.Transformer.from_crs(CRS, 4490, always_xy=True)
    return [t.transform(float(r[1]), float(r[2])) for r in SAMPLES]


def dms(value: float, positive: str, negative: str) -> str:
    """``108°30'15.25"E`` (seconds to 0.01", about 0.3 m)."""
    letter = positive if value >= 0 else negative
    total = round(abs(value) * 360000)  # hundredths of a second
    deg, rest = divmod(total, 360000)
    minutes, hundredths = divmod(rest, 6000)
    return f"{deg}°{minutes:02d}'{hundredths / 100:05.2f}\"{letter}"


# The corpus -------------------------------------------------------------------------------
def _base(out: Path) -> None:
    (out / "base").mkdir()
    write_gpkg(out / "base" / "parcels.gpkg", base_parcels())
    write_csv(out / "base" / "samples.csv", soil_rows())
    write_gpkg(out / "base" / "samples.gpkg", base_samples(), layer="samples")
    write_csv(out / "base" / "measures.csv", MEASURES)


def _parcel_files(out: Path) -> None:
    write_shapefile(out / "parcels_no_prj.shp", base_parcels(), drop=(".prj",))
    write_gpkg(out / "parcels_no_crs.gpkg", base_parcels(crs=None))
    write_gpkg(out / "parcels_metres_as_4490.gpkg", base_parcels().set_crs(4490,
                                                                           allow_override=True))
    lonlat = base_parcels().to_crs(4490).set_crs(CRS, allow_override=True)
    write_gpkg(out / "parcels_degrees_as_4545.gpkg", lonlat)
    (out / "parcels_empty.gpkg").write_bytes(b"")
    write_gpkg(out / "parcels_zero_features.gpkg", base_parcels().iloc[0:0])
    write_gpkg(out / "parcels_duplicate_ids.gpkg", base_parcels(BSM=["P1", "P2", "P2", "P4"]))
    x0, y0, x1, y1 = X0 + SIDE, Y0, X0 + 2 * SIDE, Y0 + SIDE  # P2 as a bow-tie
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    write_gpkg(out / "parcels_bowtie.gpkg",
               base_parcels(geometry=[g if i != 1 else bowtie for i, g in enumerate(_squares())]))
    write_gpkg(out / "parcels_empty_geometry.gpkg",
               base_parcels(geometry=[*_squares()[:3], None]))
    halves = MultiPolygon([box(X0, Y0, X0 + SIDE, Y0 + 95.0),  # a 10 m ditch between
                           box(X0, Y0 + 105.0, X0 + SIDE, Y0 + SIDE)])
    write_gpkg(out / "parcels_multipolygon.gpkg",
               base_parcels(geometry=[halves, *_squares()[1:]]))
    write_shapefile(out / "parcels_gbk_no_cpg.shp", base_parcels(), encoding="cp936",
                    drop=(".cpg",))
    write_gpkg(out / "parcels_numeric_dlbm.gpkg", base_parcels(DLBM=[101, 101, 103, 103]))
    write_gpkg(out / "parcels_points.gpkg",
               base_parcels(geometry=[g.centroid for g in _squares()]))
    (out / "parcels_not_a_gpkg.gpkg").write_text("BSM,DLBM\nP1,0101\n", encoding="utf-8")
    write_gpkg(out / "parcels_missing_id_column.gpkg", base_parcels().drop(columns="BSM"))
    write_gpkg(out / "parcels_negative_area.gpkg",
               base_parcels(TBDLMJ=[40000.0, -5.0, 40000.0, 40000.0]))


def _sample_crs_files(out: Path) -> None:
    short = {"样品编号": "sample_id", "采样年份": "year"}  # DBF names: 10 bytes at most
    write_shapefile(out / "samples_no_prj.shp", base_samples().rename(columns=short),
                    drop=(".prj",))
    write_shapefile(out / "samples_long_utf8_field.shp", base_samples())
    lonlat = lonlat_of_samples()
    head = ["样品编号", "经度", "纬度", *SOIL_COLUMNS[3:]]
    rows = [[r[0], f"{lon:.8f}", f"{lat:.8f}", *r[3:]] for r, (lon, lat) in zip(SAMPLES, lonlat)]
    write_csv(out / "samples_lonlat_4490.csv", [head, *rows])
    swapped = [[r[0], r[2], r[1], *r[3:]] for r in rows]
    write_csv(out / "samples_swapped_lonlat.csv", [head, *swapped])
    write_gpkg(out / "samples_4490.gpkg", base_samples(crs=4490), layer="samples")
    far = [[r[0], str(int(r[1]) + 60_000), *r[2:]] for r in SAMPLES]
    write_csv(out / "samples_other_county.csv", [SOIL_COLUMNS, *far])
    one_far = ["S7", "700000", "2790000", "6.5", "0.20", "0.10", "10", "30", "60", "2023"]
    write_csv(out / "samples_outside_county.csv", soil_rows() + [one_far])
    between = ["S7", "620450", "2722450", "6.5", "0.20", "0.10", "10", "30", "60", "2023"]
    write_csv(out / "samples_outside_parcels.csv", soil_rows() + [between])
    prefixed = [[r[0], "36" + r[1], *r[2:]] for r in SAMPLES]
    write_csv(out / "samples_zone_prefix.csv", [SOIL_COLUMNS, *prefixed])
    survey = ["样品编号", "X", "Y", *SOIL_COLUMNS[3:]]  # X = northing, Y = easting
    write_csv(out / "samples_surveying_xy.csv", [survey, *[[r[0], r[2], r[1], *r[3:]]
                                                           for r in SAMPLES]])
    dms_rows = [[r[0], dms(lon, "E", "W"), dms(lat, "N", "S"), *r[3:]]
                for r, (lon, lat) in zip(SAMPLES, lonlat)]
    write_csv(out / "samples_dms_text.csv", [head, *dms_rows])
    wrong = [list(r) for r in dms_rows]
    wrong[2][1] = dms(lonlat[2][1], "N", "S")  # a latitude (…N) in the longitude column
    write_csv(out / "samples_dms_wrong_axis.csv", [head, *wrong])
    write_csv(out / "samples_missing_coordinate.csv", soil_rows(_set("S4", "Y", "")))
    points = base_samples()
    points.loc[1, "geometry"] = None
    write_gpkg(out / "samples_empty_geometry.gpkg", points, layer="samples")


def _sample_value_files(out: Path) -> None:
    (out / "samples_empty.csv").write_bytes(b"")
    write_csv(out / "samples_header_only.csv", [SOIL_COLUMNS])
    write_csv(out / "samples_duplicate_ids.csv", soil_rows(_set("S5", "样品编号", "S4")))
    write_csv(out / "samples_missing_id.csv", soil_rows(_set("S2", "样品编号", "")))
    write_csv(out / "samples_non_numeric.csv", soil_rows(_set("S3", "镉", "abc")))
    write_csv(out / "samples_negative.csv", soil_rows(_set("S2", "汞", "-0.1")))
    write_csv(out / "samples_ph_out_of_range.csv", soil_rows(_set("S4", "pH", "15.2")))
    write_csv(out / "samples_censored_ph.csv", soil_rows(_set("S1", "pH", "<5")))
    write_csv(out / "samples_huge_cd.csv", soil_rows(_set("S6", "镉", "1e9")))
    write_csv(out / "samples_nan.csv", soil_rows(_set("S5", "镉", "NaN")))
    write_csv(out / "samples_inf.csv", soil_rows(_set("S2", "铅", "inf")))
    def several(rows: list[list[str]]) -> None:
        for edit in (_set("S1", "镉", "abc"), _set("S2", "汞", "-1"), _set("S4", "pH", "15")):
            edit(rows)
    write_csv(out / "samples_several_problems.csv", soil_rows(several))
    ug = soil_rows(columns=[c if c != "镉" else "镉(μg/kg)" for c in SOIL_COLUMNS])
    for r in ug[1:]:
        r[4] = f"{float(r[4]) * 1000:g}"
    write_csv(out / "samples_ugkg.csv", ug)
    def below(rows: list[list[str]]) -> None:
        for sid, col, cell in (("S1", "汞", "ND"), ("S2", "汞", "未检出"), ("S3", "砷", "<0.05"),
                               ("S5", "铅", "＜0.05"), ("S6", "铬", "0.05L")):
            _set(sid, col, cell)(rows)
    write_csv(out / "samples_below_detection.csv", soil_rows(below))
    write_csv(out / "samples_single.csv", soil_rows()[:2])
    write_csv(out / "samples_all_without_ph.csv",
              soil_rows(_every("pH", lambda v: "")))
    write_csv(out / "samples_year_text.csv",
              soil_rows(_every("采样年份", lambda v: v + "年")))


def _sample_shape_files(out: Path) -> None:
    write_csv(out / "samples_no_ph.csv", _without("pH"))
    write_csv(out / "samples_no_cd.csv", _without("镉"))
    extra = [r + x for r, x in zip(soil_rows(), [["备注", "天气", "Unnamed: 12"]]
                                   + [["复测", "晴", ""]] * len(SAMPLES))]
    write_csv(out / "samples_extra_columns.csv", extra)
    write_csv(out / "samples_utf8_bom.csv", soil_rows(), bom=True)
    write_csv(out / "samples_gbk.csv", soil_rows(), encoding="gbk")
    write_csv(out / "samples_semicolon.csv", soil_rows(), sep=";")
    comma = soil_rows(_every("镉", lambda v: v.replace(".", ",")))
    write_csv(out / "samples_decimal_comma.csv", comma, sep=";")
    merged: list[list[object]] = [
        ["样品编号", "X", "Y", "pH", "重金属含量(mg/kg)", None, None, None, None, "采样年份"],
        [None, None, None, None, "镉", "汞", "砷", "铅", "铬", None]]
    merged += [[r[0], float(r[1]), float(r[2]), *[float(v) for v in r[3:9]], int(r[9])]
               for r in SAMPLES]
    write_xlsx(out / "samples_merged_header.xlsx", merged, merges=("E1:I1",))
    # an old binary Excel file: the OLE2 signature and an empty directory sector
    (out / "samples.xls").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))


def _other_files(out: Path) -> None:
    write_csv(out / "measures_unknown_parcels.csv",
              MEASURES + [["P9", "品种替代", "2023"], ["P10", "休耕", "2023"]])
    write_csv(out / "measures_unknown_type.csv", MEASURES + [["P1", "施肥", "2023"]])
    write_csv(out / "measures_bad_year.csv", MEASURES[:2] + [["P4", "水分调控", "去年"]])
    (out / "rules_typo.toml").write_text(
        "[interpolation]\nmax_distanse_m = 500.0\n", encoding="utf-8")
    (out / "rules_negative_distance.toml").write_text(
        "[interpolation]\nmax_distance_m = -5\n", encoding="utf-8")
    (out / "rules_not_toml.toml").write_text(
        "[interpolation\nmax_distance_m = 500\n", encoding="utf-8")
    (out / "mapping_bad_target.toml").write_text('"样品编号" = "sample_number"\n',
                                                 encoding="utf-8")
    crops = [["样品编号", "X", "Y", "作物", "镉", "铅", "年份"],
             ["C1", "620060", "2722060", "稻谷", "0.10", "0.05", "2023"],
             ["C2", "620310", "2722110", "茶叶", "0.02", "0.01", "2023"]]
    write_csv(out / "crops_unknown_crop.csv", crops)


def _source_layer_files(out: Path) -> None:
    """Rivers, geology and wind roses of source apportionment (read by farmland.io)."""
    river = LineString([(X0, Y0 + 400), (X0 + 200, Y0 + 200), (X0 + 400, Y0)])
    canal = LineString([(X0 + 100, Y0 + 300), (X0 + 300, Y0 + 400)])
    rivers = {"河流编号": ["R1", "C1"], "名称": ["清江", "东干渠"], "类型": ["河流", "灌渠"]}
    write_gpkg(out / "rivers_points.gpkg",
               gpd.GeoDataFrame(rivers, geometry=[river, Point(X0 + 100, Y0 + 300)], crs=CRS),
               layer="rivers")
    write_gpkg(out / "rivers_unknown_kind.gpkg",
               gpd.GeoDataFrame({**rivers, "类型": ["河流", "水库"]}, geometry=[river, canal],
                                crs=CRS), layer="rivers")
    split = MultiLineString([list(river.coords)[:2], list(river.coords)[1:]])
    write_gpkg(out / "rivers_multilinestring.gpkg",
               gpd.GeoDataFrame(rivers, geometry=[split, canal], crs=CRS), layer="rivers")
    write_gpkg(out / "geology_no_lithology.gpkg",
               gpd.GeoDataFrame({"名称": ["灰岩区", "红壤区"]}, geometry=_squares()[:2], crs=CRS),
               layer="geology")
    rose = [["风向", "频率", "平均风速"], ["N", "30", "2.1"], ["E", "20", "1.6"],
            ["S", "30", "2.0"], ["W", "20", "1.2"]]
    write_csv(out / "wind_rose_bad_sum.csv", rose[:4] + [["W", "10", "1.2"]])
    write_csv(out / "wind_rose_negative.csv", rose[:3] + [["S", "-30", "2.0"], rose[4]])
    write_csv(out / "wind_rose_unknown_direction.csv", rose[:2] + [["NEE", "20", "1.6"]]
              + rose[3:])
    write_csv(out / "wind_rose_rounded.csv", rose[:4] + [["W", "19.8", "1.2"]])


STEPS = (_base, _parcel_files, _sample_crs_files, _sample_value_files, _sample_shape_files,
         _other_files, _source_layer_files)


def generate(out: Path = DEFAULT_OUT) -> list[Path]:
    """Write the whole corpus into ``out`` (emptied first); return the files written."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for step in STEPS:
        step(out)
    return sorted(p for p in out.rglob("*") if p.is_file())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    files = generate(target)
    print(f"wrote {len(files)} files under {target}")
