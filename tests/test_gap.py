"""Gap plan to the safe-utilisation target, hand-computed."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from conftest import parcel_table

from farmland.errors import InputError
from farmland.rate.accounting import safe_utilisation_rate
from farmland.rate.gap import apply_gap_plan, close_gap

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
    rate = safe_utilisation_rate(parcels, measures, crops=crops)
    with caplog.at_level(logging.WARNING, logger="farmland.rate.gap"):
        plan = close_gap(parcels, rate)
    # Candidates: only P5 (class 3, no strict control). P2 already has a safe-use
    # measure but its 2023 crop exceeds: no measure of 2023 can make it count, so it is
    # not proposed. P1, P3, P4 already count.
    assert plan["parcel_id"].tolist() == ["P5"]
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
    plan = close_gap(parcels, measures)
    assert plan["parcel_id"].tolist() == ["A", "B", "C"]
    assert plan["cumulative_mu"].tolist() == [40.0, 50.0, 60.0]
    # rate after: 75/100, 85/100, 95/100
    assert plan["rate_after"].tolist() == pytest.approx([0.75, 0.85, 0.95])
    assert plan["reaches_target"].tolist() == [False, False, True]
    assert plan["proposed_measure_class"].tolist() == ["safe_use"] * 3
    after = safe_utilisation_rate(parcels, apply_gap_plan(measures, plan, YEAR))
    assert after.table["met"].all()
    assert after.rate == pytest.approx(0.95)


def test_risk_order_takes_class3_first():
    parcels = parcel_table([("A", "乙镇", 2, 40), ("B", "乙镇", 3, 10), ("C", "乙镇", 2, 50)])
    # den 100, num 0, need 91: risk order B (class 3) 10, C 50, A 40 -> cum 10, 60, 100
    plan = close_gap(parcels, None, order="risk")
    assert plan["parcel_id"].tolist() == ["B", "C", "A"]
    assert plan["cumulative_mu"].tolist() == [10.0, 60.0, 100.0]
    # area order needs only C 50 + A 40 = 90 < 91 -> also B: all three here, but C first
    assert close_gap(parcels, None)["parcel_id"].tolist() == ["C", "A", "B"]


def test_every_township_and_the_county_reach_the_target():
    # 东: den 50 (class 2: 30, 20), num 0 -> need 45.5: 30 + 20 = 50 -> both
    # 西: den 100 (class 3 60 controlled, class 2 25, 15) -> need 91 - 60 = 31: 25 + 15 = 40
    parcels = parcel_table([("E1", "东", 2, 30), ("E2", "东", 2, 20), ("W1", "西", 3, 60),
                             ("W2", "西", 2, 25), ("W3", "西", 2, 15), ("W4", "西", 1, 99)])
    measures = measures_frame([("W1", "fallow", "strict_control")])
    plan = close_gap(parcels, measures)
    assert plan["parcel_id"].tolist() == ["E1", "E2", "W2", "W3"]
    assert plan["scope"].tolist() == ["东", "东", "西", "西"]
    after = safe_utilisation_rate(parcels, apply_gap_plan(measures, plan, YEAR))
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
    plan = close_gap(parcels, measures, crops=crops_frame([("T1", True)]))
    assert plan["parcel_id"].tolist() == ["W2", "W3"]
    assert plan["scope"].tolist() == ["西", "西"]


def test_county_extras_when_a_township_cannot_close():
    # 东: T1 class 2 100, measure + crop exceedance -> need 91, no candidate.
    # 西: W1 class 3 95 controlled, W2 class 2 5 and W3 class 3 40 open;
    #     den 140, num 95, need 0.91*140 - 95 = 32.4: W3 40 (largest) reaches it.
    # County: den 240, num 95 + 40 = 135, need 218.4 - 135 = 83.4: the remaining
    # candidate W2 (5) is added at county scope; still short.
    parcels = parcel_table([("T1", "东", 2, 100), ("W1", "西", 3, 95), ("W2", "西", 2, 5),
                             ("W3", "西", 3, 40)])
    measures = measures_frame([("T1", "lime", "safe_use"), ("W1", "fallow", "strict_control")])
    plan = close_gap(parcels, measures, crops=crops_frame([("T1", True)]))
    assert plan["parcel_id"].tolist() == ["W3", "W2"]
    assert plan["scope"].tolist() == ["西", "全县 County"]
    assert plan["township"].tolist() == ["西", "西"]
    # the county row's cumulative includes the township sets: 40 + 5 = 45;
    # rate after = (95 + 45) / 240
    assert plan["cumulative_mu"].tolist() == [40.0, 45.0]
    assert plan["rate_after"].tolist() == pytest.approx([135 / 140, 140 / 240])
    assert plan["reaches_target"].tolist() == [True, False]


def test_unverified_candidates_need_crop_samples_when_not_counted():
    parcels = parcel_table([("A", "T", 2, 50), ("B", "T", 2, 50)])
    crops = crops_frame([("B", False)])
    # count_unverified=False: A has no crop sample, so a measure would not count; only B.
    plan = close_gap(parcels, None, crops=crops, count_unverified=False)
    assert plan["parcel_id"].tolist() == ["B"]
    # default: both are candidates (A and B 50 each, need 91 -> both)
    assert sorted(close_gap(parcels, None, crops=crops)["parcel_id"]) == ["A", "B"]


def test_met_township_gets_no_parcels():
    parcels = parcel_table([("A", "T", 2, 95), ("B", "T", 3, 5)])
    plan = close_gap(parcels, measures_frame([("A", "lime", "safe_use")]))
    assert plan.empty
    assert list(plan.columns) == ["scope", "township", "parcel_id", "final_class", "area_mu",
                                  "proposed_measure_class", "cumulative_mu", "rate_after",
                                  "reaches_target"]


def test_bad_order_and_foreign_rate_result(five):
    parcels, measures, crops = five
    with pytest.raises(InputError, match="unknown gap-plan order.*use 'area' or 'risk'"):
        close_gap(parcels, measures, order="random")
    rate = safe_utilisation_rate(parcels, measures, crops=crops)
    with pytest.raises(InputError, match="rate result was computed on other parcels"):
        close_gap(parcels.iloc[:3], rate)


def test_apply_gap_plan_adds_rows_and_keeps_the_ledger(five):
    parcels, measures, crops = five
    plan = close_gap(parcels, measures, crops=crops)
    new = apply_gap_plan(measures, plan, YEAR)
    assert len(new) == len(measures) + 1
    assert new.iloc[-1][["parcel_id", "measure_type", "measure_class", "year"]].tolist() == [
        "P5", "planned_strict_control", "strict_control", YEAR]
    # the existing rows are kept as they were (year becomes nullable Int64 for the new rows)
    pd.testing.assert_frame_equal(new.iloc[:len(measures)], measures, check_dtype=False)
    # the plan's promise holds: (55 + 25) / 100 = 80 %
    assert safe_utilisation_rate(parcels, new, crops=crops).rate == pytest.approx(0.80)
