"""The point rule's per-unit tables (:mod:`farmland.classify.unit_tables`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from farmland.classify.unit_tables import class_counts, joined_per_unit


def test_class_counts_by_hand():
    unit = pd.Series(["b", "a", "b", None, "b", "c"], dtype="str", name="_unit")
    cls = pd.Series([3, 1, 1, 2, 1, 4], name="point_class")
    table = class_counts(unit, cls)
    # a: one class 1; b: two class 1 and one class 3; c: its class 4 is not counted;
    # the sample without a unit is left out
    assert table.index.tolist() == ["a", "b", "c"]
    assert table.columns.tolist() == [1, 2, 3]
    assert table.to_numpy().tolist() == [[1, 0, 0], [2, 0, 1], [0, 0, 0]]
    expected = pd.crosstab(unit, cls).reindex(columns=[1, 2, 3], fill_value=0)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_joined_per_unit_by_hand():
    unit = pd.Series(["u2", "u1", "u2", None, "u1"], dtype="str", name="_unit")
    text = pd.Series(["S1", "S2", "S3", "S4", "S5"], dtype="str", name="sample_id")
    joined = joined_per_unit(unit, text)
    assert joined.to_dict() == {"u1": "S2,S5", "u2": "S1,S3"}
    expected = text.groupby(unit).agg(",".join)
    key = ["u2", "u1", "u2"]
    np.testing.assert_array_equal(joined.reindex(key).to_numpy(),
                                  expected.reindex(key).to_numpy())


def test_empty_tables():
    unit = pd.Series([], dtype="str", name="_unit")
    assert class_counts(unit, pd.Series([], dtype=int)).shape == (0, 3)
    assert joined_per_unit(unit, pd.Series([], dtype="str")).empty
