"""Specific-product strict-control zones (issue 18): who is in a zone, what is banned, the
notice table adds up, the KML is safe.

Scenes are 100 m squares in EPSG:4545 (15 亩 each unless ``area_mu`` is given); x runs
along the row, so a square at x 120–220 is 20 m from the one at 0–100.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from conftest import CRS, make_parcels

from farmland.control.export import KML_NS, write_zone_kml
from farmland.control.products import (
    NOTICE_COLUMNS,
    PARCEL_COLUMNS,
    PRODUCT_COLUMNS,
    ZONE_COLUMNS,
    product_names,
    product_zones,
)


def _parcels(xs, *, final_class=None, village="甲村", **columns):
    """100 m squares starting at each x (metres from the origin)."""
    boxes = [(x, 0.0, x + 100.0, 100.0) for x in xs]
    return make_parcels(boxes, final_class=final_class or [3] * len(xs), village=village,
                        driving_element="cd", **columns)


def _crops(rows, year=2023):
    """rows: (sample_id, crop, parcel_id, exceeds)."""
    ids, crops, pids, exceeds = zip(*rows, strict=True)
    return pd.DataFrame({"sample_id": list(ids), "crop": list(crops), "year": year,
                         "exceeds": pd.array(list(exceeds), dtype="boolean"),
                         "parcel_id": list(pids)})


def _decisions(result, zone_id="PZ001"):
    p = result.products[result.products["zone_id"] == zone_id]
    return dict(zip(p["product"], p["decision"], strict=True))


def test_parcels_20_m_apart_join_one_zone_and_50_m_apart_do_not():
    # P0 0–100, P1 120–220 (gap 20 m), P2 270–370 (gap 50 m from P1)
    result = product_zones(_parcels([0, 120, 270]), None, year=2023)
    zones = result.zones
    assert zones["zone_id"].tolist() == ["PZ001", "PZ002"]
    assert zones["n_parcels"].tolist() == [2, 1]
    assert zones["area_mu"].tolist() == pytest.approx([30.0, 15.0])
    assert result.parcels["zone_id"].tolist() == ["PZ001", "PZ001", "PZ002"]
    assert list(result.parcels.columns) == PARCEL_COLUMNS
    assert zones.crs == CRS and list(zones.columns) == ZONE_COLUMNS
    assert zones.geometry.area.tolist() == pytest.approx([20_000.0, 10_000.0])


def test_a_wider_gap_setting_joins_the_50_m_pair():
    result = product_zones(_parcels([0, 150]), None, year=2023, gap_m=60.0)
    assert result.zones["zone_id"].tolist() == ["PZ001"]


def test_only_class_3_parcels_are_members_and_area_is_the_net_area_not_the_geometry():
    parcels = _parcels([0, 100, 200], final_class=[3, 2, None], area_mu=[12.5, 15.0, 15.0])
    result = product_zones(parcels, None, year=2023)
    assert result.zones["area_mu"].tolist() == [12.5]
    assert result.parcels["parcel_id"].tolist() == ["P0"]


def test_a_group_spanning_two_villages_gives_two_zones_with_the_same_decisions():
    # P0 in 乙村 and P1 in 甲村 touch; the maize sample exceeding on P0 bans maize in both
    parcels = _parcels([0, 100], village=["乙村", "甲村"])
    crops = _crops([("C1", "maize", "P0", True), ("C2", "rice", "P1", False)])
    result = product_zones(parcels, crops, year=2023)
    zones = result.zones.set_index("zone_id")
    # ordered by township, then village (code point: 乙 U+4E59 before 甲 U+7532)
    assert zones["village"].to_dict() == {"PZ001": "乙村", "PZ002": "甲村"}
    assert _decisions(result, "PZ001") == _decisions(result, "PZ002") == {
        "rice": "banned", "maize": "banned", "leafy_veg": "banned"}
    assert zones.loc["PZ001", "controlled_products"] == "rice,maize,leafy_veg"
    assert zones.loc["PZ002", "n_parcels"] == 1 and zones.loc["PZ002", "area_mu"] == 15.0
    assert "C1" in zones.loc["PZ001", "basis"] and "C1" in zones.loc["PZ002", "basis"]


def test_rice_is_banned_by_default_without_samples():
    result = product_zones(_parcels([0]), None, year=2023)
    rows = result.products
    assert list(rows.columns) == PRODUCT_COLUMNS
    assert rows["product"].tolist() == ["rice", "leafy_veg"]
    assert rows["decision"].tolist() == ["banned", "banned"]
    assert rows["reason"].str.startswith("严格管控类默认禁产 banned by default on class-3 land").all()
    zone = result.zones.iloc[0]
    assert zone["controlled_products"] == "rice,leafy_veg"
    assert zone["controlled_zh"] == f"{product_names()['rice']}、{product_names()['leafy_veg']}"
    assert zone["allowed_products"] == ""


def test_rice_is_allowed_with_3_compliant_samples_and_banned_with_2():
    three = _crops([("C1", "rice", "P0", False), ("C2", "rice", "P0", False),
                    ("C3", "rice", "P1", False)])
    allowed = product_zones(_parcels([0, 100]), three, year=2023)
    row = allowed.products.set_index("product").loc["rice"]
    assert (row["decision"], row["n_samples"], row["n_exceeding"]) == ("allowed", 3, 0)
    assert row["reason"] == "样品达标 samples comply: 3/3"
    assert allowed.zones.iloc[0]["allowed_products"] == "rice"
    assert allowed.zones.iloc[0]["controlled_products"] == "leafy_veg"

    two = product_zones(_parcels([0, 100]), three.iloc[:2], year=2023)
    row = two.products.set_index("product").loc["rice"]
    assert (row["decision"], row["n_samples"]) == ("banned", 2)
    assert "少于 3 个" in row["reason"] and "fewer than 3" in row["reason"]


def test_samples_of_another_year_do_not_count_and_year_none_pools_them():
    crops = pd.concat([_crops([("C1", "rice", "P0", False), ("C2", "rice", "P0", False)]),
                       _crops([("C3", "rice", "P0", False)], year=2022)])
    assert _decisions(product_zones(_parcels([0]), crops, year=2023))["rice"] == "banned"
    assert _decisions(product_zones(_parcels([0]), crops, year=None))["rice"] == "allowed"


def test_maize_is_allowed_with_1_compliant_sample_and_banned_with_1_exceeding():
    ok = product_zones(_parcels([0]), _crops([("C1", "maize", "P0", False)]), year=2023)
    assert _decisions(ok)["maize"] == "allowed"
    bad = product_zones(_parcels([0]), _crops([("C1", "maize", "P0", True)]), year=2023)
    row = bad.products.set_index("product").loc["maize"]
    assert (row["decision"], row["n_exceeding"]) == ("banned", 1)
    assert row["reason"] == f"{product_names()['maize']} 超标样品 1 个 / 1 exceeding samples"
    assert row["product_zh"] == product_names()["maize"]


def test_samples_off_the_zone_or_ungraded_do_not_decide():
    # C1 lies on the class-2 neighbour, C2 has no verdict: maize is not listed at all
    parcels = _parcels([0, 100], final_class=[3, 2])
    crops = _crops([("C1", "maize", "P1", True), ("C2", "maize", "P0", None)])
    assert "maize" not in _decisions(product_zones(parcels, crops, year=2023))


def test_notice_rows_sum_exactly_to_the_class_3_area_with_a_total_row():
    # three separate parcels of 1.004 亩: rounded one by one they would give 3.00, not 3.01
    parcels = _parcels([0, 200, 400, 600], final_class=[3, 3, 3, 1],
                       village=["乙村", "甲村", "丙村", "甲村"],
                       area_mu=[1.004, 1.004, 1.004, 50.0])
    result = product_zones(parcels, None, year=2023)
    notice = result.notice()
    assert list(notice.columns) == NOTICE_COLUMNS
    area = notice["面积（亩） Area (mu)"]
    assert notice["村 Village"].tolist() == ["丙村", "乙村", "甲村", ""]  # sorted by village
    assert notice.iloc[-1]["乡镇 Township"] == "合计 Total"
    assert area.iloc[-1] == 3.01
    assert area.iloc[:-1].sum() == pytest.approx(3.01, abs=1e-12)
    assert sorted(area.iloc[:-1]) == [1.0, 1.0, 1.01]
    assert result.zones["area_mu"].sum() == pytest.approx(3.012)
    assert notice["管控农产品 Controlled products"].iloc[0].endswith("（rice,leafy_veg）")


def test_no_class_3_parcel_gives_empty_frames_with_columns_and_crs():
    result = product_zones(_parcels([0, 200], final_class=[1, 2]), None, year=2023)
    assert result.zones.empty and list(result.zones.columns) == ZONE_COLUMNS
    assert result.zones.crs == CRS
    assert result.products.empty and list(result.products.columns) == PRODUCT_COLUMNS
    assert result.parcels.empty and list(result.parcels.columns) == PARCEL_COLUMNS
    notice = result.notice()
    assert notice["乡镇 Township"].tolist() == ["合计 Total"]
    assert notice["面积（亩） Area (mu)"].tolist() == [0.0]


def test_kml_escapes_a_hostile_village_name_and_parses(tmp_path):
    name = "<script>alert(1)</script>"
    result = product_zones(_parcels([0], village=name), None, year=2023)
    path = write_zone_kml(result.zones, tmp_path / "zones.kml")
    raw = path.read_text(encoding="utf-8")
    assert "<script>" not in raw and "&lt;script&gt;" in raw
    ns = {"k": KML_NS}
    mark = ET.parse(path).getroot().find("k:Document/k:Placemark", ns)
    assert mark.find("k:name", ns).text == f"PZ001 {name}"
    assert "rice,leafy_veg" in mark.find("k:description", ns).text
    coords = mark.find(".//k:outerBoundaryIs/k:LinearRing/k:coordinates", ns).text.split()
    lon, lat = map(float, coords[0].split(","))
    assert 107.9 < lon < 108.1 and 27.0 < lat < 27.2  # EPSG:4545 x 500 km = CM 108°E


def test_kml_refuses_to_overwrite_unless_asked(tmp_path):
    from farmland.errors import OutputExistsError

    zones = product_zones(_parcels([0]), None, year=2023).zones
    write_zone_kml(zones, tmp_path / "z.kml")
    with pytest.raises(OutputExistsError):
        write_zone_kml(zones, tmp_path / "z.kml")
    write_zone_kml(zones, tmp_path / "z.kml", overwrite=True)
