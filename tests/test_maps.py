"""farmland.maps.page at the HTML level: layers, legend areas, offline assets, escaping.

Fixture: 100 m × 100 m squares in EPSG:4545 from the origin X0, Y0 of conftest.py; one
square is 10 000 m² = 15 亩. The browser checks live in test_map_browser.py, ``farmland map``
in test_cli_map.py.
"""

from __future__ import annotations

import json
import logging
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import X0, Y0, make_points, square

from farmland.errors import CRSError, InputError, OutputExistsError
from farmland.maps import assets as map_assets
from farmland.maps.display import (
    lab_decimals,
    plan_reason,
    round_significant,
)
from farmland.maps.labels import LabelLayer, township_label_points
from farmland.maps.layers import (
    FeatureLayer,
    _encode_points,
    _encode_polygons,
    client_spec,
    display_frame,
    encode_columns,
    to_script_json,
)
from farmland.maps.page import (
    area_mu_by_class,
    legend_html,
    make_map,
    save_map,
    simplify_coverage,
    title_html,
)
from farmland.vocabulary import flow_key

EVIL = "<img src=x onerror=alert(1)>"
URL = re.compile(r"https?://[^\s\"'()<>\\]+")


def map_parcels() -> gpd.GeoDataFrame:
    """Six squares in a row: classes 1, 1, 2, 3, <NA>, 2; the last two in an evil township
    (no area_mu column: areas come from the geometry). Also used by test_cli_map.py."""
    return gpd.GeoDataFrame(
        {"parcel_id": ["P1", "P2", "P3", "P4", EVIL, "P6"],
         "township": ["清水镇", "清水镇", "清水镇", "清水镇", EVIL, EVIL],
         "landuse": ["paddy", "dry", "paddy", "paddy", "orchard", "paddy"],
         "dlbm": ["0101", "0103", "0101", "0101", "0201", "0101"],
         "final_class": pd.array([1, 1, 2, 3, None, 2], dtype="Int8"),
         "rule": ["points:majority"] * 4 + ["unclassified:too_far", "points:majority"],
         "driving_element": [None, None, "cd", "cd", None, "pb"],
         "sample_ids": ["S1", "S1,S2", "S3", "S4", None, "S5,S6,S7,S8,S9,S10,S11,S12"]},
        geometry=[square(i, 0) for i in range(6)], crs="EPSG:4545")


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    return map_parcels()


def points(xy, **cols) -> gpd.GeoDataFrame:
    """Points at absolute EPSG:4545 coordinates."""
    return make_points(xy, origin=(0, 0), **cols)


def layers_of(fmap) -> dict[str, FeatureLayer]:
    return {c.key: c for c in fmap._children.values() if isinstance(c, FeatureLayer)}


def render(fmap, tmp_path, name="m.html") -> str:
    return save_map(fmap, tmp_path / name).read_text(encoding="utf-8")


def control_names(page: str) -> list[str]:
    """Overlay names listed in the layer control of a rendered page."""
    block = re.search(r"overlays :\s*\{(.*?)\}", page, re.DOTALL).group(1)
    return [json.loads(m) for m in re.findall(r'("(?:[^"\\]|\\.)*") :', block)]


# Legend areas -------------------------------------------------------------------------
def test_area_by_class_from_geometry(parcels):
    # 15 亩 per square: class 1 two squares, 2 two, 3 one, unclassified one
    assert area_mu_by_class(parcels) == pytest.approx({1: 30.0, 2: 30.0, 3: 15.0, None: 15.0})


def test_area_by_class_prefers_area_mu(parcels):
    p = parcels.assign(area_mu=[1.0, 2.0, 4.0, 8.0, 16.0, np.nan])  # NaN -> geometry, 15
    assert area_mu_by_class(p) == pytest.approx({1: 3.0, 2: 19.0, 3: 8.0, None: 16.0})


def test_legend_shows_bilingual_classes_with_mu_and_share(parcels):
    text = legend_html(parcels, ["samples", "crops"])
    assert "优先保护类</td><td>Priority protection</td><td class=\"fl-num\">30.0 亩" in text
    assert "严格管控类</td><td>Strict control</td><td class=\"fl-num\">15.0 亩" in text
    assert "未分类</td><td>Unclassified" in text
    assert "33.3 %" in text and "16.7 %" in text
    assert "土壤样点 Soil samples" in text and "超标 exceeds limit" in text
    assert "加密采样点" not in text


def test_title_summary_rate_below_target(parcels):
    text = title_html("T", parcels, None, {"rate": 0.897, "target": 0.91, "gap_mu": 1234.5})
    assert "全县总览 County overview" in text and "图斑 6 parcels" in text and "90.0 亩" in text
    assert '<span class="fl-rate-low">89.7 %</span> · 目标 target 91 %' in text
    assert "差距 gap 1,234.5 亩" in text


def test_title_summary_rate_met_and_undefined(parcels):
    assert "fl-rate-ok" in title_html("T", parcels, "清水镇", {"rate": 0.95, "target": 0.91})
    assert "乡镇安全利用率" in title_html("T", parcels, "清水镇", {"rate": 0.95, "target": 0.91})
    assert "无二、三类耕地" in title_html("T", parcels, None, {"rate": float("nan")})
    assert "无二、三类耕地" in title_html("T", parcels, None, {"rate": pd.NA, "target": None})
    assert "目标 target 91 %" in title_html("T", parcels, None, {"rate": 0.5, "target": None})


# Layers -------------------------------------------------------------------------------
def test_only_given_layers_are_drawn(parcels, tmp_path):
    page = render(make_map(parcels), tmp_path)
    # township names come from the parcels' township column when no boundaries are given
    assert control_names(page) == ["耕地图斑 Parcels", "乡镇名称 Township names"]
    assert "土壤样点" not in page and "乡镇边界" not in page
    nameless = render(make_map(parcels.drop(columns="township")), tmp_path, "n.html")
    assert control_names(nameless) == ["耕地图斑 Parcels"]


def test_every_overlay_drawn_when_given(parcels, tmp_path):
    zone = gpd.GeoDataFrame({"zone_id": ["SC001", "SU001"], "final_class": [3, 2],
                             "township": ["清水镇"] * 2, "area_mu": [15.0, 30.0],
                             "n_samples": [1, 2], "driving_elements": ["cd", "cd"]},
                            geometry=[square(3, 0), square(2, 0)], crs="EPSG:4545")
    fmap = make_map(
        parcels,
        samples=points([(X0 + 50, Y0 + 50)], sample_id=["S1"], point_class=pd.array([1], "Int8")),
        crops=points([(X0 + 150, Y0 + 50)], sample_id=["C1"], exceeds=[True]),
        zones=zone,
        flags=points([(X0 + 450, Y0 + 50)], reason=["unclassified"]),
        plan=points([(X0 + 460, Y0 + 60)], point_id=["N1"], mode=["infill"], reason=["gap"],
                    priority=[1]),
        sources=points([(X0 + 700, Y0 + 50)], name=["冶炼厂"], industry=["smelting"],
                       metals=["cd,pb"]),
        townships=gpd.GeoDataFrame({"township": ["清水镇"]}, geometry=[square(0, 0, 600)],
                                   crs="EPSG:4545"))
    counts = {k: v.n_features for k, v in layers_of(fmap).items()}
    # zones: only the class-3 zone is a strict-control zone
    assert counts == {"townships": 1, "parcels": 6, "zones": 1, "flags": 1, "samples": 1,
                      "crops": 1, "sources": 1, "plan": 1}
    assert control_names(render(fmap, tmp_path)) == [
        "乡镇边界 Townships", "耕地图斑 Parcels", "严格管控区 Strict-control zones",
        "数据稀疏标记 Sparse-data flags", "土壤样点 Soil samples", "农产品样点 Crop samples",
        "污染源 Pollution sources", "加密采样点 Planned sampling points",
        "乡镇名称 Township names"]


def two_townships() -> gpd.GeoDataFrame:
    """清水镇 over parcels P1–P4 (x 0–400 m) and the evil township over P5, P6, 300 m deep."""
    return gpd.GeoDataFrame(
        {"township": ["清水镇", EVIL]},
        geometry=[shapely.box(X0, Y0 - 100, X0 + 400, Y0 + 200),
                  shapely.box(X0 + 400, Y0 - 100, X0 + 800, Y0 + 200)], crs="EPSG:4545")


def test_township_detail_map_clips_every_layer_to_the_township(parcels):
    inside, neighbour, far = (X0 + 50, Y0 + 150), (X0 + 450, Y0 + 50), (X0 + 350, Y0 + 900)
    samples = points([inside, neighbour, far], sample_id=["in", "next", "far"],
                     point_class=pd.array([1, 2, 3], "Int8"))
    zones = gpd.GeoDataFrame({"zone_id": ["Z1", "Z2"]}, crs="EPSG:4545", geometry=[
        shapely.box(X0 + 300, Y0, X0 + 500, Y0 + 100),  # across the boundary: cut at x 400
        shapely.box(X0 + 500, Y0, X0 + 600, Y0 + 100)])  # in the neighbour: left out
    sources = points([(X0 + 200, Y0 + 1_500), (X0 + 200, Y0 + 2_000)], name=["1.3 km", "1.8 km"])
    plan = points([inside, neighbour], point_id=["N1", "N2"])
    fmap = make_map(parcels, samples=samples, zones=zones, sources=sources, plan=plan,
                    townships=two_townships(), township="清水镇")
    layers = layers_of(fmap)
    assert layers["parcels"].n_features == 4
    assert layers["samples"].n_features == 1 and '"in"' in layers["samples"].data_json
    assert layers["plan"].n_features == 1 and '"N1"' in layers["plan"].data_json
    assert layers["townships"].n_features == 1 and EVIL not in layers["townships"].data_json
    assert layers["sources"].n_features == 1 and "1.3 km" in layers["sources"].data_json
    assert layers["zones"].n_features == 1
    zone = json.loads(layers["zones"].data_json)[0]
    lon = np.cumsum(np.array(zone["xy"]).reshape(-1, 2), axis=0)[:, 0] / zone["s"]
    edge = gpd.GeoSeries([shapely.Point(X0 + 400, Y0)], crs=4545).to_crs(4326).x.iloc[0]
    assert lon.max() == pytest.approx(edge, abs=2e-6)  # cut at the township boundary
    assert [c.names for c in fmap._children.values() if isinstance(c, LabelLayer)] == [["清水镇"]]


def test_township_detail_without_boundaries_clips_to_its_parcels(parcels, caplog):
    # no polygon: the union of the township's parcels (y 0–100 m) grown by 100 m
    near, beyond = (X0 + 200, Y0 + 180), (X0 + 200, Y0 + 230)
    samples = points([near, beyond], sample_id=["near", "beyond"])
    layers = layers_of(make_map(parcels, samples=samples, township="清水镇"))
    assert layers["samples"].n_features == 1 and '"near"' in layers["samples"].data_json
    unnamed = two_townships().assign(township=["白云镇", "黄塘镇"])
    with caplog.at_level(logging.WARNING, logger="farmland.maps.township"):
        layers = layers_of(make_map(parcels, samples=samples, townships=unnamed,
                                    township="清水镇"))
    assert "not in the townships layer" in caplog.text
    assert layers["samples"].n_features == 1


def test_unknown_township_lists_the_names(parcels):
    with pytest.raises(InputError, match="no parcel lies in this township.*清水镇"):
        make_map(parcels, township="白云镇")


def test_crs_and_column_errors(parcels):
    with pytest.raises(CRSError, match="parcels layer has no CRS"):
        make_map(parcels.set_crs(None, allow_override=True))
    with pytest.raises(CRSError, match="geographic CRS"):
        make_map(parcels.to_crs(4326))
    with pytest.raises(InputError, match="no 'final_class' column"):
        make_map(parcels.drop(columns="final_class"))
    with pytest.raises(InputError, match="no parcels with a geometry to draw"):
        make_map(parcels.iloc[:0])
    with pytest.raises(CRSError, match="samples layer has no CRS"):
        make_map(parcels, samples=gpd.GeoDataFrame(geometry=[shapely.Point(X0, Y0)]))


def test_input_frames_are_not_modified(parcels):
    before = parcels.copy()
    make_map(parcels, simplify_m=5.0)
    pd.testing.assert_frame_equal(parcels, before)


# Offline, self-contained --------------------------------------------------------------
def test_page_loads_nothing_from_the_network(parcels, tmp_path):
    page = render(make_map(parcels), tmp_path)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link\b", page)
    assert "@import" not in page and "url(images/" not in page
    assert set(URL.findall(page)) <= map_assets.LEAFLET_INERT_URLS
    assert "jquery" not in page.lower() and "bootstrap" not in page.lower()
    assert "data:image/png;base64," in page  # layer-control icon inlined
    assert 'version="1.9.3"' in page or "1.9.3" in page  # Leaflet inlined


def test_osm_tiles_add_only_the_tile_template(parcels, tmp_path):
    page = render(make_map(parcels, tiles="osm"), tmp_path)
    urls = set(URL.findall(page)) - map_assets.LEAFLET_INERT_URLS
    assert urls == {"https://tile.openstreetmap.org/{z}/{x}/{y}.png"}
    assert "OpenStreetMap contributors" in page


def test_tianditu_preset_and_url_template(parcels, tmp_path):
    page = render(make_map(parcels, tiles="tianditu-vec:abc123"), tmp_path)
    assert page.count("tk=abc123") == 2  # vector base + annotation
    assert '"subdomains": "01234567"' in page
    page = render(make_map(parcels, tiles="https://tiles.example.org/{z}/{x}/{y}.png",
                           tiles_attr="<b>X</b>"), tmp_path, "u.html")
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in page and "<b>X</b>" not in page


def test_bad_tiles_are_refused(parcels):
    with pytest.raises(InputError, match="Tianditu tiles need a key"):
        make_map(parcels, tiles="tianditu-img")
    with pytest.raises(InputError, match="unknown basemap"):
        make_map(parcels, tiles="google")


# Escaping -----------------------------------------------------------------------------
def test_attribute_strings_never_become_markup(parcels, tmp_path):
    sources = points([(X0, Y0)], name=[EVIL], industry=["</script><script>alert(2)</script>"],
                     metals=["cd"])
    page = render(make_map(parcels, sources=sources, title=EVIL + " 标题"), tmp_path)
    assert "<img" not in page
    assert "alert(2)</script>" not in page and "</script><script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; 标题" in page  # <title> and title box
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page  # data: JSON-escaped text
    detail = render(make_map(parcels, township=EVIL), tmp_path, "d.html")
    assert "乡镇详图 Township detail: &lt;img src=x onerror=alert(1)&gt;" in detail
    assert "<img" not in detail


def test_script_json_escapes_markup_characters():
    assert to_script_json({"a": "</script>&"}) == '{"a":"\\u003c/script\\u003e\\u0026"}'


# Saving -------------------------------------------------------------------------------
def test_save_refuses_to_overwrite_and_leaves_no_temp_file(parcels, tmp_path):
    fmap = make_map(parcels)
    path = save_map(fmap, tmp_path / "sub" / "m.html")
    with pytest.raises(OutputExistsError, match="m.html: output already exists"):
        save_map(fmap, path)
    save_map(fmap, path, overwrite=True)
    assert [p.name for p in path.parent.iterdir()] == ["m.html"]


def test_same_inputs_give_the_same_bytes(parcels, tmp_path):
    a = save_map(make_map(parcels, samples=None), tmp_path / "a.html").read_bytes()
    b = save_map(make_map(parcels, samples=None), tmp_path / "b.html").read_bytes()
    assert a == b


# Geometry and encoding -----------------------------------------------------------------
def wiggly_pair() -> np.ndarray:
    """Two polygons sharing an edge with 41 vertices that wiggle ±0.5 m."""
    ys = np.linspace(0, 400, 41)
    edge = [(X0 + 100 + 0.5 * (-1) ** k, Y0 + y) for k, y in enumerate(ys)]
    left = shapely.Polygon([(X0, Y0), *edge, (X0, Y0 + 400)])
    right = shapely.Polygon([*edge, (X0 + 200, Y0 + 400), (X0 + 200, Y0)])
    return np.array([left, right], dtype=object)


def test_coverage_simplify_keeps_shared_edges():
    geoms = wiggly_pair()
    out = simplify_coverage(geoms, 5.0)
    assert shapely.get_num_coordinates(out).sum() < shapely.get_num_coordinates(geoms).sum() / 4
    assert bool(shapely.coverage_is_valid(out))  # no gap, no overlap between the two
    assert shapely.union_all(out).area == pytest.approx(200 * 400, rel=1e-3)


def test_invalid_coverage_falls_back_and_logs(caplog):
    overlapping = np.array([shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)], dtype=object)
    with caplog.at_level(logging.WARNING, logger="farmland.maps.page"):
        out = simplify_coverage(overlapping, 1.0)
    assert "do not form a valid coverage" in caplog.text
    assert [g.area for g in out] == [100.0, 100.0]
    unchanged = simplify_coverage(overlapping, 0)  # tolerance 0: the geometries as given
    assert all(shapely.equals_exact(unchanged, overlapping, 0))


def decode(part: dict) -> list:
    """Python twin of the runtime decoder: features → polygons → rings → (lon, lat)."""
    xy = np.cumsum(np.array(part["xy"]).reshape(-1, 2), axis=0) / part["s"]
    if part["kind"] == "point":
        return [tuple(v) for v in xy]
    out, k, r, p = [], 0, 0, 0
    for nf in part["fp"]:
        polys = []
        for _ in range(nf):
            rings = []
            for _ in range(part["pr"][p]):
                rings.append([tuple(v) for v in xy[k:k + part["rl"][r]]])
                k, r = k + part["rl"][r], r + 1
            polys.append(rings)
            p += 1
        out.append(polys)
    return out


def test_polygon_encoding_structure_and_round_trip():
    sq = shapely.box(113.0, 24.0, 113.001, 24.001)
    holed = shapely.box(113.01, 24.0, 113.02, 24.01).difference(
        shapely.box(113.012, 24.002, 113.014, 24.004))
    tri = shapely.Polygon([(113.03, 24.0), (113.031, 24.0), (113.03, 24.001)])
    part, rows = _encode_polygons(np.array([sq, shapely.MultiPolygon([holed, tri])]))
    assert part["fp"] == [1, 2] and part["pr"] == [1, 2, 1] and part["rl"] == [4, 4, 4, 3]
    assert part["xy"][:2] == list(shapely.get_coordinates(sq)[0] * 1_000_000)
    assert rows.tolist() == [0, 1]
    decoded = decode(part)
    np.testing.assert_allclose(decoded[0][0][0], shapely.get_coordinates(sq)[:-1], atol=1e-9)
    np.testing.assert_allclose(decoded[1][0][1],
                               shapely.get_coordinates(holed.interiors[0])[:-1], atol=1e-9)
    np.testing.assert_allclose(decoded[1][1][0], shapely.get_coordinates(tri)[:-1], atol=1e-9)


def test_point_encoding_explodes_multipoints():
    geoms = np.array([shapely.Point(113.5, 24.5),
                      shapely.MultiPoint([(113.6, 24.6), (113.7, 24.7)])])
    part, rows = _encode_points(geoms)
    assert part["n"] == 3 and rows.tolist() == [0, 1, 1]
    assert part["xy"] == [113_500_000, 24_500_000, 100_000, 100_000, 100_000, 100_000]
    np.testing.assert_allclose(decode(part), [(113.5, 24.5), (113.6, 24.6), (113.7, 24.7)])


def test_columns_are_rounded_and_dictionary_encoded(parcels):
    p = parcels.assign(area_mu=[15.456, 1.0, 2.0, 3.0, 4.0, None], p_class_1=0.123456)
    cols = encode_columns("parcels", display_frame("parcels", p))
    assert cols["area_mu"] == [15.46, 1.0, 2.0, 3.0, 4.0, None]
    assert cols["p_class_1"] == [0.12] * 6
    assert cols["final_class"] == [1, 1, 2, 3, None, 2]
    assert cols["township"] == {"d": ["清水镇", EVIL], "i": [0, 0, 0, 0, 1, 1]}
    assert cols["parcel_id"] == ["P1", "P2", "P3", "P4", EVIL, "P6"]
    assert cols["_class"][4] == "未分类 Unclassified"  # 4 labels in 6 rows: not a dictionary
    assert cols["_landuse"]["d"] == ["水田 paddy (0101)", "旱地 dry (0103)", "果园 orchard (0201)"]
    assert cols["_landuse"]["i"] == [0, 1, 0, 0, 2, 0]
    assert cols["_sample_ids"][5] == "S5, S6, S7, S8, S9, S10 (+2)"
    inf = encode_columns("parcels", display_frame("parcels", p.assign(area_mu=np.inf)))
    assert inf["area_mu"] == [None] * 6  # JSON has no infinity


def test_tooltip_rows_follow_the_columns_present(parcels):
    rows = [r["l"] for r in client_spec("parcels", display_frame("parcels", parcels).columns)["tip"]]
    assert rows == ["图斑 Parcel", "乡镇 Township", "地类 Land use", "类别 Class", "依据 Rule",
                    "主控元素 Driving element", "样点 Samples used"]
    no_probabilities = parcels.assign(p_class_1=np.nan, p_class_2=np.nan, p_class_3=np.nan)
    assert "p_class_1" not in display_frame("parcels", no_probabilities)
    richer = parcels.assign(p_class_2=0.5, measures="lime", area_mu=15.0)
    rows = [r["l"] for r in client_spec("parcels", display_frame("parcels", richer).columns)["tip"]]
    assert "概率 P(1/2/3)" in rows and "措施 Measures" in rows and "面积 Area" in rows
    assert "校准概率 Calibrated P(1/2/3)" not in rows  # no calibrated columns: no row
    calibrated = richer.assign(p_calibrated_1=0.999, p_calibrated_2=0.001, p_calibrated_3=0.0)
    rows = [r["l"] for r in client_spec("parcels",
                                        display_frame("parcels", calibrated).columns)["tip"]]
    assert rows.index("校准概率 Calibrated P(1/2/3)") == rows.index("概率 P(1/2/3)") + 1


def test_crop_exceedance_styles_from_text_booleans():
    crops = points([(X0, Y0), (X0 + 10, Y0)], sample_id=["C1", "C2"],
                   exceeds=pd.array([True, False], dtype="boolean"))
    cols = encode_columns("crops", display_frame("crops", crops))
    assert cols["exceeds"] == [True, False]


# Township labels ------------------------------------------------------------------------
def test_labels_sit_inside_their_township(parcels):
    from_parcels = township_label_points(parcels, None, parcels.crs)
    assert list(from_parcels["township"]) == sorted(["清水镇", EVIL])
    for name, point in zip(from_parcels["township"], from_parcels.geometry, strict=True):
        own = parcels[parcels["township"] == name].union_all()
        assert own.contains(point)  # on one of its own parcels
    towns = two_townships()
    from_polygons = township_label_points(parcels, towns.to_crs(4326), parcels.crs)
    for name, point in zip(from_polygons["township"], from_polygons.geometry, strict=True):
        poly = towns.loc[towns["township"] == name].geometry.iloc[0]
        assert poly.buffer(-50).contains(point)  # well inside, not on the boundary


def test_label_names_are_json_text(parcels, tmp_path):
    page = render(make_map(parcels, townships=two_townships()), tmp_path)
    assert "<img" not in page
    label = re.search(r'id="farmland_labels_\w+_data">(.*?)</script>', page).group(1)
    assert json.loads(label)["t"] == sorted(["清水镇", EVIL])
    assert "farmland.labels(" in page and '{"out":1,"in":3}' in page


def test_view_limits_are_set(parcels, tmp_path):
    page = render(make_map(parcels, tiles="osm"), tmp_path)
    assert ".setMaxZoom(19)" in page and ".getZoom() - 2)" in page and ".pad(1.0)" in page
    assert '"maxNativeZoom": 18' in page and '"maxZoom": 19' in page


# Tooltip text: rules, lab precision, plan reasons ---------------------------------------
def test_qa_flags_are_words_in_the_tooltip_as_in_the_report(parcels):
    from farmland.report.excel import display_value

    p = parcels.assign(qa_flags=["single_point_unit;suspect_value_inside", "", None,
                                 "unusable_samples_inside", "custom_flag", ""])
    shown = display_frame("parcels", p)["_qa_flags"].tolist()
    assert shown[0] == "仅一个点位 one sample only；含可疑数值点位 a suspect value inside"
    assert shown[1] is None and shown[2] is None
    assert shown[3] == "含不可用点位 unusable samples inside"
    assert shown[4] == "custom_flag"          # an unknown code as written
    assert display_value("qa_flags", "suspect_value_inside", "zh") == (
        "含可疑数值点位 a suspect value inside")


def test_coded_columns_read_as_words_in_tooltips():
    """Flags, crops and element lists in the report's bilingual words, not codes."""
    import geopandas as gpd
    from shapely.geometry import Point

    pts = [Point(0, 0), Point(1, 1)]
    flags = gpd.GeoDataFrame({"flag": ["uncertain_parcel", "empty_cell"]}, geometry=pts)
    assert display_frame("flags", flags)["flag"].tolist() == [
        "类别不确定图斑 uncertain parcel", "无土壤点位网格 cell without soil samples"]
    crops = gpd.GeoDataFrame({"sample_id": ["C1", "C2"], "crop": ["leafy_veg", "tea"]},
                             geometry=pts)
    assert display_frame("crops", crops)["crop"].tolist() == ["叶菜类蔬菜 leafy vegetables",
                                                              "tea"]   # unknown: as written
    samples = gpd.GeoDataFrame({"sample_id": ["S1", "S2"], "driving_element": ["cd", None]},
                               geometry=pts)
    assert display_frame("samples", samples)["driving_element"].tolist() == ["Cd 镉", None]
    sources = gpd.GeoDataFrame({"name": ["E01", "E02"], "metals": ["cd,pb,zn,as", ""]},
                               geometry=pts)
    assert display_frame("sources", sources)["metals"].tolist() == [
        "Cd 镉, Pb 铅, Zn 锌, As 砷", None]


def test_rule_codes_are_translated_like_the_report(parcels):
    from farmland.report.excel import display_value

    p = parcels.assign(rule=["interpolated:area_majority", "points:majority;crops:2->1",
                             "points:strict_override", "unclassified:too_few_samples",
                             "unclassified:too_far", "custom:rule"])
    shown = display_frame("parcels", p)["_rule"].tolist()
    assert shown[0] == "插值面积多数 interpolated area majority"
    assert shown[1] == "点位多数；农产品未超标 2→1 point majority; crops within limits 2→1"
    assert shown[3].startswith("点位过少未分类 unclassified: too few samples")
    assert shown[5] == "custom:rule"  # unknown codes are shown as written, once
    assert [display_value("rule", r, "zh") for r in p["rule"]] == shown
    assert display_value("rule", p["rule"].iloc[0], "en") == "interpolated area majority"


def test_values_keep_the_lab_precision():
    samples = points([(X0, Y0), (X0 + 10, Y0), (X0 + 20, Y0)], sample_id=["A", "B", "C"],
                     ph=[5.7, 6.03, 7.0], cd=[0.167, 0.01, 0.2], pb=[151.7, 36.9, 40.0],
                     hg=[1 / 3, 0.123456, 12.3456789])  # not lab-rounded (computed)
    disp = display_frame("samples", samples)
    layer = FeatureLayer.from_frame("samples", samples, samples.geometry.to_crs(4326).to_numpy())
    spec = json.loads(layer.spec_json)
    rows = {r["l"]: r for r in spec["tip"]}
    assert rows["pH"]["d"] == 2 and rows["Cd"]["d"] == 3 and rows["Pb"]["d"] == 1
    assert "d" not in rows["Hg"] and rows["Hg"]["u"] == "mg/kg"  # shown as written
    assert "auto" not in rows["Cd"] and "sig" not in rows["Hg"]
    cols = json.loads(layer.data_json)[0]["cols"]
    assert cols["pb"] == [151.7, 36.9, 40.0] and cols["hg"] == [0.333, 0.123, 12.3]
    assert lab_decimals(disp["cd"]) == 3 and lab_decimals(pd.Series([np.nan])) == 0
    assert round_significant(pd.Series([0.0, -0.012345, 98765.0])).tolist() == [
        0.0, -0.0123, 98800.0]


def test_plan_reasons_show_the_number_and_its_category():
    text, p = plan_reason("不确定性高: p(change)=0.07 / uncertain class, p(change)=0.07")
    assert (text, p) == ("类别概率不确定 uncertain class probabilities", "0.07 · 低 low")
    assert plan_reason("未分类图斑: p(change)=0.67 / unclassified parcel, p(change)=0.67")[1] == (
        "0.67 · 高 high")
    assert plan_reason("不确定性高: p(change)=0.10 / x")[1] == "0.10 · 中 medium"
    assert plan_reason("不确定性高: p(change)=0.30 / x")[1] == "0.30 · 高 high"
    coverage = "空间覆盖: 距最近点位 812 m / coverage gap, 812 m to the nearest sample"
    assert plan_reason(coverage) == (coverage, None) and plan_reason(None) == (None, None)
    plan = points([(X0, Y0)], point_id=["P1"], mode=["uncertainty"],
                  reason=["不确定性高: p(change)=0.07 / uncertain class, p(change)=0.07"])
    rows = [r["l"] for r in client_spec("plan", display_frame("plan", plan).columns)["tip"]]
    assert rows == ["点号 Point", "方式 Mode", "原因 Reason", "变化概率 P(change)"]
    assert display_frame("plan", plan)["mode"].iloc[0] == "不确定性 uncertainty"


# Change map (farmland diff) -------------------------------------------------------------
def test_flow_keys():
    assert [flow_key(f) for f in ("1→2", "2->3", "3 → 1", "2→unclassified", "未分类→3",
                                  "absent→1", "2→absent", "2→2", "x→y")] == [
        "1→2", "2→3", "3→1", "→U", "U→3", "+", "-", "=", "?"]
    assert flow_key(None, 1, 2) == "1→2" and flow_key(None, 2, pd.NA) == "→U"
    assert flow_key("", np.int8(3), 2.0) == "3→2"


def diff_changes() -> gpd.GeoDataFrame:
    """Four changed parcels of the map fixture, as 'farmland diff' writes changes.gpkg."""
    return gpd.GeoDataFrame(
        {"parcel_id": ["P1", "P3", "P4", EVIL], "class_a": pd.array([1, 2, 3, 2], "Int8"),
         "class_b": pd.array([2, 1, 2, None], "Int8"),
         "flow": ["1→2", "2→1", "3→2", "2→unclassified"],
         "cause": ["new soil samples", "crop adjustment", EVIL, "rule changed"],
         "cause_detail": ["TR0001 Cd 0.35", None, "", "points:majority -> unclassified:too_far"],
         "area_mu": [15.0, 15.0, 15.0, 15.0],
         "township": ["清水镇", "清水镇", "清水镇", EVIL]},
        geometry=[square(0, 0), square(2, 0), square(3, 0), square(4, 0)], crs="EPSG:4545")


def test_diff_map_colours_flows_with_a_legend(parcels, tmp_path):
    from farmland.maps.diff import make_diff_map

    fmap = make_diff_map(diff_changes(), parcels=parcels, townships=two_townships(),
                         subtitle="2023 → 2024")
    layers = layers_of(fmap)
    assert {k: v.n_features for k, v in layers.items()} == {
        "townships": 2, "parcels": 6, "changes": 4}
    cols = json.loads(layers["changes"].data_json)[0]["cols"]
    assert cols["_flow"][0] == "1→2（优先保护→安全利用 priority → safe use）"
    assert cols["_flow"][3].startswith("2→unclassified（变为未分类")
    spec = json.loads(layers["changes"].spec_json)
    assert spec["style"]["by"] == "_flow_key"
    assert spec["style"]["map"]["1→2"]["fillColor"] == "#fdae61"
    assert [r["l"] for r in spec["tip"]] == ["图斑 Parcel", "乡镇 Township", "变化 Flow",
                                             "原因 Cause", "详情 Detail", "面积 Area"]
    faded = json.loads(layers["parcels"].spec_json)["style"]["base"]
    assert faded["fillOpacity"] == 0.25
    page = render(fmap, tmp_path)
    assert "<img" not in page
    legend = re.search(r'<div class="fl-box fl-legend".*?</div>', page, re.DOTALL).group(0)
    for text in ("1→2</td><td>优先保护→安全利用</td><td>priority → safe use",
                 "2→1</td>", "3→2</td>", "变为未分类</td><td>became unclassified", "15.0 亩"):
        assert text in legend
    assert "2→3" not in legend  # only the flows present
    assert "变化图斑 4 changed parcels · 60.0 亩 mu" in page and "2023 → 2024" in page
    assert control_names(page)[-2:] == ["类别变化 Class changes", "乡镇名称 Township names"]


def test_diff_map_without_parcels_and_errors(tmp_path):
    from farmland.maps.diff import make_diff_map

    changes = diff_changes().drop(columns=["flow", "area_mu"])  # flows from the classes
    fmap = make_diff_map(changes)
    cols = json.loads(layers_of(fmap)["changes"].data_json)[0]["cols"]
    assert cols["_flow_key"] == ["1→2", "2→1", "3→2", "→U"]
    assert "变化图斑 4 changed parcels · 60.0 亩 mu" in render(fmap, tmp_path)
    with pytest.raises(CRSError, match="geographic CRS"):
        make_diff_map(changes.to_crs(4326))
    with pytest.raises(InputError, match="no changed parcel has a geometry"):
        make_diff_map(changes.iloc[:0])


def test_a_value_reported_not_detected_reads_nd_in_the_popup():
    """A sample's ``ND`` without a limit is kept without a value (censored): its metal row is
    empty, and the popup says so in a row of its own instead of reading as not measured."""
    samples = gpd.GeoDataFrame(
        {"sample_id": ["S1", "S2", "S3"], "point_class": [1, 1, 2],
         "cd": [0.2, np.nan, 0.4], "cd_censored": [False, True, False],
         "hg": [np.nan, np.nan, 0.1], "hg_censored": [True, True, False],
         "pb": [30.0, 31.0, np.nan], "pb_censored": [False, False, False]},  # S3: no Pb measured
        geometry=gpd.points_from_xy([X0, X0 + 10, X0 + 20], [Y0] * 3), crs="EPSG:4545")
    disp = display_frame("samples", samples)
    assert disp["_nd"].tolist() == ["Hg 汞", "Cd 镉, Hg 汞", None]
    cols = encode_columns("samples", disp)
    assert cols["hg"] == [None, None, 0.1] and cols["pb"][2] is None
    rows = [r["l"] for r in client_spec("samples", disp.columns)["tip"]]
    assert rows[-1] == "未检出 Not detected (ND)"
    # a layer without censored values has no such row
    assert "_nd" not in display_frame("samples", samples.assign(hg=0.1, cd=0.2,
                                                                 hg_censored=False,
                                                                 cd_censored=False))
