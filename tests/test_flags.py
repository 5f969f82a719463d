"""Sparse-data and uncertainty flags (farmland.sampling.flags); ``farmland flag`` is in
test_cli_flag.py. Coordinates in metres from the origin X0, Y0 (EPSG:4545, multiples of the
1 km grid)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_parcels, make_points

from farmland.sampling.flags import flag_sparse
from farmland.sampling.uncertainty import sample_threshold_ratios
from farmland.vocabulary import COUNTY

NAN = np.nan


# The case (also used by test_cli_flag.py) -------------------------------------------
def flag_parcels():
    """Five classified parcels of 1500, 1500, 1500, 150 and 150 亩 in townships T1-T3."""
    return make_parcels(
        [(0, 0, 1000, 1000), (1000, 0, 2000, 1000), (2000, 0, 3000, 1000),
         (3500, 0, 4500, 100), (0, 1000, 1000, 1100)],
        parcel_id=["P1", "P2", "P3", "P4", "P5"],
        township=["T1", "T2", "T2", "T3", "T1"],
        soil_class=[1, 3, 3, None, 1],
        final_class=[1, 3, 3, None, 1],
        rule=["interpolated:area_majority", "points:majority", "interpolated:area_majority",
              "unclassified:too_far", "interpolated:area_majority"],
        driving_element=[None, "cd", "cd", None, None],
        share_1=[1.0, NAN, 0.0, NAN, 1.0], share_2=[0.0, NAN, 0.3, NAN, 0.0],
        share_3=[0.0, NAN, 0.7, NAN, 0.0],
        p_class_1=[0.7, NAN, NAN, NAN, 0.85], p_class_2=[0.25, NAN, NAN, NAN, 0.10],
        p_class_3=[0.05, NAN, NAN, NAN, 0.05],
        sample_ids=["S1,S2", "S3", "S3", "", "S1"],
        crop_exceedance=[True, False, False, False, False])


def flag_samples():
    # S3: Cd 1.9 mg/kg at pH 6.0 -> intervention value 2.0 (b1), ratio 0.95
    return make_points([(500, 500), (700, 700), (1500, 500)],
                       sample_id=["S1", "S2", "S3"], usable=[True, True, True],
                       ph=[6.0, 6.0, 6.0], landuse_used=["dry", "dry", "dry"],
                       cd=[0.1, 0.12, 1.9], pi_cd=[0.3333, 0.4, 6.3333])


def flag_crops():
    return make_points([(100, 100), (1100, 100), (200, 100)],
                       sample_id=["C1", "C2", "C3"], crop=["rice", "rice", "rice"],
                       parcel_id=["P1", "P2", "P1"], exceeds=[True, True, False],
                       crop_grade=[2, 3, 1])


@pytest.fixture
def parcels():
    return flag_parcels()


@pytest.fixture
def samples():
    return flag_samples()


@pytest.fixture
def crops():
    return flag_crops()


@pytest.fixture
def result(parcels, samples, crops):
    return flag_sparse(parcels, samples, crops=crops)


def test_empty_cells_hold_farmland_without_samples(result):
    cells = result.empty_cells.set_index("cell_id")
    # cell 2000_0 holds P3 (1500 亩); P4 (1000 m x 100 m = 150 亩) straddles x = 4000 m
    # and puts 75 亩 in each of cells 3000_0 and 4000_0; P5 fills cell 0_1000 with 150 亩.
    assert sorted(cells.index) == ["500000_3001000", "502000_3000000", "503000_3000000",
                                   "504000_3000000"]
    assert cells.loc["502000_3000000", "farmland_mu"] == pytest.approx(1500.0)
    assert cells.loc["503000_3000000", "farmland_mu"] == pytest.approx(75.0)
    assert cells.loc["504000_3000000", "farmland_mu"] == pytest.approx(75.0)
    assert cells.loc["500000_3001000", "township"] == "T1"
    assert (cells["flag"] == "empty_cell").all()
    assert cells.loc["503000_3000000", "reason_en"] == (
        "1000 m cell with 75.0 mu of farmland and no soil sample")
    assert cells.geometry.area.tolist() == pytest.approx([1e6] * 4)
    # the cells holding S1/S2 (0_0) and S3 (1000_0) are not flagged
    assert "500000_3000000" not in cells.index and "501000_3000000" not in cells.index


def test_sparse_township_with_its_density(result):
    towns = result.sparse_townships.set_index("township")
    # T2: 2 km² (3000 亩) of farmland and one sample -> 0.5 per km²; T3: 0.1 km², none
    assert sorted(towns.index) == ["T2", "T3"]
    assert towns.loc["T2", "density_per_km2"] == pytest.approx(0.5)
    assert towns.loc["T2", "farmland_km2"] == pytest.approx(2.0)
    assert towns.loc["T2", "n_samples"] == 1
    assert towns.loc["T3", "density_per_km2"] == 0.0
    assert towns.loc["T2", "reason_en"] == (
        "0.50 samples/km² of farmland, below 1 (2.00 km² farmland, 1 samples)")
    assert towns.loc["T2"].geometry.area == pytest.approx(2e6)  # union of P2 and P3


def test_thin_zone_of_two_adjacent_class3_parcels_with_one_sample(result):
    zones = result.thin_zones
    assert len(zones) == 1
    z = zones.iloc[0]
    assert (z["zone_id"], z["parcel_ids"], z["n_samples"], z["n_parcels"]) == (
        "SC001", "P2,P3", 1, 2)
    assert z["area_mu"] == pytest.approx(3000.0)
    assert z["reason_zh"] == "严格管控类连片区 3000.0 亩仅有 1 个土壤点位（少于 3 个）"


def test_uncertain_parcels_by_probability_share_and_threshold(result):
    u = result.uncertain_parcels.set_index("parcel_id")
    # P1: p_class_2 = 0.25 >= 0.2; P5: 0.10 (not flagged)
    # P2: S3 at 0.95 x the Cd intervention value (within ±10 %)
    # P3: interpolated, no probabilities, 30 % of its area estimated class 2
    assert sorted(u.index) == ["P1", "P2", "P3"]
    assert u.loc["P1", "criterion"] == "probability"
    assert u.loc["P1", "p_other"] == pytest.approx(0.25)
    assert u.loc["P2", "criterion"] == "near_threshold"
    assert (u.loc["P2", "near_element"], u.loc["P2", "near_kind"]) == ("cd", "intervention")
    assert u.loc["P2", "near_ratio"] == pytest.approx(0.95)
    assert u.loc["P2", "reason_en"] == "Cd at 0.95 × its intervention value (within ±10%)"
    assert u.loc["P3", "criterion"] == "class_share"
    assert u.loc["P3", "share_other"] == pytest.approx(0.3)


def test_crop_exceedance_on_class1_and_unclassified(result):
    crops = result.crop_exceedance_class1
    assert crops["sample_id"].tolist() == ["C1"]
    assert crops["township"].tolist() == ["T1"]
    un = result.unclassified
    assert un["parcel_id"].tolist() == ["P4"]
    assert un["reason_en"].tolist() == ["unclassified: too far from usable samples"]


def test_crop_flag_from_parcels_without_crop_layer(parcels, samples):
    res = flag_sparse(parcels, samples)
    assert res.crop_exceedance_class1["parcel_id"].tolist() == ["P1"]


def test_summary_per_township_and_county(result):
    s = result.summary.set_index("township")
    assert list(s.index) == ["T1", "T2", "T3", COUNTY]
    assert s["n_samples"].tolist() == [2, 1, 0, 3]
    assert s["farmland_mu"].tolist() == pytest.approx([1650.0, 3000.0, 150.0, 4800.0])
    # county: 3 samples over 3.2 km² = 0.9375 per km²
    assert s["density_per_km2"].tolist() == pytest.approx([2 / 1.1, 0.5, 0.0, 0.9375],
                                                          abs=1e-4)
    assert s["sparse"].tolist() == [False, True, True, True]
    assert s["empty_cells"].tolist() == [1, 1, 2, 4]
    assert s["empty_cells_mu"].tolist() == pytest.approx([150.0, 1500.0, 150.0, 1800.0])
    assert s["thin_zones"].tolist() == [0, 1, 0, 1]
    assert s["uncertain_parcels"].tolist() == [1, 2, 0, 3]
    assert s["uncertain_mu"].tolist() == pytest.approx([1500.0, 3000.0, 0.0, 4500.0])
    assert s["crop_exceedance_class1"].tolist() == [1, 0, 0, 1]
    assert s["unclassified_mu"].tolist() == pytest.approx([0.0, 0.0, 150.0, 150.0])


def test_flag_layers_carry_codes_and_reasons(result, parcels):
    for name, layer in result.layers().items():
        assert {"flag", "reason_zh", "reason_en"} <= set(layer.columns), name
        assert layer.crs.to_epsg() == 4545
    assert len(result.flagged_area(parcels)) == 4 + 2 + 1 + 3 + 1 + 1


def test_sample_threshold_ratio_prefers_the_closest():
    s = pd.DataFrame({"sample_id": ["A"], "ph": [8.0], "landuse_used": ["paddy"],
                      "cd": [0.7], "pb": [250.0]})
    # Cd 0.7 / 0.8 (paddy, pH > 7.5) = 0.875; Pb 250 / 240 = 1.0417 -> Pb wins
    r = sample_threshold_ratios(s)
    assert r.loc["A", "element"] == "pb"
    assert r.loc["A", "ratio"] == pytest.approx(250 / 240)


def test_inputs_are_not_mutated(parcels, samples, crops):
    before = parcels.copy()
    flag_sparse(parcels, samples, crops=crops)
    pd.testing.assert_frame_equal(parcels, before)


def test_crop_samples_located_by_position_and_outside_every_parcel(parcels, samples, caplog):
    """Over-limit crop samples without a parcel id: one inside class-1 parcel P1 is found by
    its position and flagged; one on a ridge between parcels (in none) is reported, not a
    crash (pandas' copy-on-write hands out read-only arrays)."""
    crops = make_points([(300, 300), (5000, 5000), (1100, 100)],
                        sample_id=["C1", "C9", "C2"], crop=["rice"] * 3,
                        parcel_id=[None, None, "P2"], exceeds=[True, True, True],
                        crop_grade=[2, 3, 3])
    with caplog.at_level("WARNING", logger="farmland.sampling.flags"):
        res = flag_sparse(parcels, samples, crops=crops)
    flagged = res.crop_exceedance_class1
    assert flagged["sample_id"].tolist() == ["C1"]
    assert flagged["parcel_id"].tolist() == ["P1"]
    assert "1 over-limit crop sample(s) lie in no parcel" in caplog.text
    assert "C9" in caplog.text
