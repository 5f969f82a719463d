"""The crop adjustment rules stated once (classify/crops.py ``step_blocks``), by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmland.classify.crops import adjust_classes, step_blocks

CFG = {"allow_2_to_1": True, "allow_3_to_2": True, "raise_class1": True,
       "min_samples_lower": 3, "min_samples_raise": 1, "min_compliant_years": 2,
       "min_share_grade1_for_3_to_2": 1.0}

# n samples, n_exceed (grade >= 2), share of grade 1, any grade 3, distinct years
STATS = pd.DataFrame({
    "n": [3, 2, 4, 3, 3, np.nan],
    "n_exceed": [0, 0, 1, 0, 1, np.nan],
    "share_grade1": [1.0, 1.0, 0.75, 1.0, 2 / 3, np.nan],
    "any_grade3": [False, False, False, False, True, np.nan],
    "n_years": [2, 2, 2, 1, 2, np.nan],
}, index=["clean", "two", "one_over", "one_year", "grade3", "none"])


@pytest.mark.parametrize(("step", "expected"), [
    ("2->1", ["", "few_samples", "exceedance", "years", "exceedance", "few_samples"]),
    ("3->2", ["", "few_samples", "share_grade1", "", "grade3", "few_samples"]),
    ("1->2", ["no_exceedance", "no_exceedance", "", "no_exceedance", "", "few_samples"]),
])
def test_what_blocks_each_step(step, expected):
    # the crop data hold two years, so lowering 2 -> 1 needs compliant samples in two
    assert step_blocks(STATS, CFG, step, years_in_data=2).tolist() == expected


def test_one_year_of_data_needs_one_year():
    assert step_blocks(STATS.loc[["one_year"]], CFG, "2->1", years_in_data=1).tolist() == [""]


def test_a_switched_off_step_is_named_first():
    cfg = {**CFG, "allow_2_to_1": False}
    assert step_blocks(STATS, cfg, "2->1", years_in_data=2).tolist() == ["not_allowed"] * 6


def test_a_lower_grade1_share_lets_3_to_2_through():
    cfg = {**CFG, "min_share_grade1_for_3_to_2": 0.75}
    assert step_blocks(STATS.loc[["one_over"]], cfg, "3->2", years_in_data=2).tolist() == [""]


def test_adjust_classes_applies_a_step_exactly_where_nothing_blocks_it():
    stats = STATS.copy()
    stats.attrs["years_in_data"] = 2
    units = pd.Series(["clean", "clean", "clean", "one_over", "one_over", "one_year", "none"])
    soil = pd.Series([1, 2, 3, 1, 2, 2, 2], dtype="Int8")
    out = adjust_classes(soil, units, stats, rules={"crops": CFG})
    assert out["final_class"].tolist() == [1, 1, 2, 2, 2, 2, 2]
    assert out["crop_rule"].tolist() == ["", "crops:2->1", "crops:3->2", "crops:1->2", "", "", ""]
