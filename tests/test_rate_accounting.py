"""The official accounting of the safe-utilisation rate (domain.md §4, issue 14),
worked by hand on the five-parcel county of tests/test_rate.py.

Parcels (亩): 东乡 P1 class 2 (10, lime + water, compliant own crop sample),
P2 class 2 (20, lime, exceeding own sample), P7 class 1 (8); 西乡 P3 class 2 (30,
foliar, no crop sample), P4 class 3 (15, fallow), P5 class 3 (25, no measure),
P6 unclassified (5). E = 60 + 40 = 100.

Crop monitoring on treated class-2 land: P1 compliant, P2 exceeding -> 2 samples,
1 compliant. Both townships have fewer than 5 -> the county rate 1/2 applies.
"""

from __future__ import annotations

import pytest
from conftest import parcel_table
from test_rate import YEAR, crops_frame, five_parcel_county, measures_frame

import farmland as fl


@pytest.fixture
def five():
    return five_parcel_county()


def test_statuses(five):
    parcels, measures, crops = five
    s = fl.safe_utilisation_rate(parcels, measures, crops=crops).parcels.set_index("parcel_id")
    assert s["status"].to_dict() == {
        "P1": "achieved_verified", "P2": "exceeded", "P3": "achieved_by_rate",
        "P4": "controlled", "P5": "uncontrolled", "P6": "unclassified", "P7": "class1"}
    assert s.loc["P3", "compliance_rate"] == pytest.approx(0.5)
    assert s.loc["P1", "measures"] == "lime, water_management"


@pytest.mark.parametrize("mode, c_mu, rate, own, by_rate, none", [
    # C = P1 10 + P3 30 x 1/2 = 25; D = P4 15 -> 40 / 100
    ("official", 25.0, 0.40, 10.0, 15.0, 0.0),
    # C = P1 10 only -> 25 / 100
    ("parcel_verified", 10.0, 0.25, 10.0, 0.0, 0.0),
    # C = P1 10 + P3 30 -> 55 / 100; of P3's 30, 15 are backed by the rate, 15 by nothing
    ("measures_only", 40.0, 0.55, 10.0, 15.0, 15.0),
])
def test_three_modes_and_the_evidence_behind_c(five, mode, c_mu, rate, own, by_rate, none):
    parcels, measures, crops = five
    r = fl.safe_utilisation_rate(parcels, measures, crops=crops, accounting=mode)
    c = r.county
    assert r.accounting == mode
    assert c["achieved2_mu"] == pytest.approx(c_mu)
    assert c["controlled3_mu"] == pytest.approx(15.0)
    assert c["denominator_mu"] == pytest.approx(100.0)
    assert c["rate"] == pytest.approx(rate)
    assert (c["evidence_own_mu"], c["evidence_rate_mu"], c["evidence_none_mu"]) == \
        pytest.approx((own, by_rate, none))
    # every run carries all three readings
    assert (c["rate_official"], c["rate_parcel_verified"], c["rate_measures_only"]) == \
        pytest.approx((0.40, 0.25, 0.55))
    assert c["gap_mu"] == pytest.approx(91.0 - 100 * rate)
    # class 3 in principle fully controlled: 15 of 40 亩
    assert c["class3_control"] == pytest.approx(15 / 40)
    assert c["uncontrolled3_mu"] == pytest.approx(25.0)


def test_township_rows_and_the_per_parcel_layer_sum_to_them(five):
    parcels, measures, crops = five
    r = fl.safe_utilisation_rate(parcels, measures, crops=crops)
    t = r.table.set_index("name")
    # 东乡: A2 30 (P1, P2), C = 10 -> 10 / 30; 西乡: A2 30, A3 40, C = 15, D = 15 -> 30 / 70
    assert t.loc["东乡", "rate"] == pytest.approx(10 / 30)
    assert t.loc["西乡", "rate"] == pytest.approx(30 / 70)
    by_town = r.parcels.groupby("township")["counted_mu"].sum()
    assert by_town.to_dict() == pytest.approx({"东乡": 10.0, "西乡": 30.0})
    assert r.parcels["counted_mu"].sum() == pytest.approx(t.loc["全县 County", "numerator_mu"])
    compliance = r.compliance.set_index("name")
    assert compliance.loc["county", ["n_samples", "n_compliant"]].tolist() == [2, 1]
    assert compliance.loc["西乡", "basis"] == "county"


def test_a_township_with_enough_samples_uses_its_own_rate():
    # 北: five treated parcels with one sample each, 4 compliant -> own rate 0.8;
    # 南: one treated parcel with one exceeding sample -> too few, county rate 4/6.
    # R (北, 50 亩, treated, no sample) counts 40; S (南, 30 亩) counts 30 x 4/6 = 20.
    rows = [(f"N{i}", "北", 2, 10) for i in range(1, 6)] + [
        ("M", "南", 2, 10), ("R", "北", 2, 50), ("S", "南", 2, 30)]
    parcels = parcel_table(rows)
    measures = measures_frame([(pid, "lime", "safe_use", YEAR) for pid, *_ in rows])
    crops = crops_frame([(f"c{i}", f"N{i}", YEAR, i == 5) for i in range(1, 6)]
                        + [("cm", "M", YEAR, True)])
    r = fl.safe_utilisation_rate(parcels, measures, crops=crops)
    s = r.parcels.set_index("parcel_id")
    assert s.loc["R", "counted_mu"] == pytest.approx(40.0)
    assert s.loc["S", "counted_mu"] == pytest.approx(20.0)
    compliance = r.compliance.set_index("name")
    assert compliance.loc["北", "basis"] == "township"
    assert compliance.loc["南", "basis"] == "county"
    # with a lower minimum, 南 uses its own rate 0/1 and S counts nothing
    low = fl.safe_utilisation_rate(parcels, measures, crops=crops, min_township_samples=1)
    assert low.parcels.set_index("parcel_id").loc["S", "counted_mu"] == 0.0


def test_no_crop_monitoring_at_all_counts_nothing_without_own_samples():
    parcels = parcel_table([("A", "T", 2, 50)])
    r = fl.safe_utilisation_rate(parcels, measures_frame([("A", "lime", "safe_use", YEAR)]))
    assert r.parcels["status"].tolist() == ["unverified"]
    assert r.county["rate"] == 0.0
    assert r.county["rate_measures_only"] == 1.0


def test_controlled_class3_with_an_exceeding_food_crop_is_a_contradiction():
    parcels = parcel_table([("K", "T", 3, 20), ("L", "T", 3, 10)])
    measures = measures_frame([("K", "fallow", "strict_control", YEAR),
                               ("L", "ban_zone", "strict_control", YEAR)])
    crops = crops_frame([("c1", "K", YEAR, True), ("c2", "L", YEAR, True)])
    crops.loc[1, "crop"] = "leafy_veg"        # not a food crop: no contradiction for L
    r = fl.safe_utilisation_rate(parcels, measures, crops=crops)
    s = r.parcels.set_index("parcel_id")
    assert s["status"].to_dict() == {"K": "controlled_but_exceeding", "L": "controlled"}
    assert r.county["controlled3_mu"] == 10.0 and r.county["contradicted3_mu"] == 20.0
    assert r.mismatches["issue"].tolist() == ["controlled_but_food_crop_exceeds"]
    assert r.mismatches["parcel_id"].tolist() == ["K"]
    assert fl.safe_utilisation_rate(parcels, measures, crops=crops,
                                    accounting="measures_only").county["controlled3_mu"] == 30.0


def test_unknown_mode_is_refused():
    with pytest.raises(fl.InputError, match="unknown accounting mode.*official"):
        fl.safe_utilisation_rate(parcel_table([("A", "T", 2, 5)]), None, accounting="rough")
