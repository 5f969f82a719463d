"""Gap plan to the safe-utilisation target, hand-computed."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from conftest import parcel_table

from farmland.errors import InputError
from farmland.rate.accounting import safe_utilisation_rate
from farmland.rate.gap import CLASS3_SCOPE, apply_gap_plan, close_gap

YEAR = 2023


def measures_frame(rows):
    ids, types, classes = zip(*rows, strict=True)
    return pd.DataFrame({"parcel_id": list(ids), "measure_type": list(types),
                         "measure_class": list(classes), "year": YEAR})


def crops_frame(rows):
    pid, exceeds = zip(*rows, strict=True)
    return pd.DataFrame({"sample_id": [f"c{i}" for i in range(len(pid))], "parcel_id": list(pid),
                         "year": YEAR, "exceeds": list(exceeds)})


@pytest.fixture
def five():
    """The 5-parcel case in one township 甲镇 (rate 55 %, gap 36 亩 at 91 %)."""
    parcels = parcel_table([("P1", "甲镇", 2, 10), ("P2", "甲镇", 2, 20), ("P3", "甲镇", 2, 30),
                             ("P4", "甲镇", 3, 15), ("P5", "甲镇", 3, 25)])
    measures = measures_frame([("P1", "lime", "safe_use"), ("P1", "water_management", "safe_use"),
                               ("P2", "lime", "safe_use"), ("P3", "lime", "safe_use"),
                               ("P4", "fallow", "strict_control"), ("PX", "lime", "safe_use")])
    crops = crops_frame([("P1", False), ("P2", True)])
    return parcels, measures, crops


def test_five_parcel_plan_excludes_the_exceeding_parcel(five, caplog):
    parcels, measures, crops = five
    rate = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    with caplog.at_level(logging.WARNING, logger="farmland.rate.gap"):
        plan = close_gap(parcels, rate)
    # Candidates: only P5 (class 3, no strict control). P2 already has a safe-use
    # measure but its 2023 crop exceeds: no measure of 2023 can make it count, so it is
    # not proposed. P1, P3, P4 already count.
    assert plan["parcel_id"].tolist() == ["P5"]
    assert plan["scope"].tolist() == [CLASS3_SCOPE]      # class 3 first, always
    assert plan["proposed_measure_class"].tolist() == ["strict_control"]
    assert plan["cumulative_mu"].tolist() == [25.0]
    # rate after = (55 + 25) / 100 = 80 % < 91 %: still short by 36 - 25 = 11 亩
    assert plan["rate_after"].tolist() == pytest.approx([0.80])
    assert plan["reaches_target"].tolist() == [False]
    assert "甲镇 cannot reach the target with measures this year: still short by 11.00 亩" \
        in caplog.text


def test_plan_is_largest_first_and_reaches_target():
    # 乙镇: class 2 of 40 + 10 + 10 + 5, class 3 of 35 with a strict-control measure.
    # den = 100, num = 35, need 0.91*100 - 35 = 56 亩.
    # Largest first: A 40 (cum 40 < 56), then B 10 (cum 50 < 56), then C 10 (cum 60 ≥ 56):
    # 3 parcels; no 2 parcels reach 56 (40 + 10 = 50), so 3 is the minimum.
    parcels = parcel_table([("A", "乙镇", 2, 40), ("B", "乙镇", 2, 10), ("C", "乙镇", 2, 10),
                             ("D", "乙镇", 2, 5), ("E", "乙镇", 3, 35)])
    measures = measures_frame([("E", "ban_zone", "strict_control")])
    plan = close_gap(parcels, measures, accounting="measures_only")
    assert plan["parcel_id"].tolist() == ["A", "B", "C"]
    assert plan["cumulative_mu"].tolist() == [40.0, 50.0, 60.0]
    # rate after: 75/100, 85/100, 95/100
    assert plan["rate_after"].tolist() == pytest.approx([0.75, 0.85, 0.95])
    assert plan["reaches_target"].tolist() == [False, False, True]
    assert plan["proposed_measure_class"].tolist() == ["safe_use"] * 3
    after = safe_utilisation_rate(parcels, apply_gap_plan(measures, plan, YEAR),
                                  accounting="measures_only")
    assert after.table["met"].all()
    assert after.rate == pytest.approx(0.95)


def test_every_uncontrolled_class3_parcel_comes_first_in_either_order():
    parcels = parcel_table([("A", "乙镇", 2, 40), ("B", "乙镇", 3, 10), ("C", "乙镇", 2, 50)])
    # den 100, num 0. Class 3 first: B 10 (county rate after 10 %). Then 乙镇 needs
    # 91 - 10 = 81 from class 2, largest first: C 50 (cum 50), A 40 (cum 90 >= 81).
    for order in ("area", "risk"):
        plan = close_gap(parcels, None, order=order, accounting="measures_only")
        assert plan["parcel_id"].tolist() == ["B", "C", "A"]
        assert plan["scope"].tolist() == [CLASS3_SCOPE, "乙镇", "乙镇"]
        assert plan["cumulative_mu"].tolist() == [10.0, 50.0, 90.0]
        assert plan["rate_after"].tolist() == pytest.approx([0.10, 0.60, 1.00])


def test_every_township_and_the_county_reach_the_target():
    # 东: den 50 (class 2: 30, 20), num 0 -> need 45.5: 30 + 20 = 50 -> both
    # 西: den 100 (class 3 60 controlled, class 2 25, 15) -> need 91 - 60 = 31: 25 + 15 = 40
    parcels = parcel_table([("E1", "东", 2, 30), ("E2", "东", 2, 20), ("W1", "西", 3, 60),
                             ("W2", "西", 2, 25), ("W3", "西", 2, 15), ("W4", "西", 1, 99)])
    measures = measures_frame([("W1", "fallow", "strict_control")])
    plan = close_gap(parcels, measures, accounting="measures_only")
    assert plan["parcel_id"].tolist() == ["E1", "E2", "W2", "W3"]
    assert plan["scope"].tolist() == ["东", "东", "西", "西"]
    after = safe_utilisation_rate(parcels, apply_gap_plan(measures, plan, YEAR),
                                  accounting="measures_only")
    assert after.table["met"].all()


def test_no_extras_when_no_candidate_is_left():
    # 东: class 2 T1 100 with a measure and a crop exceedance -> cannot count this year;
    #     need 91, no candidate.
    # 西: class 3 W1 50 controlled, class 2 W2 30 and W3 20 without measures;
    #     den 100, num 50, need 41: W2 30 (cum 30), W3 20 (cum 50 ≥ 41).
    # County: den 200, num 50 + 50 = 100 after the union, need 182 - 100 = 82, but no
    # candidate is left: still short (logged), no county rows.
    parcels = parcel_table([("T1", "东", 2, 100), ("W1", "西", 3, 50), ("W2", "西", 2, 30),
                             ("W3", "西", 2, 20)])
    measures = measures_frame([("T1", "lime", "safe_use"), ("W1", "fallow", "strict_control")])
    plan = close_gap(parcels, measures, crops=crops_frame([("T1", True)]),
                     accounting="measures_only")
    assert plan["parcel_id"].tolist() == ["W2", "W3"]
    assert plan["scope"].tolist() == ["西", "西"]


def test_county_extras_when_a_township_cannot_close():
    # 东: T1 class 2 100, measure + crop exceedance -> need 91, no candidate.
    # 西: W1 class 3 95 controlled, W2 class 2 5 and W3 class 3 40 open.
    # Class 3 first: W3 40 (county: (95 + 40) / 240). 西 is then met:
    # 0.91 * 140 = 127.4 <= 135. County: need 218.4 - 135 = 83.4: the remaining
    # candidate W2 (5) is added at county scope; still short.
    parcels = parcel_table([("T1", "东", 2, 100), ("W1", "西", 3, 95), ("W2", "西", 2, 5),
                             ("W3", "西", 3, 40)])
    measures = measures_frame([("T1", "lime", "safe_use"), ("W1", "fallow", "strict_control")])
    plan = close_gap(parcels, measures, crops=crops_frame([("T1", True)]),
                     accounting="measures_only")
    assert plan["parcel_id"].tolist() == ["W3", "W2"]
    assert plan["scope"].tolist() == [CLASS3_SCOPE, "全县 County"]
    assert plan["township"].tolist() == ["西", "西"]
    # the county row's cumulative includes the class-3 rows: 40 + 5 = 45
    assert plan["cumulative_mu"].tolist() == [40.0, 45.0]
    assert plan["rate_after"].tolist() == pytest.approx([135 / 240, 140 / 240])
    assert plan["reaches_target"].tolist() == [False, False]


def test_candidates_and_their_gain_follow_the_accounting_mode():
    parcels = parcel_table([("A", "T", 2, 50), ("B", "T", 2, 50)])
    crops = crops_frame([("B", False)])
    # parcel_verified (the older count_unverified=False): A has no own crop sample, so a
    # measure would not count; only B (own compliant sample) is proposed.
    plan = close_gap(parcels, None, crops=crops, count_unverified=False)
    assert plan["parcel_id"].tolist() == ["B"]
    # official: B's sample is not on treated land, so there is no compliance rate and A
    # would not count either; measures_only: both (50 each, need 91).
    assert close_gap(parcels, None, crops=crops)["parcel_id"].tolist() == ["B"]
    both = close_gap(parcels, None, crops=crops, accounting="measures_only")
    assert sorted(both["parcel_id"]) == ["A", "B"]


def test_official_gain_is_the_area_times_the_compliance_rate():
    # T: treated P1..P5 (10 亩 each) carry 5 crop samples, 4 compliant -> township rate
    # 0.8 (5 samples reach the minimum). Candidate Q (100 亩, no measure, no sample)
    # would count 100 x 0.8 = 80 亩. den 150, num 10 x 4 = 40 (P5 exceeds), need
    # 0.91 x 150 - 40 = 96.5: Q's 80 is not enough -> short 16.5 (logged).
    parcels = parcel_table([(f"P{i}", "T", 2, 10) for i in range(1, 6)] + [("Q", "T", 2, 100)])
    measures = measures_frame([(f"P{i}", "lime", "safe_use") for i in range(1, 6)])
    crops = crops_frame([(f"P{i}", i == 5) for i in range(1, 6)])
    plan = close_gap(parcels, measures, crops=crops)
    assert plan["parcel_id"].tolist() == ["Q"]
    assert plan["gain_mu"].tolist() == pytest.approx([80.0])
    assert plan["rate_after"].tolist() == pytest.approx([120 / 150])
    assert plan["reaches_target"].tolist() == [False]


def test_a_met_township_gets_no_class2_parcels_but_its_class3_is_listed():
    parcels = parcel_table([("A", "T", 2, 95), ("B", "T", 3, 5)])
    plan = close_gap(parcels, measures_frame([("A", "lime", "safe_use")]),
                     accounting="measures_only")
    assert plan["parcel_id"].tolist() == ["B"]      # 95 % already, yet class 3 is listed
    assert plan["scope"].tolist() == [CLASS3_SCOPE]
    assert list(plan.columns) == ["scope", "township", "parcel_id", "final_class", "area_mu",
                                  "gain_mu", "proposed_measure_class", "reason",
                                  "cumulative_mu", "rate_after", "reaches_target"]
    controlled = close_gap(parcels, measures_frame([("A", "lime", "safe_use"),
                                                    ("B", "fallow", "strict_control")]),
                           accounting="measures_only")
    assert controlled.empty


def test_bad_order_and_foreign_rate_result(five):
    parcels, measures, crops = five
    with pytest.raises(InputError, match="unknown gap-plan order.*use 'area' or 'risk'"):
        close_gap(parcels, measures, order="random")
    rate = safe_utilisation_rate(parcels, measures, crops=crops)
    with pytest.raises(InputError, match="rate result was computed on other parcels"):
        close_gap(parcels.iloc[:3], rate)


def test_apply_gap_plan_adds_rows_and_keeps_the_ledger(five):
    parcels, measures, crops = five
    plan = close_gap(parcels, measures, crops=crops, accounting="measures_only")
    new = apply_gap_plan(measures, plan, YEAR)
    assert len(new) == len(measures) + 1
    assert new.iloc[-1][["parcel_id", "measure_type", "measure_class", "year"]].tolist() == [
        "P5", "planned_strict_control", "strict_control", YEAR]
    # the existing rows are kept as they were (year becomes nullable Int64 for the new rows)
    pd.testing.assert_frame_equal(new.iloc[:len(measures)], measures, check_dtype=False)
    # the plan's promise holds: (55 + 25) / 100 = 80 %
    assert safe_utilisation_rate(parcels, new, crops=crops,
                                 accounting="measures_only").rate == pytest.approx(0.80)


def test_a_class3_parcel_whose_food_crop_exceeded_is_listed_but_counts_nothing():
    # C3a (20 亩) and C3b (30 亩) are class 3 without a measure; rice on C3b exceeded.
    # A measure on C3b makes it "controlled but exceeding": it must still be controlled,
    # but in the official accounting it adds nothing (measures_only: its 30 亩).
    parcels = parcel_table([("C3a", "T", 3, 20), ("C3b", "T", 3, 30), ("K", "T", 2, 50)])
    measures = measures_frame([("K", "lime", "safe_use")])
    crops = pd.DataFrame({"sample_id": ["r1", "r2"], "parcel_id": ["C3b", "K"], "year": YEAR,
                          "exceeds": [True, False], "crop": ["rice", "rice"]})
    plan = close_gap(parcels, measures, crops=crops).set_index("parcel_id")
    assert plan.loc[["C3a", "C3b"], "gain_mu"].tolist() == [20.0, 0.0]
    assert "food crop exceeded" in plan.at["C3b", "reason"]
    # the plan's own figure is what the rate gives once the plan is in the ledger:
    # K (50, own compliant sample) + C3a (20) = 70 of 100
    after = safe_utilisation_rate(parcels, apply_gap_plan(measures, plan.reset_index(), YEAR),
                                  crops=crops, year=YEAR)
    assert after.county["numerator_mu"] == pytest.approx(70.0)
    assert plan["rate_after"].max() == pytest.approx(after.rate)
    loose = close_gap(parcels, measures, crops=crops, accounting="measures_only")
    assert loose.set_index("parcel_id").at["C3b", "gain_mu"] == 30.0
