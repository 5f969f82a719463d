"""Sample locations prepared once per set of samples inside ``reusing_locations``
(:mod:`farmland.geostats.located`)."""

from __future__ import annotations

import logging

import numpy as np

from farmland.geostats.estimators import LocalKriging
from farmland.geostats.located import located_samples, reusing_locations
from farmland.geostats.variogram import VariogramModel

XY = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
Z = np.array([1.0, 2.0, 4.0, 3.0, 5.0])


def test_duplicates_are_averaged_and_the_tree_holds_the_distinct_locations():
    coords, values, location, tree = located_samples(XY, Z)
    assert coords.tolist() == [[0.0, 0.0], [0.0, 100.0], [100.0, 0.0], [100.0, 100.0]]
    assert values.tolist() == [1.0, 3.0, 3.0, 5.0]  # (2 + 4) / 2 at (100, 0)
    assert location.tolist() == [0, 2, 2, 1, 3]
    assert tree.n == 4


def test_the_same_samples_are_located_once_inside_the_context(caplog):
    outside = [located_samples(XY, Z)[3] for _ in range(2)]
    assert outside[0] is not outside[1]
    with reusing_locations(), caplog.at_level(logging.INFO, logger="farmland"):
        caplog.clear()
        first = located_samples(XY, Z)
        first[0][0] = -1.0  # a caller changing its arrays does not change the kept ones
        again = located_samples(XY, Z)
        other = located_samples(XY, Z * 2)
    assert again[3] is first[3] and other[3] is not first[3]
    assert again[0].tolist() == [[0.0, 0.0], [0.0, 100.0], [100.0, 0.0], [100.0, 100.0]]
    assert other[1].tolist() == [2.0, 6.0, 6.0, 10.0]
    # each fit logs the merge, kept or not
    assert caplog.text.count("averaged 2 samples sharing 1 locations") == 3
    with reusing_locations():
        assert located_samples(XY, Z)[3] is not first[3]  # nothing kept after the context


def test_kriging_inside_the_context_equals_kriging_outside():
    model = VariogramModel("spherical", nugget=0.1, sill=1.0, range_=300.0)
    targets = np.array([[50.0, 50.0], [10.0, 90.0]])
    plain = LocalKriging(k=3, variogram=model).fit(XY, Z)
    with reusing_locations():
        LocalKriging(k=3, variogram=model).fit(XY, Z)
        kept = LocalKriging(k=3, variogram=model).fit(XY, Z)
    np.testing.assert_array_equal(kept.predict(targets), plain.predict(targets))
    np.testing.assert_array_equal(kept.leave_one_out()["predicted"],
                                  plain.leave_one_out()["predicted"])
