"""The province overview map (farmland map --province) and clustered point layers.

Fixture: two counties (township codes 450101…, 450102…), 100 m × 100 m parcels of 15 亩:

=====  ==========  ========  =======  =========  =================================
county township    parcel    class    rule       measure (2023)
=====  ==========  ========  =======  =========  =================================
450101 甲镇        A1        1        points     —
450101 甲镇        A2        1        interp.    —
450101 甲镇        A3        2        interp.    safe use
450101 甲镇        A4        3        interp.    strict control
450101 EVIL        A5        2        points     safe use
450101 EVIL        A6        2        interp.    —
450102 乙镇        B1–B3     1        interp.    —
450102 乙镇        B4        2        interp.    —
=====  ==========  ========  =======  =========  =================================

Rates in ``measures_only`` accounting (a measure counts fully):
450101 = (15 + 15 + 15) / (45 + 15) = 75 %; 甲镇 = 30 / 30 = 100 %; EVIL = 15 / 30 = 50 %;
450102 = 0 / 15 = 0 %; all = 45 / 75 = 60 %.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from farmland.maps import assets as map_assets
from farmland.maps import layers as map_layers
from farmland.maps.layers import CLUSTER_MIN_POINTS, FeatureLayer
from farmland.maps.overview import make_overview, province_units, write_province_maps
from farmland.maps.page import make_map, save_map
from farmland.maps.units import county_keys, n_counties

X0, Y0 = 620_000.0, 2_722_000.0
EVIL = "<img src=x onerror=alert(1)>"
RATE = {"year": 2023, "target": 0.91, "accounting": "measures_only"}


def cell(i: int, j: int = 0) -> shapely.Polygon:
    return shapely.box(X0 + i * 100, Y0 + j * 100, X0 + (i + 1) * 100, Y0 + (j + 1) * 100)


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    rows = [("A1", "甲镇", "450101001", 1, "points:majority", 0),
            ("A2", "甲镇", "450101001", 1, "interpolated:area_majority", 1),
            ("A3", "甲镇", "450101001", 2, "interpolated:area_majority", 2),
            ("A4", "甲镇", "450101001", 3, "interpolated:area_majority", 3),
            ("A5", EVIL, "450101002", 2, "points:majority", 4),
            ("A6", EVIL, "450101002", 2, "interpolated:area_majority", 5),
            ("B1", "乙镇", "450102001", 1, "interpolated:area_majority", 20),
            ("B2", "乙镇", "450102001", 1, "interpolated:area_majority", 21),
            ("B3", "乙镇", "450102001", 1, "interpolated:area_majority", 22),
            ("B4", "乙镇", "450102001", 2, "interpolated:area_majority", 23)]
    frame = gpd.GeoDataFrame(
        {"parcel_id": [r[0] for r in rows], "township": [r[1] for r in rows],
         "township_code": [r[2] for r in rows],
         "final_class": pd.array([r[3] for r in rows], dtype="Int8"),
         "rule": [r[4] for r in rows], "area_mu": 15.0,
         "n_samples": [1 if r[4].startswith("points") else 0 for r in rows]},
        geometry=[cell(r[5]) for r in rows], crs="EPSG:4545")
    return frame


@pytest.fixture
def measures() -> pd.DataFrame:
    return pd.DataFrame({"parcel_id": ["A3", "A4", "A5"],
                         "measure_type": ["lime", "fallow", "lime"],
                         "measure_class": ["safe_use", "strict_control", "safe_use"],
                         "year": 2023})


def test_county_from_township_code_or_county_column(parcels):
    assert list(county_keys(parcels)) == ["450101"] * 6 + ["450102"] * 4
    assert n_counties(parcels) == 2
    assert county_keys(parcels.drop(columns="township_code")) is None
    assert n_counties(parcels.assign(county="一县")) == 1


def test_units_show_class_shares_rates_and_evidence(parcels, measures):
    units = province_units(parcels, measures=measures, **RATE)
    c = units.counties.set_index("county")
    assert c.loc["450101", ["n_parcels", "area_mu"]].tolist() == [6, 90.0]
    assert c.loc["450101", ["share_1", "share_2", "share_3", "share_na"]].tolist() == \
        pytest.approx([100 / 3, 50.0, 100 / 6, 0.0])
    assert c.loc["450102", ["share_1", "share_2", "share_3"]].tolist() == \
        pytest.approx([75.0, 25.0, 0.0])
    assert c.loc["450101", "rate_pct"] == pytest.approx(75.0)
    assert c.loc["450101", "gap_mu"] == pytest.approx(0.91 * 60 - 45)
    assert c.loc["450102", "rate_pct"] == pytest.approx(0.0)
    assert c.loc["450101", "own_pct"] == pytest.approx(100 / 3)  # A1, A5: 30 of 90 亩
    assert c.loc["450101", "n_samples"] == 2 and c.loc["450101", "density"] == \
        pytest.approx(1000 * 2 / 90)
    t = units.townships.set_index("township")
    assert t.loc["甲镇", ["share_1", "share_2", "share_3"]].tolist() == \
        pytest.approx([50.0, 25.0, 25.0])
    assert t.loc["甲镇", "rate_pct"] == pytest.approx(100.0)
    assert t.loc[EVIL, "rate_pct"] == pytest.approx(50.0)
    assert t.loc[EVIL, "code"] == "450101002" and t.loc[EVIL, "county"] == "450101"
    assert float(units.total["rate"]) == pytest.approx(0.6)
    # outlines: the township polygons hold their parcels and do not overlap
    for name, ids in (("甲镇", ["A1", "A4"]), (EVIL, ["A5", "A6"]), ("乙镇", ["B1", "B4"])):
        inside = parcels[parcels["parcel_id"].isin(ids)].geometry.centroid
        assert t.loc[name, "geometry"].contains(inside).all()
    geoms = units.townships.geometry.to_numpy()
    assert shapely.area(shapely.intersection(geoms[0], geoms[1])) < 1.0


def test_overview_page_links_counties_and_keeps_names_as_text(parcels, measures, tmp_path):
    done = write_province_maps(parcels, tmp_path / "prov.html", measures=measures,
                               rate_options=RATE, title="全省 " + EVIL)
    assert sorted(done.counties) == ["450101", "450102"]
    assert done.counties["450101"] == tmp_path / "prov_counties" / "450101.html"
    assert all(p.is_file() for p in done.counties.values())
    page = done.overview.read_text(encoding="utf-8")
    assert EVIL not in page  # title escaped, names inside JSON with \u003c
    assert "全省 &lt;img src=x onerror=alert(1)&gt;" in page
    assert '<a href="prov_counties/450101.html">450101</a>' in page
    data = _layer_data(page, "township_rate")
    cols = data["cols"]
    names = _values(cols["township"])
    assert names == ["甲镇", EVIL, "乙镇"] or sorted(names) == sorted(["甲镇", EVIL, "乙镇"])
    by_name = dict(zip(names, cols["rate_pct"], strict=True))
    assert by_name == {"甲镇": 100.0, EVIL: 50.0, "乙镇": 0.0}
    assert dict(zip(names, _values(cols["_bin_rate"]), strict=True)) == {
        "甲镇": "met", EVIL: "low", "乙镇": "low"}
    assert set(_values(cols["_href"])) == {"prov_counties/450101.html",
                                           "prov_counties/450102.html"}
    county = _layer_data(page, "county_class")["cols"]
    assert dict(zip(_values(county["code"]), _values(county["_bin_class"]), strict=True)) == {
        "450101": "b4", "450102": "b2"}  # class 2+3: 66.7 % (≥ 50), 25 % (15–30)
    back = done.counties["450101"].read_text(encoding="utf-8")
    assert 'href="../prov.html"' in back and "全县总览 County overview" in back
    assert "乡镇边界 Townships" in back  # dissolved township outlines on the county page


def test_overview_without_measures_has_no_rate(parcels, tmp_path):
    units = province_units(parcels)
    assert units.total is None and units.counties["rate_pct"].isna().all()
    page = save_map(make_overview(units), tmp_path / "o.html").read_text(encoding="utf-8")
    assert "无措施台账" in page
    assert _values(_layer_data(page, "county_rate")["cols"]["_bin_rate"]) == ["none", "none"]


def test_single_page_of_many_counties_is_not_called_a_county_overview(parcels, tmp_path):
    page = save_map(make_map(parcels), tmp_path / "m.html").read_text(encoding="utf-8")
    assert "2 县总览 Overview of 2 counties" in page and "County overview" not in page


def _points(n: int) -> gpd.GeoDataFrame:
    xy = [(X0 + 10 + (k % 200) * 5, Y0 + 10 + (k // 200) * 5) for k in range(n)]
    return gpd.GeoDataFrame({"sample_id": [f"S{k}" for k in range(n)], "point_class": 1},
                            geometry=gpd.points_from_xy(*zip(*xy, strict=True)),
                            crs="EPSG:4545")


def test_dense_point_layer_is_clustered_above_the_threshold(parcels, tmp_path):
    many = make_map(parcels, samples=_points(CLUSTER_MIN_POINTS + 1))
    few = make_map(parcels, samples=_points(CLUSTER_MIN_POINTS))
    layer = {c.key: c for c in many._children.values() if isinstance(c, FeatureLayer)}
    assert layer["samples"].clustered
    assert json.loads(layer["samples"].spec_json)["cluster"] == map_layers.CLUSTER_OPTIONS
    assert not [c for c in few._children.values() if isinstance(c, FeatureLayer)
                and c.clustered]
    page = save_map(many, tmp_path / "many.html").read_text(encoding="utf-8")
    plain = save_map(few, tmp_path / "few.html").read_text(encoding="utf-8")
    lib = "L.MarkerClusterGroup=L.FeatureGroup.extend"  # the inlined Leaflet.markercluster
    assert lib in page and lib not in plain
    assert not re.search(r"<script[^>]*\bsrc=|<link\b", page)  # inlined, nothing to fetch
    assert set(re.findall(r"https?://[^\s\"'()<>\\]+", page)) <= map_assets.LEAFLET_INERT_URLS


def _layer_data(page: str, key: str) -> dict:
    """The first encoded part of the layer ``key`` in a saved page."""
    name = re.search(rf'farmland\.layer\("{key}",.*?farmland\.data\("([^"]+)"\)', page,
                     re.DOTALL).group(1)
    text = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', page,
                     re.DOTALL).group(1)
    return json.loads(text)[0]


def _values(col) -> list:
    return [col["d"][i] for i in col["i"]] if isinstance(col, dict) else list(col)


def test_county_file_names_are_safe():
    from farmland.maps.overview import county_file

    assert county_file("450101") == "450101.html"
    assert county_file("../x/清水县") == "x_清水县.html"
    assert county_file("???") == "county.html"


def test_county_pages_in_two_processes_are_the_same_bytes(parcels, measures, tmp_path):
    one = write_province_maps(parcels, tmp_path / "a" / "p.html", measures=measures,
                              rate_options=RATE)
    two = write_province_maps(parcels, tmp_path / "b" / "p.html", measures=measures,
                              rate_options=RATE, workers=2)
    assert one.overview.read_bytes() == two.overview.read_bytes()
    for key, path in one.counties.items():
        assert path.read_bytes() == two.counties[key].read_bytes()


def test_cli_province_writes_overview_and_county_maps(cli, parcels, measures, tmp_path):
    gpkg = tmp_path / "classification.gpkg"
    parcels.to_file(gpkg, layer="parcels")
    ledger = tmp_path / "measures.csv"
    measures.to_csv(ledger, index=False)
    out = tmp_path / "maps" / "prov.html"
    single = cli("map", gpkg, "-o", tmp_path / "one.html")
    assert single.exit_code == 0, single.output
    assert "the parcels span 2 counties; --province" in single.output
    done = cli("map", gpkg, "-o", out, "--province", "--measures", ledger)
    assert done.exit_code == 0, done.output
    assert "2 county maps in" in done.output
    assert (tmp_path / "maps" / "prov_counties" / "450102.html").is_file()
    cols = _layer_data(out.read_text(encoding="utf-8"), "county_rate")["cols"]
    # the built-in rules account officially: without crop data a measure counts nothing
    assert dict(zip(_values(cols["code"]), cols["rate_pct"], strict=True)) == {
        "450101": 25.0, "450102": 0.0}  # only the strict-control measure of A4: 15 / 60
    again = cli("map", gpkg, "-o", out, "--province")
    assert again.exit_code != 0 and "exists" in again.output
