"""The source-ranking truth check (farmland.validation.source_truth) on a hand layout."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import CRS

from farmland.validation.source_truth import candidate_cause, source_truth_check


def test_candidate_cause_maps_ids_to_truth_causes():
    irrigation = {"E01": "IRR"}
    assert candidate_cause("E04", irrigation) == "E04"
    assert candidate_cause("E01~irrigation", irrigation) == "IRR"
    assert candidate_cause("E02~irrigation", irrigation) == "E02~irrigation"
    assert candidate_cause("geogenic", irrigation) == "KARST"


def test_truth_check_by_cause_and_largest_cluster():
    box = shapely.box
    clusters = gpd.GeoDataFrame(
        {"cluster_id": ["CL001", "CL002", "CL003", "CL004"],
         "area_mu": [30.0, 15.0, 15.0, 15.0]},
        geometry=[box(0, 0, 300, 100), box(1000, 0, 1100, 100), box(2000, 0, 2100, 100),
                  box(5000, 0, 5100, 100)], crs=CRS)
    areas = gpd.GeoDataFrame(
        {"cause_id": ["IRR", "E04", "KARST"]},
        geometry=[box(-10, -10, 310, 110), box(990, -10, 1060, 110),  # covers 60 % of CL002
                  box(1990, -10, 2030, 110)],  # 30 % of CL003: below min_cover
        crs=CRS)
    causes = pd.DataFrame({"cause_id": ["IRR", "E04", "KARST"],
                           "cause_type": ["irrigation", "enterprise_plume", "geogenic"],
                           "enterprise_id": ["E01", "E04", None]})
    candidates = pd.DataFrame({"cluster_id": ["CL001", "CL002", "CL002", "CL003"],
                               "rank": [1, 1, 2, 1],
                               "candidate_id": ["E01~irrigation", "geogenic", "E04", "E04"]})
    per, by_cause = source_truth_check(clusters, candidates, areas, causes)
    assert per["cluster_id"].tolist() == ["CL001", "CL002"]  # CL003 30 %, CL004 0 %
    assert per["cover"].tolist() == pytest.approx([1.0, 0.6])
    assert per["right"].tolist() == [True, False]
    got = by_cause.set_index("cause_id")
    assert got.loc["IRR", "largest_right"] and got.loc["IRR", "right_area_share"] == 1.0
    assert not got.loc["E04", "largest_right"] and got.loc["E04", "right_area_share"] == 0.0
    assert got.loc["KARST", "n_clusters"] == 0 and not got.loc["KARST", "largest_right"]
