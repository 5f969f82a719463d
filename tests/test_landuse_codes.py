"""Land-use codes as they arrive (issue 16.7): codes that lost their form through Excel
or a numeric DBF field are repaired and logged by parcel id; blank and non-farmland
codes are warned about by parcel id, because they put a parcel on the stricter column."""

from __future__ import annotations

import logging

import geopandas as gpd
import pytest
from shapely.geometry import box

import farmland as fl


def _parcels(codes: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"BSM": [f"A{i + 1}" for i in range(len(codes))], "DLBM": codes},
        geometry=[box(600_000 + 100 * i, 2_700_000, 600_050 + 100 * i, 2_700_050)
                  for i in range(len(codes))], crs=4545)


def test_text_codes_that_lost_their_form_are_repaired_and_logged(caplog):
    caplog.set_level(logging.WARNING)
    out = fl.read_parcels(_parcels(["0101.0", "101", None, "1001", "0201K", "0102"]))
    assert out["dlbm"].tolist()[:2] == ["0101", "0101"]
    assert out["landuse"].tolist() == ["paddy", "paddy", "unknown", "unknown", "orchard",
                                       "irrigated"]
    text = caplog.text
    assert "['0101.0', '101'] lost their form" in text and "2 parcel(s): A1, A2" in text
    assert "blank land-use code (DLBM): A3" in text
    assert "not farmland codes (01xx/02xx) ['1001']: A4" in text
    assert "A5" not in text and "A6" not in text   # 0201K and 0102 are regular codes


def test_numeric_codes_get_their_leading_zero_back(caplog):
    caplog.set_level(logging.WARNING)
    out = fl.read_parcels(_parcels([101.0, 102.0, 103.0, 201.0]))
    assert out["dlbm"].tolist() == ["0101", "0102", "0103", "0201"]
    assert out["landuse"].tolist() == ["paddy", "irrigated", "dry", "orchard"]
    assert "for 4 parcel(s): A1, A2, A3, A4" in caplog.text


@pytest.mark.parametrize("code, landuse", [("0101", "paddy"), ("0204", "garden"),
                                           ("0103K", "dry")])
def test_regular_codes_are_silent(caplog, code, landuse):
    caplog.set_level(logging.WARNING)
    assert fl.read_parcels(_parcels([code]))["landuse"].tolist() == [landuse]
    assert "land-use code" not in caplog.text
