"""Grain-lot screening (issue 18): each risk rule with its reason, ledger links, warnings.

Scene (100 m squares in EPSG:4545, 15 亩 each, township T1):

- P0 甲村 class 3, driving element pb; zone PZ001: rice and leafy_veg banned by default,
  maize allowed (one compliant maize sample M1);
- P1 甲村 class 2, an exceeding rice sample R9 (Cd over its limit);
- P2 乙村 class 1, no samples (300 m away from P0: not in any zone).
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from conftest import make_parcels

from farmland.control.lots import LOT_COLUMNS, TESTS, lot_table, screen_lots
from farmland.control.products import product_zones

HIGH, MEDIUM, LOW = "high 高", "medium 中", "low 低"


@pytest.fixture(scope="module")
def scene():
    parcels = make_parcels([(0, 0, 100, 100), (100, 0, 200, 100), (400, 0, 500, 100)],
                           final_class=[3, 2, 1], village=["甲村", "甲村", "乙村"],
                           driving_element=["pb", None, None])
    crops = pd.DataFrame({
        "sample_id": ["M1", "R9", "R8"], "crop": ["maize", "rice", "rice"],
        "year": [2023, 2023, 2022], "exceeds": [False, True, True],
        "parcel_id": ["P0", "P1", "P2"], "grade_cd": [1, 3, 3], "grade_pb": [1, 1, 1]})
    zones = product_zones(parcels, crops, year=2023)
    return parcels, crops, zones


def _lots(*rows):
    """rows: (lot_id, crop_code, village, parcel ids)."""
    return pd.DataFrame({
        "lot_id": [r[0] for r in rows], "crop": [r[1] or "荞麦" for r in rows],
        "crop_code": [r[1] for r in rows], "tonnage_t": [12.5] * len(rows),
        "township": ["T1"] * len(rows), "village": [r[2] for r in rows],
        "parcel_ids": [tuple(r[3]) for r in rows], "buyer": ["粮库"] * len(rows),
        "date": pd.NaT, "row": [str(i + 2) for i in range(len(rows))]})


def _screen(scene, *rows, ledger=None, year=2023):
    parcels, crops, zones = scene
    return screen_lots(_lots(*rows), parcels, zones, crops, year=year,
                       ledger=ledger).set_index("lot_id")


def test_zones_of_the_scene(scene):
    zones = scene[2]
    assert zones.zones["controlled_products"].tolist() == ["rice,leafy_veg"]
    assert zones.zones["allowed_products"].tolist() == ["maize"]


def test_rice_from_a_parcel_where_rice_is_controlled_is_high(scene):
    out = _screen(scene, ("L1", "rice", None, ["P0"]))
    row = out.loc["L1"]
    assert row["risk"] == HIGH
    assert row["reasons"] == ("图斑 P0 位于管控区 PZ001，稻谷（以糙米计）禁产 / parcel P0 lies in "
                              "zone PZ001 where rice is controlled")
    assert row["controlled_mu"] == pytest.approx(15.0)
    assert row["elements"] == "pb"  # the class-3 parcel's driving element
    assert row["tests"] == TESTS[HIGH] and "GB 5009.15" in row["tests"]
    assert (row["source_parcels"], row["n_source_parcels"]) == ("P0", 1)


def test_milled_rice_is_the_rice_grown_on_the_parcel(scene):
    assert _screen(scene, ("L1", "milled_rice", None, ["P0"])).loc["L1", "risk"] == HIGH


def test_an_exceeding_sample_of_the_lots_crop_this_year_is_high(scene):
    row = _screen(scene, ("L2", "rice", None, ["P1"])).loc["L2"]
    assert row["risk"] == HIGH
    assert "parcel P1 has an exceeding rice sample R9" in row["reasons"]
    assert (row["exceeding_samples"], row["elements"], row["controlled_mu"]) == ("R9", "cd", 0.0)


def test_an_exceeding_sample_of_another_year_does_not_count(scene):
    # R8 (2022) lies on P2: low in 2023, high when every year counts
    assert _screen(scene, ("L3", "rice", None, ["P2"])).loc["L3", "risk"] == LOW
    assert _screen(scene, ("L3", "rice", None, ["P2"]), year=None).loc["L3", "risk"] == HIGH


def test_class_3_source_where_the_crop_is_not_controlled_is_medium(scene):
    row = _screen(scene, ("L4", "maize", None, ["P0"])).loc["L4"]
    assert row["risk"] == MEDIUM
    assert row["reasons"] == ("图斑 P0 为严格管控类，玉米未列入管控 / parcel P0 is class 3 "
                              "although maize is not controlled there")
    assert (row["controlled_mu"], row["elements"]) == (0.0, "pb")
    assert row["tests"] == TESTS[MEDIUM]


def test_an_exceeding_sample_of_another_crop_is_medium(scene):
    row = _screen(scene, ("L5", "maize", None, ["P1"])).loc["L5"]
    assert row["risk"] == MEDIUM
    assert row["reasons"] == ("图斑 P1 有其他作物超标样品 R9（rice） / parcel P1 has an exceeding "
                              "sample of another crop: R9 (rice)")
    assert (row["exceeding_samples"], row["elements"]) == ("R9", "cd")


def test_a_village_holding_zone_area_where_the_crop_is_controlled_is_medium(scene):
    out = _screen(scene, ("L6", "rice", "甲村", []), ("L7", "maize", "甲村", []))
    rice, maize = out.loc["L6"], out.loc["L7"]
    assert rice["risk"] == MEDIUM
    assert rice["reasons"] == ("来源村 T1甲村 含稻谷（以糙米计）管控区 PZ001（15.00 亩） / source "
                               "village T1甲村 holds zone(s) PZ001 where rice is controlled "
                               "(15.00 mu)")
    assert (rice["controlled_mu"], rice["elements"], rice["n_source_parcels"]) == (15.0, "pb", 0)
    # maize is allowed in PZ001: nothing to find
    assert (maize["risk"], maize["controlled_mu"], maize["elements"]) == (LOW, 0.0, "cd")


def test_unknown_village_or_parcel_is_medium_with_a_warning_naming_the_lot(scene, caplog):
    caplog.set_level(logging.WARNING, logger="farmland.control.lots")
    out = _screen(scene, ("L8", "rice", "丙村", []), ("L9", "rice", None, ["P0", "P77"]))
    assert out.loc["L8", "risk"] == MEDIUM
    assert "source village T1丙村 not found in the parcels" in out.loc["L8", "reasons"]
    assert "lot L8: source village T1丙村 is not in the classified parcels" in caplog.text
    assert "lot L9: source parcel(s) P77 not found" in caplog.text
    # P0 still makes L9 high; the unknown parcel adds its reason
    assert out.loc["L9", "risk"] == HIGH
    assert "source parcel P77 not found in the parcels" in out.loc["L9", "reasons"]


def test_a_clean_source_is_low_with_routine_sampling(scene):
    row = _screen(scene, ("L10", "rice", "乙村", ["P2"])).loc["L10"]
    assert (row["risk"], row["tests"], row["elements"]) == (LOW, TESTS[LOW], "cd")
    assert row["reasons"] == "来源图斑非严格管控类且无超标样品 / no class-3 source and no exceeding sample"


def test_ledger_harvest_checks_link_parcels_to_their_lot(scene):
    ledger = pd.DataFrame({
        "parcel_id": ["P0", "P0", "P1"],
        "stage": ["harvest_checked", "inspected", "harvest_checked"],
        "lot_id": ["L11", "L12", None],
        "date": pd.to_datetime(["2023-09-01"] * 3), "result": "pass"})
    out = _screen(scene, ("L11", "rice", "乙村", []), ("L12", "rice", "乙村", ["P2"]),
                  ledger=ledger)
    assert (out.loc["L11", "source_parcels"], out.loc["L11", "risk"]) == ("P0", HIGH)
    # an inspection row does not link a lot
    assert (out.loc["L12", "source_parcels"], out.loc["L12", "risk"]) == ("P2", LOW)


def test_lots_are_sorted_by_risk_then_id_and_the_table_is_bilingual(scene):
    parcels, crops, zones = scene
    lots = _lots(("B", "rice", None, ["P2"]), ("A", "maize", None, ["P0"]),
                 ("C", "rice", None, ["P0"]), ("D", "maize", None, ["P1"]))
    out = screen_lots(lots, parcels, zones, crops, year=2023)
    assert list(out.columns) == LOT_COLUMNS
    assert out["lot_id"].tolist() == ["C", "A", "D", "B"]
    assert out["risk"].tolist() == [HIGH, MEDIUM, MEDIUM, LOW]
    table = lot_table(out)
    assert list(table.columns) == ["批次号 Lot", "作物 Crop", "数量（吨） Tonnage (t)",
                                   "乡镇 Township", "村 Village", "来源图斑 Source parcels",
                                   "风险 Risk", "原因 Reasons", "建议检测 Tests"]
    assert table["数量（吨） Tonnage (t)"].tolist() == [12.5] * 4


def test_a_crop_farmland_does_not_know_is_screened_by_its_source(scene):
    out = _screen(scene, ("L13", None, None, ["P0"]), ("L14", None, None, ["P2"]))
    assert out.loc["L13", "risk"] == MEDIUM
    assert "crop 荞麦 is not a known category" in out.loc["L13", "reasons"]
    assert out.loc["L14", "risk"] == LOW
