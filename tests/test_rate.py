"""Safe-utilisation rate (domain.md §4), hand-computed on tiny tables."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
from conftest import parcel_table
from hypothesis import given, settings
from hypothesis import strategies as st

from farmland.errors import InputError
from farmland.rate.accounting import safe_utilisation_rate

YEAR = 2023


def measures_frame(rows):
    """rows: (parcel_id, measure_type, measure_class, year)."""
    ids, types, classes, years = zip(*rows, strict=True)
    return pd.DataFrame({"parcel_id": list(ids), "measure_type": list(types),
                         "measure_class": list(classes),
                         "year": pd.array(list(years), dtype="Int64")})


def crops_frame(rows):
    """rows: (sample_id, parcel_id, year, exceeds)."""
    sid, pid, years, exceeds = zip(*rows, strict=True)
    return pd.DataFrame({"sample_id": list(sid), "parcel_id": list(pid), "year": list(years),
                         "crop": "rice", "exceeds": pd.array(list(exceeds), dtype="boolean")})


def five_parcel_county():
    """The 5-parcel case, townships 东乡 (P1, P2) and 西乡 (P3, P4, P5), plus P6
    unclassified (5 亩) and P7 class 1 (8 亩) that never count (also test_cli_rate.py)."""
    parcels = parcel_table([
        ("P1", "东乡", 2, 10), ("P2", "东乡", 2, 20), ("P3", "西乡", 2, 30),
        ("P4", "西乡", 3, 15), ("P5", "西乡", 3, 25), ("P6", "西乡", None, 5),
        ("P7", "东乡", 1, 8)])
    measures = measures_frame([
        ("P1", "lime", "safe_use", YEAR), ("P1", "water_management", "safe_use", YEAR),
        ("P2", "lime", "safe_use", YEAR), ("P3", "foliar_barrier", "safe_use", YEAR),
        ("P4", "fallow", "strict_control", YEAR), ("PX", "lime", "safe_use", YEAR),
        ("P7", "lime", "safe_use", YEAR)])
    # P1 has a compliant crop sample, P2 an exceedance, P3 none (unverified)
    crops = crops_frame([("C1", "P1", YEAR, False), ("C2", "P2", YEAR, True)])
    return parcels, measures, crops


@pytest.fixture
def five():
    return five_parcel_county()


def row(result, name):
    return result.table.set_index("name").loc[name]


def test_five_parcel_county_rate(five):
    parcels, measures, crops = five
    r = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    c = r.county
    assert r.year == 2023
    # A2 = 10 + 20 + 30 = 60; A3 = 15 + 25 = 40
    assert (c["area2_mu"], c["area3_mu"]) == (60.0, 40.0)
    assert (c["n_parcels_2"], c["n_parcels_3"]) == (3, 2)
    # measures_only: achieved = P1 10 (verified) + P3 30 (no own sample, counted anyway);
    # P3 has a compliance rate to go by (P1, P2 samples), so it is "by rate", not unverified
    assert c["achieved2_mu"] == 40.0
    assert (c["by_rate2_mu"], c["unverified2_mu"]) == (30.0, 0.0)
    assert c["exceed2_mu"] == 20.0          # P2: measure + crop exceedance
    assert c["controlled3_mu"] == 15.0      # P4 fallow
    # rate = (10 + 30 + 15) / (60 + 40) = 55 / 100
    assert (c["numerator_mu"], c["denominator_mu"]) == (55.0, 100.0)
    assert c["rate"] == pytest.approx(0.55)
    # gap = 0.91 * 100 - 55 = 36 亩 = 36 / 15 = 2.4 hm²
    assert c["gap_mu"] == pytest.approx(36.0)
    assert c["gap_hm2"] == pytest.approx(2.4)
    assert c["denominator_hm2"] == pytest.approx(100 / 15)
    assert not c["met"]
    assert c["target"] == 0.91


def test_five_parcel_township_rows(five):
    parcels, measures, crops = five
    r = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    assert list(r.table["level"]) == ["county", "township", "township"]
    east, west = row(r, "东乡"), row(r, "西乡")
    # 东乡: (P1 10) / (10 + 20) = 1/3; gap 0.91 * 30 - 10 = 17.3
    assert east["rate"] == pytest.approx(1 / 3)
    assert east["gap_mu"] == pytest.approx(17.3)
    # 西乡: (P3 30 + P4 15) / (30 + 40) = 45/70; gap 0.91 * 70 - 45 = 18.7
    assert west["rate"] == pytest.approx(45 / 70)
    assert west["gap_mu"] == pytest.approx(18.7)


def test_unverified_not_counted_when_switched_off(five):
    parcels, measures, crops = five
    r = safe_utilisation_rate(parcels, measures, crops=crops, count_unverified=False)
    c = r.county
    assert r.accounting == "parcel_verified"   # the older switch maps to the new mode
    # (10 + 15) / 100 = 25 %; P3 still reported; gap 91 - 25 = 66
    assert c["rate"] == pytest.approx(0.25)
    assert c["achieved2_mu"] == 10.0
    assert c["by_rate2_mu"] == 30.0
    assert c["gap_mu"] == pytest.approx(66.0)


def test_parcel_counts_once_with_two_measures(five):
    parcels, measures, crops = five
    status = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only").parcels.set_index(
        "parcel_id")
    assert status.loc["P1", "status"] == "achieved_verified"
    assert status.loc[["P2", "P3", "P4", "P5"], "status"].tolist() == [
        "exceeded", "achieved_by_rate", "controlled", "uncontrolled"]
    # P1 carries two safe-use measures but contributes its 10 亩 once
    east = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only").table.set_index("name")
    assert east.loc["东乡", "achieved2_mu"] == 10.0


def test_unknown_measures_reported_and_logged(five, caplog):
    parcels, measures, crops = five
    with caplog.at_level(logging.WARNING, logger="farmland.rate.accounting"):
        r = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    assert r.unknown_measures["parcel_id"].tolist() == ["PX"]
    assert "1 measure(s) name parcel ids not in the parcels" in caplog.text
    assert "PX" in caplog.text


def test_unclassified_and_class1_reported_never_counted(five):
    parcels, measures, crops = five
    r = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    assert r.unclassified_mu == 5.0
    assert r.county["unclassified_mu"] == 5.0
    assert r.measures_on_class1["parcel_id"].tolist() == ["P7"]
    assert r.county["denominator_mu"] == 100.0   # P6 and P7 are not in the denominator


def test_safe_use_on_class3_is_a_mismatch_and_not_counted(five):
    parcels, measures, crops = five
    extra = measures_frame([("P5", "lime", "safe_use", YEAR)])
    r = safe_utilisation_rate(parcels, pd.concat([measures, extra]), crops=crops, accounting="measures_only")
    mm = r.mismatches
    assert mm["parcel_id"].tolist() == ["P5"]
    assert mm["issue"].tolist() == ["safe_use_on_class3"]
    assert not mm["counts_as_measure"].iloc[0]
    assert r.county["rate"] == pytest.approx(0.55)   # unchanged: 55 / 100


def test_strict_control_on_class2_counts_only_when_it_removes_the_crop():
    parcels = parcel_table([("A", "T", 2, 10), ("B", "T", 2, 30)])
    measures = measures_frame([("A", "return_to_forest_grass", "strict_control", YEAR),
                               ("B", "monitoring", "strict_control", YEAR)])
    r = safe_utilisation_rate(parcels, measures, accounting="measures_only")
    # A counts (crop removed, no crop data -> unverified, counted); B does not: 10 / 40
    assert r.county["rate"] == pytest.approx(0.25)
    mm = r.mismatches.set_index("parcel_id")
    assert mm["issue"].tolist() == ["strict_control_on_class2"] * 2
    assert mm["counts_as_measure"].to_dict() == {"A": True, "B": False}


def test_rate_undefined_without_class2_or_class3_land():
    parcels = parcel_table([("A", "T", 1, 10), ("B", "T", None, 4)])
    r = safe_utilisation_rate(parcels, measures_frame([("A", "lime", "safe_use", YEAR)]))
    assert math.isnan(r.rate)
    assert r.county["met"] is pd.NA
    assert r.county["gap_mu"] == 0.0
    assert r.to_dict()["rows"][0]["rate"] is None


def test_latest_year_is_used_and_other_years_ignored(caplog):
    parcels = parcel_table([("A", "T", 2, 10), ("B", "T", 2, 30)])
    measures = measures_frame([("A", "lime", "safe_use", 2023), ("B", "lime", "safe_use", 2022)])
    # A's 2022 exceedance does not block 2023; its 2023 sample complies
    crops = crops_frame([("c1", "A", 2022, True), ("c2", "A", 2023, False)])
    with caplog.at_level(logging.INFO, logger="farmland.rate.accounting"):
        r = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    assert r.year == 2023
    assert "using 2023, the latest year" in caplog.text
    assert r.county["rate"] == pytest.approx(10 / 40)
    # the same data for 2022: B counts (no crop sample, unverified); A has no 2022 measure
    r22 = safe_utilisation_rate(parcels, measures, crops=crops, year=2022, accounting="measures_only")
    assert r22.county["rate"] == pytest.approx(30 / 40)


def test_a_year_without_measures_is_warned_with_the_years_present(five, caplog):
    """--year 2030 on a 2023 ledger: a 0 % rate is what the data say, but the ledger's
    years are named so a typo'd year is not taken for the county's result."""
    parcels, measures, crops = five
    with caplog.at_level(logging.WARNING):
        r = safe_utilisation_rate(parcels, measures, crops=crops, year=2030,
                                  accounting="measures_only")
    assert r.year == 2030
    assert r.county["numerator_mu"] == 0.0 and r.county["gap_mu"] == pytest.approx(91.0)
    assert ("the measures ledger holds no measure for 2030 (its years: 2023)"
            in caplog.text)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        safe_utilisation_rate(parcels, measures, crops=crops, year=2023,
                              accounting="measures_only")
    assert "holds no measure" not in caplog.text


def test_target_met_and_gap_zero():
    parcels = parcel_table([("A", "T", 2, 91), ("B", "T", 3, 9)])
    r = safe_utilisation_rate(parcels, measures_frame([("A", "lime", "safe_use", YEAR)]),
                              accounting="measures_only")
    # 91 / 100 = 91 % exactly the target -> met, gap 0
    assert bool(r.county["met"])
    assert r.county["gap_mu"] == 0.0


def test_missing_column_error():
    parcels = parcel_table([("A", "T", 2, 10)]).drop(columns="area_mu")
    with pytest.raises(InputError, match=r"parcels lack the column\(s\) area_mu"):
        safe_utilisation_rate(parcels, None, accounting="measures_only")


def test_bad_measure_class_error():
    parcels = parcel_table([("A", "T", 2, 10)])
    measures = measures_frame([("A", "lime", "safe_use", YEAR), ("A", "lime", "other", YEAR)])
    with pytest.raises(InputError, match=r"row/id 1, column 'measure_class': measure_class "
                                         r"must be 'safe_use' or 'strict_control' \(got 'other'\)"):
        safe_utilisation_rate(parcels, measures, accounting="measures_only")


def test_duplicate_parcel_ids_error():
    parcels = parcel_table([("A", "T", 2, 10), ("A", "T", 3, 5)])
    with pytest.raises(InputError, match="parcel ids must be unique"):
        safe_utilisation_rate(parcels, None, accounting="measures_only")


def test_inputs_not_modified(five):
    parcels, measures, crops = five
    before = parcels.copy(), measures.copy(), crops.copy()
    safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only")
    for a, b in zip(before, (parcels, measures, crops), strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_json_ready(five):
    parcels, measures, crops = five
    d = safe_utilisation_rate(parcels, measures, crops=crops, accounting="measures_only").to_dict()
    text = json.dumps(d, ensure_ascii=False)
    assert '"name": "全县 County"' in text
    assert d["n_unknown_measures"] == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["甲", "乙", "丙"]), st.sampled_from([None, 1, 2, 3]),
                          st.floats(0.1, 500), st.booleans(), st.booleans(),
                          st.sampled_from([None, False, True])), min_size=1, max_size=25),
       st.booleans())
def test_rate_invariants(rows, count_unverified):
    """Rate in [0, 1] or NaN; township rows sum to the county row; gap closes the target."""
    parcels = parcel_table([(f"P{i}", t, c, a) for i, (t, c, a, *_) in enumerate(rows)])
    m = [(f"P{i}", "lime", "safe_use", YEAR) for i, r in enumerate(rows) if r[3]]
    m += [(f"P{i}", "fallow", "strict_control", YEAR) for i, r in enumerate(rows) if r[4]]
    c = [(f"c{i}", f"P{i}", YEAR, r[5]) for i, r in enumerate(rows) if r[5] is not None]
    r = safe_utilisation_rate(parcels, measures_frame(m) if m else None,
                              crops=crops_frame(c) if c else None, year=YEAR,
                              count_unverified=count_unverified)
    rates = r.table["rate"].to_numpy(float)
    assert np.all(np.isnan(rates) | ((rates >= 0) & (rates <= 1)))
    towns = r.table.loc[r.table["level"] == "township"]
    sums = ["area2_mu", "area3_mu", "achieved2_mu", "unverified2_mu", "exceed2_mu",
            "controlled3_mu", "numerator_mu", "denominator_mu", "n_parcels_2"]
    for col in sums:
        assert towns[col].sum() == pytest.approx(r.county[col])
    defined = r.table["denominator_mu"] > 0
    after = r.table["numerator_mu"] + r.table["gap_mu"]
    assert np.all(after[defined] >= 0.91 * r.table["denominator_mu"][defined] - 1e-6)
