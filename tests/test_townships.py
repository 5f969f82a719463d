"""Township of each parcel (issue 16.2): from the townships layer (by code, else by
location), else the parcels' XZQMC, else the code — never the village."""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

import farmland as fl

X0, Y0 = 600_000.0, 2_700_000.0   # EPSG:4545


def _dltb(**extra) -> gpd.GeoDataFrame:
    """Four parcels in a row, 100 m apart; two in each of two villages of one township."""
    return gpd.GeoDataFrame(
        {"BSM": ["P1", "P2", "P3", "P4"], "DLBM": ["0101"] * 4,
         "ZLDWDM": ["4502991010010000000", "4502991010010000000",
                    "4502991020020000000", "4502991020020000000"],
         "ZLDWMC": ["甲村", "甲村", "乙村", "乙村"], **extra},
        geometry=[box(X0 + 100 * i, Y0, X0 + 100 * i + 50, Y0 + 50) for i in range(4)],
        crs=4545)


def _towns(with_codes: bool) -> gpd.GeoDataFrame:
    cols = {"XZQMC": ["清水镇", "龙江镇"]}
    if with_codes:
        cols["XZQDM"] = ["450299101", "450299102"]
    return gpd.GeoDataFrame(cols, geometry=[box(X0 - 10, Y0 - 10, X0 + 190, Y0 + 60),
                                            box(X0 + 190, Y0 - 10, X0 + 400, Y0 + 60)],
                            crs=4545)


def test_only_village_fields_group_by_township_code(caplog):
    caplog.set_level(logging.INFO)
    out = fl.read_parcels(_dltb())
    assert out["township"].tolist() == ["450299101", "450299101", "450299102", "450299102"]
    assert "甲村" not in set(out["township"])
    assert "only codes" in caplog.text


def test_townships_layer_names_by_code():
    out = fl.read_parcels(_dltb(), townships=_towns(with_codes=True))
    assert out["township"].tolist() == ["清水镇", "清水镇", "龙江镇", "龙江镇"]


def test_townships_layer_without_codes_names_by_location(caplog):
    caplog.set_level(logging.INFO)
    out = fl.read_parcels(_dltb(), townships=_towns(with_codes=False))
    assert out["township"].tolist() == ["清水镇", "清水镇", "龙江镇", "龙江镇"]
    assert "by location" in caplog.text


def test_the_layer_wins_over_the_parcels_own_names_and_xzqmc_is_the_fallback(caplog):
    caplog.set_level(logging.INFO)
    own = _dltb(XZQMC=["旧名"] * 4)
    assert fl.read_parcels(own)["township"].tolist() == ["旧名"] * 4
    assert "township column (XZQMC)" in caplog.text
    named = fl.read_parcels(own, townships=_towns(with_codes=True))
    assert named["township"].tolist() == ["清水镇", "清水镇", "龙江镇", "龙江镇"]


def test_a_township_table_names_by_code_and_unmatched_parcels_are_listed(caplog):
    caplog.set_level(logging.INFO)
    table = pd.DataFrame({"XZQDM": ["450299101"], "XZQMC": ["清水镇"]})
    out = fl.read_parcels(_dltb(), townships=table)
    assert out["township"].tolist()[:2] == ["清水镇", "清水镇"]
    assert out["township"].isna().tolist()[2:] == [True, True]
    assert "2 parcel(s) matched no township of the townships layer (P3, P4)" in caplog.text
