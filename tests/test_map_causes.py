"""Where the contamination comes from, on the map (``farmland map --causes``, issue 17).

Fixture (EPSG:4545, conftest X0, Y0): seven 100 m squares of 15 亩 along x — P0–P3 touch
(x 0–400 m), P4, P5, P6 stand alone at x 500, 700, 900 m. P0–P2 lie in 清水镇, P3–P6 in
黄塘镇. Four clusters, as 'farmland sources' writes them:

- CL001 = P2 ∪ P3, 30 亩 (class 2 15, class 3 15), top candidate E01 (enterprise, 0.62);
- CL002 = P4, geogenic (0.45); CL003 = P5, enterprise E03 at 0.12 (< 0.2: unexplained);
- CL004 = P6, irrigation route E02~irrigation (0.30).

By hand, the legend: enterprise 30.0 亩 (40.0 %), irrigation 15.0 (20.0 %), geogenic 15.0
(20.0 %), unexplained 15.0 (20.0 %). Links: CL001→E01 rank 1 (0.62, solid), CL001→E02 rank 2
(0.21, dashed) and CL004→E02~irrigation rank 1 (0.30) are drawn; CL001→E03 rank 3 (0.05) and
CL003→E03 rank 1 (0.12) score below 0.2, CL002→E02 is rank 4: not drawn.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import X0, Y0, make_parcels
from test_map_browser import Page, browser  # noqa: F401  (the module's Chromium)
from test_maps import EVIL, control_names, layers_of, render

from farmland import classes as C
from farmland.io.write import write_gpkg_layers
from farmland.maps.causes import CAUSE_SPECS, CAUSES_TITLE, cause_areas
from farmland.maps.layers import _encode_lines, client_spec, display_frame, encode_layer
from farmland.maps.page import make_map
from farmland.vocabulary import CAUSE_TYPES, CONFIRM_MODES, LOOP_STATUSES_STYLE

CAUSE_ROW = re.compile(r'<tr class="fl-cause"><td><span class="fl-sw" style="background:'
                       r'(#[0-9a-f]{6})"></span></td><td>(.*?)</td><td>(.*?)</td>'
                       r'<td class="fl-num">(.*?)</td><td class="fl-num">(.*?)</td>')
BOXES = [(0, 0, 100, 100), (100, 0, 200, 100), (200, 0, 300, 100), (300, 0, 400, 100),
         (500, 0, 600, 100), (700, 0, 800, 100), (900, 0, 1000, 100)]


def parcels() -> gpd.GeoDataFrame:
    return make_parcels(BOXES, township=["清水镇"] * 3 + ["黄塘镇"] * 4,
                        final_class=[1, 1, 2, 3, 2, 2, 2])


def clusters(evidence: str = "距离 350 m, 方位 bearing 200°; 近场 near field 42 %") -> gpd.GeoDataFrame:
    """The clusters layer of sources.gpkg (the columns 'farmland sources' writes)."""
    p = parcels()
    geoms = [shapely.union_all(p.geometry.iloc[2:4].to_numpy()), *p.geometry.iloc[4:7]]
    n = 4
    return gpd.GeoDataFrame({
        "cluster_id": ["CL001", "CL002", "CL003", "CL004"],
        "township": ["清水镇", "黄塘镇", "黄塘镇", "黄塘镇"],
        "other_townships": ["黄塘镇", None, None, None],
        "area_mu": [30.0, 15.0, 15.0, 15.0], "area_class2_mu": [15.0, 15.0, 15.0, 15.0],
        "area_class3_mu": [15.0, 0.0, 0.0, 0.0], "area_hm2": [2.0, 1.0, 1.0, 1.0],
        "n_parcels": [2, 1, 1, 1], "n_samples": [4, 3, 1, 2],
        "driving_elements": ["cd,pb", "cd", "cd", "cd"],
        "dominant_elements": ["cd,pb", "cd", "cd", "cd"],
        "ph_median": [6.15, 7.9, 6.4, 5.8],
        "pi_median_cd": [1.84, 1.2, 1.1, 1.5], "pi_p90_cd": [3.2, 1.6, 1.3, 2.0],
        "pi_median_pb": [1.1, np.nan, np.nan, np.nan], "pi_p90_pb": [1.4, np.nan, np.nan, np.nan],
        **{f"conc_{el}": [0.62, 0.45, 0.4, 0.5] for el in ("cd",)},
        **{f"ef_{el}": [3.1, 2.2, 2.0, 2.5] for el in ("cd",)},
        "conc_pb": [88.0, 30.0, 31.0, 29.0], "ef_pb": [2.9, 1.0, 1.0, 1.0],
        "signature_basis": ["samples inside"] * 2 + ["3 nearest samples (too few inside)"] * 2,
        "sample_ids": ["S1,S2,S3,S4", "S5,S6,S7", "S8", "S9,S10"],
        "parcel_ids": ["P2,P3", "P4", "P5", "P6"], "zone_gap_m": [30.0] * n,
        "top_candidate_id": ["E01", "geogenic", "E03", "E02~irrigation"],
        "top_candidate_type": ["enterprise", "geogenic", "enterprise", "irrigation"],
        "top_name": ["鑫源冶炼厂", "地质高背景（岩溶） geogenic (karst parent material)",
                     "华达电镀厂", "宏力蓄电池厂（灌渠） via canal"],
        "top_score": [0.62, 0.45, 0.12, 0.30], "top_evidence": [evidence, "岩溶 karst 80 %",
                                                              "距离 4,000 m", "下游 2,000 m"],
        "top_margin": [0.41, 0.3, 0.07, 0.3],
    }, geometry=geoms, crs="EPSG:4545")


def enterprises() -> gpd.GeoDataFrame:
    xy = [(X0 + 250, Y0 + 400), (X0 + 950, Y0 + 600), (X0 + 650, Y0 - 400)]
    return gpd.GeoDataFrame({"source_id": ["E01", "E02", "E03"],
                             "name": ["鑫源冶炼厂", "宏力蓄电池厂", "华达电镀厂"],
                             "industry": ["冶炼", "蓄电池", "电镀"], "metals": ["cd,pb"] * 3},
                            geometry=shapely.points(xy), crs="EPSG:4545")


def links() -> gpd.GeoDataFrame:
    ent = enterprises().set_index("source_id").geometry
    rep = clusters().set_index("cluster_id").geometry.representative_point()
    rows = [("CL001", "E01", "enterprise", 1, 0.62), ("CL001", "E02", "enterprise", 2, 0.21),
            ("CL001", "E03", "enterprise", 3, 0.05), ("CL002", "E02", "enterprise", 4, 0.25),
            ("CL003", "E03", "enterprise", 1, 0.12),
            ("CL004", "E02~irrigation", "irrigation", 1, 0.30)]
    lines = [shapely.LineString([ent[c.split("~")[0]], rep[k]]) for k, c, *_ in rows]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["cluster_id", "candidate_id",
                                                        "candidate_type", "rank", "score"]),
                            geometry=lines, crs="EPSG:4545")


def confirm(reason: str = "E01→CL001 样带 250 m / transect 250 m from E01") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "point_id": ["C001", "C002", "C003"], "cluster_id": ["CL001", "CL004", "CL002"],
        "candidate_id": ["E01", "E02~irrigation", "geogenic"],
        "medium": ["表层土壤样带 topsoil transect", "灌溉水+底泥 irrigation water and sediment",
                   "土壤剖面+母质 soil profile and parent material"],
        "mode": ["soil", "water", "profile"], "reason": [reason, "排口下游 500 m", "剖面"],
        "priority": [1, 4, 2], "parcel_id": ["P2", "", "P4"],
        "township": ["清水镇", "", "黄塘镇"]},
        geometry=shapely.points([(X0 + 250, Y0 + 50), (X0 + 950, Y0 + 300),
                                 (X0 + 550, Y0 + 50)]), crs="EPSG:4545")


def hotspots() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "sample_id": ["S1", "S2", "S3", "S4"], "element": ["cd", "cd", "pb", "cd"],
        "value": [0.62, 0.3, 88.0, 0.1], "gi_z": [3.21, 0.4, 2.8, -2.6],
        "gi_p": [0.001, 0.6, 0.004, 0.009], "gi_q": [0.012, 0.7, 0.03, 0.04],
        "hotspot": ["hot", "ns", "hot", "cold"], "moran_i": [0.8, 0.1, 0.6, 0.5],
        "moran_p": [0.002, 0.5, 0.01, 0.02], "moran_q": [0.02, 0.6, 0.04, 0.05],
        "quadrant": ["HH", "ns", "HH", "LL"]},
        geometry=shapely.points([(X0 + 250, Y0 + 50), (X0 + 350, Y0 + 50),
                                 (X0 + 260, Y0 + 40), (X0 + 50, Y0 + 50)]), crs="EPSG:4545")


def layers(**kw) -> dict[str, gpd.GeoDataFrame]:
    out = {"clusters": clusters(), "candidate_links": links(), "confirm": confirm(),
           "hotspots": hotspots()}
    return {**out, **kw}


def _values(column: pd.Series) -> list:
    return [None if not isinstance(v, str) and pd.isna(v) else v for v in column]


# Legend ------------------------------------------------------------------------------
def test_legend_gives_the_area_of_each_cause_type(tmp_path):
    fmap = make_map(parcels(), **layers(), sources=enterprises(), title=CAUSES_TITLE)
    page = render(fmap, tmp_path)
    assert CAUSE_ROW.findall(page) == [
        ("#c2a5cf", "企业近场", "enterprise near field (1)", "30.0 亩", "40.0 %"),
        ("#92c5de", "灌溉水", "irrigation water (1)", "15.0 亩", "20.0 %"),
        ("#dfc27d", "地质高背景", "geogenic (parent material) (1)", "15.0 亩", "20.0 %"),
        ("#d9d9d9", "未明", "unexplained (1)", "15.0 亩", "20.0 %")]
    assert control_names(page) == [
        "耕地图斑 Parcels", "污染聚集区 Contaminated-land clusters", "候选来源连线 Candidate links",
        "镉热点 Cd hot spots (Gi*)", "污染源 Pollution sources", "核实采样点 Confirmation samples",
        "乡镇名称 Township names"]
    assert "首位候选（得分 ≥ 0.2）" in page and "ranks 2–3 (score ≥ 0.2)" in page
    for zh, en, n in (("表层土壤样带", "topsoil transect", 1), ("灌溉水+底泥",
                      "irrigation water and sediment", 1), ("土壤剖面+母质",
                                                            "soil profile and parent material", 1)):
        assert f"<td>{zh}</td><td colspan=\"2\">{en}</td><td class=\"fl-num\">{n} 点</td>" in page
    assert CAUSES_TITLE in page


def test_cause_colours_are_apart_from_classes_and_loop_statuses():
    fills = [fill for _, _, fill, _ in CAUSE_TYPES.values()]
    lines = [line for *_, line in CAUSE_TYPES.values()]
    assert len(set(fills)) == 4 and len(set(lines)) == 4
    taken = set(C.PALETTE.values()) | {c for *_, c in LOOP_STATUSES_STYLE.values()}
    assert not (set(fills) | set(lines)) & taken
    assert len({c for *_, c in CONFIRM_MODES.values()}) == 4


def test_cause_areas_count_low_scores_and_unknown_types_as_unexplained():
    table = clusters().assign(top_candidate_type=["enterprise", "geogenic", None, "other"],
                              top_score=[0.62, 0.19999, 0.9, 0.5])
    rows = {k: (n, mu) for k, _, _, _, n, mu in cause_areas(table)}
    assert rows == {"enterprise": (1, 30.0), "irrigation": (0, 0.0), "geogenic": (0, 0.0),
                    "unexplained": (3, 45.0)}


# Tooltips ----------------------------------------------------------------------------
def test_cluster_tooltip_shows_area_elements_candidate_and_evidence():
    table = clusters().assign(factor_1_share=[0.62, np.nan, 0.1, 0.3],
                              factor_2_share=[0.38, np.nan, 0.9, 0.7])
    disp = display_frame("clusters", table)
    assert disp["_cause"].tolist() == ["enterprise", "geogenic", "unexplained", "irrigation"]
    assert disp["_townships"].tolist() == ["清水镇 (+黄塘镇)", "黄塘镇", "黄塘镇", "黄塘镇"]
    assert disp["_dominant"].tolist()[:2] == ["Cd 镉, Pb 铅", "Cd 镉"]
    assert disp["_top"].tolist() == ["鑫源冶炼厂 (E01)",
                                     "地质高背景（岩溶） geogenic (karst parent material)",
                                     "华达电镀厂 (E03)", "宏力蓄电池厂（灌渠） via canal (E02 经灌溉渠 via irrigation)"]
    assert disp["_top_type"].tolist() == [
        "企业近场 enterprise near field", "地质高背景 geogenic (parent material)",
        "企业近场 enterprise near field（得分 < 0.2，未明 score below 0.2: unexplained）",
        "灌溉水 irrigation water"]
    assert _values(disp["_factors"]) == ["1 62 % · 2 38 %", None, "1 10 % · 2 90 %",
                                         "1 30 % · 2 70 %"]
    tip = {row["l"]: row for row in client_spec("clusters", disp.columns)["tip"]}
    assert tip["安全利用类 / 严格管控类 Class 2 / class 3"]["c"] == ["area_class2_mu",
                                                                 "area_class3_mu"]
    assert tip["Cd Pᵢ 中位数 / P90 median / P90"] == {
        "l": "Cd Pᵢ 中位数 / P90 median / P90", "c": ["pi_median_cd", "pi_p90_cd"], "d": 2}
    assert tip["得分 / 领先 Score / margin"]["c"] == ["top_score", "top_margin"]
    assert tip["依据 Evidence"]["c"] == ["top_evidence"]
    assert "因子贡献 Factor shares" not in {r["l"] for r in client_spec(
        "clusters", display_frame("clusters", clusters()).columns)["tip"]}


def test_links_keep_ranks_one_to_three_with_a_credible_score(tmp_path):
    fmap = make_map(parcels(), candidate_links=links(), clusters=clusters())
    layer = layers_of(fmap)["candidate_links"]
    assert layer.n_features == 3
    page = render(fmap, tmp_path)
    assert '"_link":["CL001 → E01","CL001 → E02","CL004 → E02 经灌溉渠 via irrigation"]' in page
    disp = display_frame("candidate_links", links())
    assert disp["_style"].tolist()[:2] == ["enterprise:1", "enterprise:2"]
    styles = CAUSE_SPECS["candidate_links"].styles
    assert styles["enterprise:1"] == {"color": "#762a83", "weight": 1.8}
    assert styles["irrigation:2"] == {"color": "#1f78b4", "weight": 1.2, "dashArray": "5 4"}
    assert disp["_type"].tolist()[-1] == "灌溉水 irrigation water"


def test_hotspots_are_the_cd_hot_spots_only():
    fmap = make_map(parcels(), hotspots=hotspots())
    layer = layers_of(fmap)["hotspots"]
    assert layer.n_features == 1 and '"sample_id":["S1"]' in layer.data_json
    assert '"gi_q":[0.012]' in layer.data_json and '"_element":["Cd 镉"]' in layer.data_json


def test_confirm_points_by_mode_with_reason_and_parcel():
    disp = display_frame("confirm", confirm().assign(medium=["表层土壤样带 topsoil transect",
                                                             None, "剖面"]))
    assert disp["medium"].tolist() == ["表层土壤样带 topsoil transect",
                                       "灌溉水+底泥 irrigation water and sediment", "剖面"]
    assert disp["mode"].tolist() == ["soil", "water", "profile"]  # the style key
    labels = [r["l"] for r in client_spec("confirm", disp.columns)["tip"]]
    assert labels == ["点号 Point", "聚集区 Cluster", "候选 Candidate", "介质 Medium",
                      "原因 Reason", "优先级 Priority", "图斑 Parcel", "乡镇 Township"]
    assert CAUSE_SPECS["confirm"].styles["water"] == {"fillColor": "#08519c"}


def test_attribute_text_of_the_causes_never_becomes_markup(tmp_path):
    evil = "<script>alert(1)</script>" + EVIL
    table = clusters(evidence=evil).assign(top_name=[evil] * 4, township=[evil] * 4)
    page = render(make_map(parcels(), **layers(clusters=table, confirm=confirm(reason=evil))),
                  tmp_path)
    assert "<script>alert(1)" not in page and "<img" not in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)" \
           "\\u003e" in page


# Geometry ----------------------------------------------------------------------------
def _decode_lines(part: dict) -> list:
    xy = np.cumsum(np.asarray(part["xy"]).reshape(-1, 2), axis=0) / part["s"]
    lines, k = [], 0
    for n in part["vl"]:
        lines.append(xy[k:k + n].tolist())
        k += n
    out, j = [], 0
    for n in part["fl"]:
        out.append(lines[j:j + n])
        j += n
    return out


def test_line_encoding_round_trip():
    geoms = np.array([shapely.LineString([(109.1, 24.5), (109.2, 24.6), (109.3, 24.5)]),
                      shapely.MultiLineString([[(109.0, 24.0), (109.0, 24.1)],
                                               [(109.5, 24.5), (109.6, 24.6)]])], dtype=object)
    part, rows = _encode_lines(geoms)
    assert part["kind"] == "line" and part["n"] == 2 and rows.tolist() == [0, 1]
    assert part["vl"] == [3, 2, 2] and part["fl"] == [1, 2]
    got = _decode_lines(part)
    assert np.array(got[0][0]) == pytest.approx(np.array([[109.1, 24.5], [109.2, 24.6],
                                                          [109.3, 24.5]]))
    assert np.array(got[1][1]) == pytest.approx(np.array([[109.5, 24.5], [109.6, 24.6]]))
    mixed = np.array([geoms[0], shapely.Point(109, 24)], dtype=object)
    parts = encode_layer("candidate_links", pd.DataFrame({"rank": [1, 2]}), mixed)
    assert [p["kind"] for p in parts] == ["point", "line"]
    assert parts[1]["cols"]["rank"] == [1] and parts[0]["cols"]["rank"] == [2]


def test_township_map_shows_the_part_of_a_cluster_inside_it(tmp_path):
    towns = gpd.GeoDataFrame({"township": ["清水镇", "黄塘镇"]}, geometry=[
        shapely.box(X0 - 50, Y0 - 50, X0 + 300, Y0 + 150),
        shapely.box(X0 + 300, Y0 - 50, X0 + 1050, Y0 + 150)], crs="EPSG:4545")
    fmap = make_map(parcels(), **layers(), townships=towns, township="清水镇")
    assert layers_of(fmap)["clusters"].n_features == 1  # CL001, cut to its 清水镇 half
    rows = CAUSE_ROW.findall(render(fmap, tmp_path))
    assert [r[3] for r in rows] == ["15.0 亩", "0.0 亩", "0.0 亩", "0.0 亩"]
    assert '"area_mu":[30.0]' in layers_of(fmap)["clusters"].data_json  # tooltip: the cluster


# farmland map --causes ---------------------------------------------------------------
@pytest.fixture
def run(tmp_path):
    """A run folder: classification.gpkg and the sources.gpkg of 'farmland sources'."""
    folder = tmp_path / "2023"
    folder.mkdir()
    write_gpkg_layers(folder / "classification.gpkg", {"parcels": parcels()})
    write_gpkg_layers(folder / "sources.gpkg", layers())
    return folder


def test_cli_causes_draws_the_cause_layers_by_default(cli, run, tmp_path):
    out = tmp_path / "causes.html"
    src = tmp_path / "enterprises.geojson"
    enterprises().to_crs(4326).to_file(src)
    result = cli("map", run / "classification.gpkg", "--causes", run / "sources.gpkg",
                 "--sources", src, "-o", out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert control_names(page) == [
        "耕地图斑 Parcels", "污染聚集区 Contaminated-land clusters", "候选来源连线 Candidate links",
        "镉热点 Cd hot spots (Gi*)", "污染源 Pollution sources", "核实采样点 Confirmation samples",
        "乡镇名称 Township names"]
    assert f"<title>{CAUSES_TITLE}</title>" in page and "30.0 亩" in page
    # the output folder works too; --layers picks layers; no hotspots layer is no error
    write_gpkg_layers(run / "sources.gpkg", layers(), overwrite=True)
    only = tmp_path / "only"
    only.mkdir()
    write_gpkg_layers(only / "sources.gpkg", {k: v for k, v in layers().items()
                                              if k != "hotspots"})
    result = cli("map", run / "classification.gpkg", "--causes", only, "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "镉热点 Cd hot spots (Gi*)" not in control_names(out.read_text(encoding="utf-8"))


def test_cli_cause_layers_found_beside_the_classification(cli, run, tmp_path):
    out = tmp_path / "m.html"
    result = cli("map", run / "classification.gpkg", "--layers", "parcels,clusters", "-o", out)
    assert result.exit_code == 0, result.output
    names = control_names(out.read_text(encoding="utf-8"))
    assert names == ["耕地图斑 Parcels", "污染聚集区 Contaminated-land clusters",
                     "乡镇名称 Township names"]
    result = cli("map", run / "classification.gpkg", "-o", out, "--overwrite")  # not asked for
    assert "污染聚集区 Contaminated-land clusters" not in control_names(
        out.read_text(encoding="utf-8"))


def _one_line_error(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = [x for x in result.output.strip().splitlines() if not x.startswith("INFO ")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_cli_refuses_a_file_that_is_not_a_sources_gpkg(cli, run, tmp_path):
    out = tmp_path / "m.html"
    gpkg = run / "classification.gpkg"
    csv = tmp_path / "clusters.csv"
    csv.write_text("cluster_id,area_mu\nCL001,30\n", encoding="utf-8")
    line = _one_line_error(cli("map", gpkg, "--causes", csv, "-o", out))
    assert "clusters.csv" in line and "not the sources.gpkg of 'farmland sources'" in line
    line = _one_line_error(cli("map", gpkg, "--causes", gpkg, "-o", out))
    assert "classification.gpkg" in line and "no layer 'clusters'" in line and "parcels" in line
    no_confirm = tmp_path / "no_confirm.gpkg"
    write_gpkg_layers(no_confirm, {"clusters": clusters(), "candidate_links": links()})
    assert "no layer 'confirm'" in _one_line_error(cli("map", gpkg, "--causes", no_confirm,
                                                       "-o", out))
    no_score = tmp_path / "no_score.gpkg"
    write_gpkg_layers(no_score, layers(clusters=clusters().drop(columns="top_score")))
    line = _one_line_error(cli("map", gpkg, "--causes", no_score, "-o", out))
    assert "no_score.gpkg" in line and "no 'top_score' column" in line
    assert not out.exists()


# In headless Chromium (skipped without it, like test_map_browser.py) -------------------
def test_causes_map_in_the_browser_draws_links_and_keeps_text_as_text(browser, tmp_path):  # noqa: F811
    evil = "<script>alert(1)</script>" + EVIL
    fmap = make_map(parcels(), **layers(clusters=clusters(evidence=evil)),
                    sources=enterprises(), title=CAUSES_TITLE)
    p = Page(browser, render_path(fmap, tmp_path))
    try:
        assert p.page.evaluate("farmland.counts") == {
            "parcels": 7, "clusters": 4, "candidate_links": 3, "hotspots": 1, "sources": 3,
            "confirm": 3, "labels": 2}
        dashed = p.page.evaluate("farmland.layers.candidate_links.getLayers()"
                                 ".map(l => l.options.dashArray || '')")
        assert dashed == ["", "5 4", ""]
        link = "聚集区 → 候选 Cluster → candidate: CL004 → E02 经灌溉渠 via irrigation"
        for (x, y), want in (((950, 200), link), ((380, 85), "依据 Evidence: " + evil)):
            px = p.page.evaluate(f"""(() => {{
                const pt = farmland.map.latLngToContainerPoint({_latlng(x, y)});
                const r = farmland.map.getContainer().getBoundingClientRect();
                return [pt.x + r.left, pt.y + r.top]; }})()""")
            p.page.mouse.move(px[0] - 3, px[1] - 3)
            p.page.wait_for_timeout(60)  # Leaflet drops hover events within 32 ms of the last
            p.page.mouse.move(px[0], px[1])
            p.page.wait_for_function(
                "(w) => { const t = document.querySelector('.leaflet-tooltip');"
                " return t && t.textContent.includes(w); }", arg=want, timeout=3_000)
        legend = p.page.inner_text("#fl-legend")
        assert "企业近场\tenterprise near field (1)\t30.0 亩\t40.0 %" in legend
        assert p.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert p.errors == [] and p.requests == [] and p.dialogs == []
    finally:
        p.page.close()


def _latlng(x: float, y: float) -> str:
    """JS ``[lat, lon]`` of the EPSG:4545 point (X0 + x, Y0 + y)."""
    pt = gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y)], crs="EPSG:4545").to_crs(4326).iloc[0]
    return f"[{pt.y}, {pt.x}]"


def render_path(fmap, tmp_path):
    from farmland.maps.page import save_map

    return save_map(fmap, tmp_path / "causes.html")
