"""Readers of the source-apportionment layers (farmland.io.source_layers) and the demo
county's rivers, outfalls, geology, wind rose and source truth (data/README.md).

The demo part reads the committed files through the readers and checks them against the
generator's own model (the rivers are rebuilt from the seed, which takes milliseconds).
The reader part uses tiny hand-built files in EPSG:4545 whose answers are written out.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import X0, Y0
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiLineString, Point, box

from farmland import io
from farmland.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="farmland")


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_demo", ROOT / "data" / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# The demo layers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rivers() -> gpd.GeoDataFrame:
    return io.read_rivers(DEMO / "rivers.gpkg")


@pytest.fixture(scope="module")
def outfalls() -> gpd.GeoDataFrame:
    return io.read_outfalls(DEMO / "rivers.gpkg")


@pytest.fixture(scope="module")
def causes() -> pd.DataFrame:
    df = pd.read_csv(DEMO / "truth" / "source_causes.csv", encoding="utf-8-sig", dtype=str,
                     keep_default_na=False)
    df[["x", "y", "added_cd_mg_kg"]] = df[["x", "y", "added_cd_mg_kg"]].astype(float)
    return df.set_index("cause_id")


@pytest.fixture(scope="module")
def areas() -> gpd.GeoDataFrame:
    return gpd.read_file(DEMO / "truth" / "source_areas.gpkg", layer="areas").set_index(
        "cause_id")


def _line(rivers: gpd.GeoDataFrame, river_id: str) -> LineString:
    (line,) = rivers.loc[rivers["river_id"] == river_id, "geometry"]
    return line


def test_demo_rivers_are_metric_lines_of_rivers_and_canals(rivers):
    assert rivers.crs.to_epsg() == 4545 and (rivers.geom_type == "LineString").all()
    assert rivers[["river_id", "name", "kind"]].values.tolist() == [
        ["R01", "清江", "river"], ["R02", "龙溪河", "river"], ["R03", "桂水", "river"],
        ["R04", "白沙河", "river"], ["R05", "清江汊流", "river"], ["C01", "清江左干渠", "canal"],
        ["C02", "清江右干渠", "canal"]]


def test_demo_vertex_order_is_the_model_flow_direction(rivers):
    """Each river line runs the way the model's river flows (the plumes' downstream); 桂水's
    lower course, which crosses 清江 in the model, is the side channel R05."""
    gen = _load_generator()
    seed = json.loads((DEMO / "CHECKSUMS.json").read_text(encoding="utf-8"))["seed"]
    streams = dict(zip(gen.STREAMS, np.random.default_rng(seed).spawn(len(gen.STREAMS)),
                       strict=True))
    model = gen.make_rivers(streams["rivers"], gen.county_centre())
    for river_id, k in (("R01", 0), ("R02", 1), ("R03", 2), ("R04", 3), ("R05", 2)):
        xy = shapely.get_coordinates(_line(rivers, river_id))
        step = np.diff(xy, axis=0)
        step /= np.hypot(*step.T)[:, None]
        gap = np.hypot(*(model[k].xy[None, :, :] - xy[:-1, None, :]).T)
        cos = (step * model[k].direction[np.argmin(gap, axis=0)]).sum(axis=1)
        assert np.median(cos) > 0.99 and (cos > 0).mean() > 0.98, river_id


def test_demo_outfalls_lie_on_their_rivers(rivers, outfalls):
    assert outfalls["enterprise_id"].tolist() == [f"E0{k}" for k in range(1, 7)]
    for _, o in outfalls.iterrows():
        assert _line(rivers, o["river_id"]).distance(o.geometry) < 0.01, o["enterprise_id"]
    sources = io.read_sources(DEMO / "pollution_sources.geojson", target_crs=outfalls.crs)
    gap = sources.geometry.distance(outfalls.geometry)  # the plant stands on the bank
    assert ((gap > 100) & (gap < 200)).all()


def test_demo_lines_meet_only_at_confluences_and_the_weir(rivers, outfalls):
    main = _line(rivers, "R01")
    e01 = main.project(outfalls.geometry[0])
    for cid in ("C01", "C02"):
        canal = _line(rivers, cid)
        start = Point(canal.coords[0])
        assert main.distance(start) < 0.01 and 0 < main.project(start) - e01 < 1000
    lines = rivers.geometry.tolist()
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            ends = shapely.get_parts([lines[i].boundary, lines[j].boundary])
            meet = shapely.get_parts(lines[i].intersection(lines[j]))
            meet = meet[~shapely.is_empty(meet)]
            assert all(shapely.distance(p, ends).min() < 0.01 for p in meet), (i, j)


def test_demo_each_plume_area_reaches_further_downstream(rivers, outfalls, areas):
    for _, o in outfalls.iterrows():
        line = _line(rivers, o["river_id"])
        at = line.project(o.geometry)
        edge = shapely.get_coordinates(areas.geometry[o["enterprise_id"]].boundary)
        along = line.project(shapely.points(edge))
        assert along.max() - at > 1.5 * (at - along.min()), o["enterprise_id"]
    band = _line(rivers, "R01").project(shapely.points(shapely.get_coordinates(
        areas.geometry["IRR"].boundary))) - _line(rivers, "R01").project(outfalls.geometry[0])
    assert band.min() > -500 and 7_000 < band.max() < 12_000


def test_demo_truth_points_sit_where_their_cause_is(rivers, outfalls, causes, areas):
    assert causes.index.tolist() == ["E01", "E02", "E03", "E04", "E05", "E06", "IRR", "KARST"]
    assert causes["cause_type"].tolist() == ["enterprise_plume"] * 6 + ["irrigation", "geogenic"]
    assert causes["enterprise_id"].tolist() == [*causes.index[:6], "E01", ""]
    assert (causes["added_cd_mg_kg"] > 0.3).all()
    points = gpd.GeoSeries(gpd.points_from_xy(causes["x"], causes["y"]), index=causes.index,
                           crs=4545)
    assert all(areas.geometry[c].contains(points[c]) for c in causes.index)
    sources = io.read_sources(DEMO / "pollution_sources.geojson", target_crs=4545)
    for cause in causes.index[:6]:
        assert points[cause].distance(sources.set_index("source_id").geometry[cause]) < 1_000
    main = _line(rivers, "R01")
    below = main.project(points["IRR"]) - main.project(outfalls.geometry[0])
    canals = rivers.loc[rivers["kind"] == "canal"].geometry
    assert 200 < below < 9_000 and canals.distance(points["IRR"]).min() < 400
    geology = io.read_geology(DEMO / "geology.gpkg")
    karst = geology.loc[geology["karst"]].geometry
    assert karst.contains(points["KARST"]).any() and rivers.distance(points["KARST"]).min() > 1_000
    for cause, point in points.items():  # every point is farmland
        x, y = point.x, point.y
        near = pyogrio.read_dataframe(DEMO / "parcels.gpkg", bbox=(x - 1, y - 1, x + 1, y + 1))
        assert near.contains(point).any(), cause


def test_demo_geology_tiles_the_county():
    geology = io.read_geology(DEMO / "geology.gpkg")
    county = gpd.read_file(DEMO / "townships.gpkg", layer="county").geometry[0]
    assert set(geology["lithology"]) == {"碳酸盐岩", "碎屑岩"}
    assert (geology["karst"] == (geology["lithology"] == "碳酸盐岩")).all()
    union = shapely.union_all(geology.geometry.values)
    assert union.symmetric_difference(county).area < 1e-6 * county.area
    assert 0.30 < geology.loc[geology["karst"]].area.sum() / county.area < 0.40
    assert (DEMO / "geology.gpkg").stat().st_size < 1024 * 1024


def test_demo_wind_rose_is_16_sectors_summing_to_one():
    rose = io.read_wind_rose(DEMO / "wind_rose.csv")
    assert rose["direction_deg"].tolist() == [22.5 * k for k in range(16)]
    assert rose["frequency"].sum() == pytest.approx(1.0, abs=1e-12)
    assert rose.loc[rose["frequency"].idxmax(), "direction_deg"] == 22.5  # NNE, winter monsoon
    assert rose["speed_m_s"].between(1.0, 3.0).all()


# Rivers -------------------------------------------------------------------------------------
def _gpkg(path: Path, data: dict, geoms: list, layer: str = "rivers", crs: object = 4545) -> Path:
    gpd.GeoDataFrame(data, geometry=geoms, crs=crs).to_file(path, layer=layer, driver="GPKG")
    return path


def test_rivers_multilines_split_keeping_vertex_order(tmp_path, caplog):
    upper = [(X0, Y0 + 2000), (X0, Y0 + 1000)]
    lower = [(X0, Y0 + 900), (X0 + 500, Y0)]
    path = _gpkg(tmp_path / "rivers.gpkg",
                 {"河流编号": ["R1", "C1"], "名称": ["清江", "东干渠"], "类型": ["河流", "干渠"]},
                 [MultiLineString([upper, lower]),
                  LineString([(X0, Y0 + 1500), (X0 + 800, Y0 + 1400)])])
    out = io.read_rivers(path)
    assert out["river_id"].tolist() == ["R1", "R1", "C1"]
    assert out["kind"].tolist() == ["river", "river", "canal"]
    assert [list(g.coords) for g in out.geometry[:2]] == [upper, lower]
    assert "1 MultiLineString(s) split into their parts" in caplog.text


def test_rivers_kind_from_the_name_and_generated_ids(tmp_path, caplog):
    path = _gpkg(tmp_path / "hyd.gpkg", {"NAME": ["龙溪河", "北干渠", "Ditch 3"]},
                 [LineString([(X0, Y0), (X0 + 100 * k + 100, Y0)]) for k in range(3)],
                 layer="水系")
    out = io.read_rivers(path)
    assert out[["river_id", "name", "kind"]].values.tolist() == [
        ["R1", "龙溪河", "river"], ["R2", "北干渠", "canal"], ["R3", "Ditch 3", "canal"]]
    assert "2 line(s) whose name holds 渠/canal/ditch taken as canals" in caplog.text


def test_rivers_in_lonlat_are_projected_in_vertex_order(tmp_path):
    line = LineString([(109.20, 24.70), (109.21, 24.65), (109.25, 24.60)])
    path = tmp_path / "rivers.geojson"
    gpd.GeoDataFrame({"名称": ["清江"]}, geometry=[line], crs=4326).to_file(path)
    out = io.read_rivers(path)
    assert out.crs.to_epsg() == 4545
    y = shapely.get_coordinates(out.geometry[0])[:, 1]
    assert (np.diff(y) < 0).all()  # still north -> south, as digitised


def test_rivers_drop_empty_and_zero_length_lines(tmp_path, caplog):
    path = _gpkg(tmp_path / "rivers.gpkg", {"河流编号": ["R1", "R2", "R3"]},
                 [LineString([(X0, Y0), (X0, Y0 + 50)]), None,
                  LineString([(X0 + 9, Y0), (X0 + 9, Y0)])])
    out = io.read_rivers(path)
    assert out["river_id"].tolist() == ["R1"]
    assert "dropped 2 river/canal line(s) without length (empty or a single point): R2, R3" \
        in caplog.text


@pytest.mark.parametrize(("data", "geoms", "pattern"), [
    ({"河流编号": ["R1", "R2"]}, [LineString([(X0, Y0), (X0, Y0 + 9)]), Point(X0, Y0)],
     (r"rivers\.gpkg, row/id R2: river/canal must be lines, found \['Point'\]\. Fix: give the "
     r"centre lines")),
    ({"河流编号": ["R1"]}, [box(X0, Y0, X0 + 50, Y0 + 900)],
     r"row/id R1: river/canal must be lines, found \['Polygon'\].*面状水系"),
    ({"河流编号": ["R1", "R2"], "类型": ["河流", "水库"]},
     [LineString([(X0, Y0), (X0, Y0 + 9)])] * 2,
     (r"rivers\.gpkg, row/id R2, column '类型': unrecognised value \(river_kind; accepted: "
     r"canal, river .*\(got '水库'\)")),
    ({"河流编号": ["R1", None]}, [LineString([(X0, Y0), (X0, Y0 + 9)])] * 2,
     r"rivers\.gpkg, row/id feature 2, column '河流编号': missing id"),
])
def test_rivers_refused(tmp_path, data, geoms, pattern):
    path = _gpkg(tmp_path / "rivers.gpkg", data, geoms)
    with pytest.raises(InputError, match=pattern) as info:
        io.read_rivers(path)
    assert "\n" not in str(info.value)


# Outfalls -----------------------------------------------------------------------------------
def test_outfalls_from_a_csv_with_coordinates(tmp_path):
    path = tmp_path / "outfalls.csv"
    path.write_text(f"企业编号,受纳水体,X,Y\nE1,清江,{X0},{Y0}\nE1,清江,{X0 + 50},{Y0}\n",
                    encoding="utf-8")
    out = io.read_outfalls(path, crs="EPSG:4545")
    assert out["enterprise_id"].tolist() == ["E1", "E1"]  # two outfalls of one plant
    assert out["river_id"].tolist() == ["清江", "清江"] and out.crs.to_epsg() == 4545


def test_outfalls_need_the_enterprise_id(tmp_path):
    path = _gpkg(tmp_path / "outfalls.gpkg", {"河流编号": ["R1"]}, [Point(X0, Y0)],
                 layer="outfalls")
    with pytest.raises(InputError, match=r"outfalls\.gpkg, column 'enterprise_id': missing "
                                         r"required column\(s\) enterprise_id .*企业编号"):
        io.read_outfalls(path)


# Geology ------------------------------------------------------------------------------------
def _squares(n: int) -> list:
    return [box(X0 + 100 * k, Y0, X0 + 100 * (k + 1), Y0 + 100) for k in range(n)]


def test_geology_karst_from_the_lithology_words(tmp_path, caplog):
    rocks = ["中厚层灰岩", "白云岩", "Dolomitic LIMESTONE", "砂岩、页岩", "碎屑岩", "非碳酸盐岩",
             "non-carbonate clastics", "泥灰岩"]
    path = _gpkg(tmp_path / "geo.gpkg", {"岩性": rocks}, _squares(8), layer="岩性")
    out = io.read_geology(path)
    assert out["lithology"].tolist() == rocks
    assert out["karst"].tolist() == [True, True, True, False, False, False, False, True]
    assert "karst taken from the lithology text" in caplog.text


def test_geology_karst_column_wins_and_blanks_fall_back(tmp_path, caplog):
    path = _gpkg(tmp_path / "geo.gpkg", {"岩性": ["灰岩", "灰岩", "砂岩", "砂岩"],
                                         "是否岩溶": ["否", None, "是", "yes"]}, _squares(4))
    out = io.read_geology(path)
    assert out["karst"].tolist() == [False, True, True, True]
    assert "1 polygon(s) with a blank '是否岩溶' cell" in caplog.text


@pytest.mark.parametrize(("data", "geoms", "pattern"), [
    ({"名称": ["灰岩"]}, _squares(1),
     r"geo\.gpkg, column 'lithology': missing required column\(s\) lithology .*岩性"),
    ({"岩性": ["灰岩", "砂岩"], "岩溶": ["是", "可能"]}, _squares(2),
     (r"geo\.gpkg, row/id feature 2, column '岩溶': unrecognised value \(karst; accepted: "
     r"是/否.*\(got '可能'\)")),
    ({"岩性": ["灰岩"]}, [LineString([(X0, Y0), (X0, Y0 + 9)])],
     r"geo\.gpkg, row/id feature 1: geology polygons must be polygons, found \['LineString'\]"),
])
def test_geology_refused(tmp_path, data, geoms, pattern):
    path = _gpkg(tmp_path / "geo.gpkg", data, geoms, layer="geology")
    with pytest.raises(InputError, match=pattern):
        io.read_geology(path)


# Wind rose ----------------------------------------------------------------------------------
def _rose(tmp_path: Path, rows: list[str], header: str = "风向,频率,平均风速") -> Path:
    path = tmp_path / "wind.csv"
    path.write_text("\ufeff" + "\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_wind_rose_chinese_names_and_calm(tmp_path, caplog):
    path = _rose(tmp_path, ["北,30,2.0", "东北风,10,1.5", "南,20,1.8", "西西北,20,1.0",
                            "静风,20,0"])
    out = io.read_wind_rose(path)
    assert out["direction_deg"].tolist() == [0.0, 45.0, 180.0, 292.5]
    assert out["frequency"].tolist() == pytest.approx([0.375, 0.125, 0.25, 0.25])
    assert out["speed_m_s"].tolist() == [2.0, 1.5, 1.8, 1.0]
    assert "calm (静风) 20.0 % of the time left out" in caplog.text


def test_wind_rose_degrees_fractions_and_percent_signs(tmp_path, caplog):
    out = io.read_wind_rose(_rose(tmp_path, ["360,0.5", "90,0.25", "270,0.25"],
                                  header="wind_direction,share"))
    assert out["direction_deg"].tolist() == [0.0, 90.0, 270.0]  # 360 is north
    assert out["frequency"].tolist() == [0.5, 0.25, 0.25] and "speed_m_s" not in out
    out = io.read_wind_rose(_rose(tmp_path, ["N,50.2%", "S,49.5%"], header="风向,频率(%)"))
    assert out["frequency"].tolist() == pytest.approx([50.2 / 99.7, 49.5 / 99.7])
    assert "column '频率(%)' sums to 99.7%; rescaled to 100%" in caplog.text


@pytest.mark.parametrize(("rows", "pattern"), [
    (["N,50", "S,40"], (r"wind\.csv, column '频率': wind frequencies do not sum to 100 % \(or to "
                       r"1\) \(got 90\.0\)")),
    (["N,110", "S,-10"], r"wind\.csv, row/id line 3, column '频率': negative value \(got '-10'\)"),
    (["N,50", "NNNE,50"], (r"row/id line 3, column '风向': unrecognised value \(wind direction; "
                          r"accepted: degrees 0-360.*\(got 'NNNE'\)")),
    (["N,50", "北,50"], (r"row/id line 3, column '风向': two rows for the same wind direction "
                       r"\(got '北'\)")),
    (["400,50", "S,50"], r"row/id line 2, column '风向': wind direction outside 0-360 degrees"),
    (["N,50", "S,abc"], r"row/id line 3, column '频率': not a number \(got 'abc'\)"),
    (["N,", "S,100"], r"row/id line 2, column '频率': empty cell where a value is required"),
    (["静风,100"], r"wind\.csv, column '风向': no wind direction besides calm"),
])
def test_wind_rose_refused(tmp_path, rows, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        io.read_wind_rose(_rose(tmp_path, rows, header="风向,频率"))
    assert "\n" not in str(info.value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=16, max_size=16).filter(lambda w: sum(w) > 0))
def test_wind_rose_frequencies_always_sum_to_one(weights):
    percent = np.round(100 * np.array(weights) / sum(weights), 1)  # rounded as tables are
    frame = pd.DataFrame({"风向": [22.5 * k for k in range(16)], "频率": percent})
    out = io.read_wind_rose(frame)
    assert out["frequency"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (out["frequency"] >= 0).all() and len(out) == 16
