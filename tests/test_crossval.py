"""Cross-validation on tiny line transects (x in metres), expected numbers by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from farmland.geostats.crossval import cross_validate
from farmland.geostats.estimators import IDW, LocalKriging
from farmland.geostats.variogram import VariogramModel

LINE4 = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
VALUES4 = np.array([0.0, 10.0, 20.0, 40.0])


def test_idw_leave_one_out_by_hand():
    res = cross_validate(IDW(k=2, power=2.0), LINE4, VALUES4)
    # x=0 from 10 (d 10) and 20 (d 20): (10/100 + 20/400) / (1/100 + 1/400) = 12
    # x=10 from 0 and 20: 10;  x=20 from 10 and 30: 25;  x=30 from 20 and 10: 18
    np.testing.assert_allclose(res["samples"]["predicted"], [12.0, 10.0, 25.0, 18.0])
    assert res["n"] == 4
    assert res["me"] == pytest.approx(-1.25)  # (12 + 0 + 5 − 22) / 4
    assert res["rmse"] == pytest.approx(math.sqrt(653 / 4))  # (144 + 0 + 25 + 484) / 4
    assert np.isnan(res["mean_squared_standardized_error"])  # IDW has no variance


def test_class_accuracy_uses_the_classify_callable():
    res = cross_validate(IDW(k=2), LINE4, VALUES4, classify=lambda v: np.where(v > 11, 2, 1))
    # observed classes 1 1 2 2, predicted (12, 10, 25, 18) 2 1 2 2 -> 3 of 4
    assert res["class_accuracy"] == pytest.approx(0.75)


def test_k_fold_with_one_sample_per_fold_equals_leave_one_out():
    loo = cross_validate(IDW(k=2), LINE4, VALUES4)
    kfold = cross_validate(lambda: IDW(k=2), LINE4, VALUES4, folds=4, seed=1)
    np.testing.assert_allclose(kfold["samples"]["predicted"], loo["samples"]["predicted"])
    assert sorted(kfold["samples"]["fold"]) == [0, 1, 2, 3]


def test_kriging_leave_one_out_by_hand():
    # spherical, no nugget, sill 1, range 20 m: C(10) = 0.3125, C(20) = 0
    model = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=20.0)
    xy = LINE4[:3]
    res = cross_validate(LocalKriging(k=2, variogram=model, log=False), xy, [1.0, 2.5, 3.0])
    frame = res["samples"]
    # middle from both ends: w = ½ ½ -> 2, μ = C(10) − ½ = −0.1875, σ² = 1 − 0.3125 + 0.1875
    # end at 0 from 10 (w 8/11) and 20 (w 3/11): 29/11, μ = −0.5, σ² = 1 − 2.5/11 + 0.5 = 14/11
    np.testing.assert_allclose(frame["predicted"], [29 / 11, 2.0, 23 / 11])
    np.testing.assert_allclose(frame["std_error"] ** 2, [14 / 11, 0.875, 14 / 11])
    assert res["me"] == pytest.approx(5 / 66)  # (18/11 − 0.5 − 10/11) / 3
    z = np.array(
        [18 / 11 / math.sqrt(14 / 11), -0.5 / math.sqrt(0.875), -10 / 11 / math.sqrt(14 / 11)]
    )
    assert res["mean_standardized_error"] == pytest.approx(z.mean())
    assert res["mean_squared_standardized_error"] == pytest.approx(np.mean(z**2))


def test_log_kriging_standardized_errors_are_on_the_log_scale():
    model = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=20.0)
    res = cross_validate(
        LocalKriging(k=2, variogram=model), LINE4[:3], [math.e, math.e**2, math.e**3]
    )
    frame = res["samples"]
    # middle: ln-mean (1 + 3)/2 = 2 equals ln 2nd value -> standardized error 0
    assert frame["kriging_mean"][1] == pytest.approx(2.0)
    assert frame["standardized_error"][1] == pytest.approx(0.0, abs=1e-12)


def test_duplicate_locations_are_left_out_together():
    xy = np.vstack([LINE4, [[0.0, 0.0]]])
    res = cross_validate(IDW(k=2), xy, np.append(VALUES4, 2.0))
    # both samples at x=0 (values 0 and 2) are predicted from x=10 and x=20: 12
    np.testing.assert_allclose(res["samples"]["predicted"].to_numpy()[[0, 4]], [12.0, 12.0])


def test_kriging_cross_validation_on_a_simulated_field_is_calibrated():
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20_000, (1500, 2))
    z = np.exp(
        gs.SRF(gs.Spherical(dim=2, var=1.0, len_scale=4000.0, nugget=0.1), seed=0)(
            (xy[:, 0], xy[:, 1])
        )
    )
    res = cross_validate(LocalKriging(k=16), xy, z)
    assert res["n"] == 1500
    assert abs(res["mean_standardized_error"]) < 0.1
    assert res["mean_squared_standardized_error"] == pytest.approx(1.0, abs=0.2)
    idw = cross_validate(IDW(k=16, log=True), xy, z)
    assert res["rmse"] < idw["rmse"]


def test_bad_folds_rejected():
    with pytest.raises(ValueError, match="folds must be None"):
        cross_validate(IDW(), LINE4, VALUES4, folds=1)
    with pytest.raises(TypeError, match="expected an estimator or a factory"):
        cross_validate(42, LINE4, VALUES4)


def test_a_second_pass_keeps_the_first_passs_moments():
    from farmland.geostats.crossval import LooRecorder

    model = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=20.0)
    recorder = LooRecorder()
    first = cross_validate(LocalKriging(k=2, variogram=model, log=False), LINE4[:3],
                           [1.0, 2.5, 3.0], leave_one_out=recorder.for_variable("cd"))
    assert recorder.kept == {"cd": 0}  # nothing to reuse yet
    recorder.next_pass()
    again = cross_validate(LocalKriging(k=2, variogram=model, log=False), LINE4[:3],
                           [1.0, 2.5, 3.0], leave_one_out=recorder.for_variable("cd"))
    assert recorder.kept == {"cd": 3}  # same model and samples: all three kept
    # the by-hand values of test_kriging_leave_one_out_by_hand
    np.testing.assert_array_equal(again["samples"]["predicted"], first["samples"]["predicted"])
    np.testing.assert_allclose(again["samples"]["predicted"], [29 / 11, 2.0, 23 / 11])
    refit = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=30.0)
    cross_validate(LocalKriging(k=2, variogram=refit, log=False), LINE4[:3], [1.0, 2.5, 3.0],
                   leave_one_out=recorder.for_variable("cd"))
    assert recorder.kept == {"cd": 0}  # another model: solved again


def _reusable_by_direct_search(coords, values, k, previous):
    """The reuse test as first written: every unchanged location's distances searched
    among the unchanged locations (the reference for the shared search)."""
    from scipy.spatial import cKDTree

    before = {xy: (row, v) for row, (xy, v) in
              enumerate(zip(map(tuple, previous.coords.tolist()), previous.values, strict=True))}
    now = dict(zip(map(tuple, coords.tolist()), values, strict=True))
    kept = [xy for xy, v in now.items() if xy in before and before[xy][1] == v]
    changed = [xy for xy in now if xy not in kept] + [xy for xy in before if xy not in kept]
    dist = cKDTree(kept).query(kept, k=[k + 1, k + 2])[0]
    near = cKDTree(changed).query(kept, k=1)[0]
    reused = {xy: before[xy][0] for xy, d, gap in zip(kept, dist, near, strict=True)
              if gap > d[0] * (1 + 1e-9) and d[1] > d[0]}
    return np.array([reused.get(xy, -1) for xy in now])


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_shared_neighbour_search_keeps_exactly_what_a_direct_search_keeps(seed):
    """Locations on a 10 m grid (many tied distances), three variables that each lack a
    few of them and a second pass: one search of all locations (NearestOthers) decides
    every location as searching each variable's unchanged locations directly does,
    and is reused by the later calls."""
    from farmland.geostats.crossval import LooMemory, NearestOthers, _reusable, _rows_in

    rng = np.random.default_rng(seed)
    grid = np.array([(x, y) for x in range(0, 600, 10) for y in range(0, 600, 10)], float)
    old = grid[rng.choice(len(grid), 900, replace=False)]
    added = grid[rng.choice(len(grid), 12, replace=False)]
    new = np.unique(np.vstack([old[6:], added]), axis=0)
    memories, others, k = {}, None, 8
    for variable in ("cd", "hg", "pb"):
        lacks = rng.choice(len(old), 60, replace=False)
        p_xy = np.delete(old, lacks, axis=0)
        memories[variable] = LooMemory(("m",), p_xy, rng.lognormal(size=len(p_xy)),
                                       np.zeros((3, len(p_xy))))
    others = NearestOthers(lambda: [m.coords for m in memories.values()])
    searched = []
    for variable, memory in memories.items():
        rows = _rows_in(memory.coords, new)
        values = np.where(rows >= 0, memory.values[np.maximum(rows, 0)], 1.0)
        values[rng.choice(len(new), 3, replace=False)] *= 2.0  # re-measured
        got = _reusable(new, values, k, memory, others)
        np.testing.assert_array_equal(got, _reusable_by_direct_search(new, values, k, memory))
        assert 100 < (got >= 0).sum() < len(new) - 100  # ties and changes drop many
        searched.append(others.coords)
    # the first call searched every memory's and its own locations; the others reused them
    assert searched[1] is searched[0] and searched[2] is searched[0]
    # a second pass: the earlier pass's locations are not all in B, so it searches again
    second = LooMemory(("m",), new, values, np.zeros((3, len(new))))
    fewer = np.delete(new, [0, 1], axis=0)
    got = _reusable(fewer, values[2:], k, second, others)
    np.testing.assert_array_equal(got, _reusable_by_direct_search(fewer, values[2:], k, second))
