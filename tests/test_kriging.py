"""The compiled local-kriging kernel against the numpy algorithm it replaced (issue 19).

``_reference`` is the batched numpy covariance-form solver as it was before the
kernel (k nearest samples from the KD-tree, the (k+1) × (k+1) system with a
decoupled unit row for a missing neighbour, ``np.linalg.solve``), kept here as the
slow reference. Predictions must stay within 1e-6 of it on the log scale; they agree
to about 1e-13. Coordinates are metres.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial import cKDTree

from farmland.geostats import kriging
from farmland.geostats.estimators import IDW, LocalKriging, share_neighbours
from farmland.geostats.variogram import MODEL_SHAPES, VariogramModel


def _reference(model, xy, z, targets, k, radius=None, exclude=None):
    """(3, m) mean, variance, μ by the pre-kernel numpy algorithm, one target at a time."""
    tree, n = cKDTree(xy), len(xy)
    k_query = min(k + (exclude is not None), n)
    bound = np.inf if radius is None else radius
    _, idx = tree.query(targets, k=k_query, distance_upper_bound=bound)
    idx = idx.reshape(len(targets), -1)
    out = np.full((3, len(targets)), np.nan)
    for t, (target, row) in enumerate(zip(targets, idx, strict=True)):
        if exclude is not None:
            row = np.append(row[row != exclude[t]], n)[: k_query - 1]
        row = np.sort(row)
        found = row < n
        if not found.any():
            continue
        pts = xy[np.where(found, row, 0)]
        cov = model.covariance(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1)))
        cov = np.where(found[:, None] & found[None, :], cov, 0.0)
        m = len(row)
        a = np.zeros((m + 1, m + 1))
        a[:m, :m] = cov
        a[np.arange(m), np.arange(m)] = np.where(found, model.sill, 1.0)
        a[:m, m] = a[m, :m] = found
        c0 = np.where(found, model.covariance(np.hypot(*(pts - target).T)), 0.0)
        rhs = np.append(c0, 1.0)
        sol = np.linalg.solve(a, rhs)
        w, mu = sol[:m], sol[m]
        out[:, t] = w @ np.where(found, z[np.where(found, row, 0)], 0.0), \
            max(model.sill - w @ c0 - mu, 0.0), mu
    return out


def _case(seed: int, n: int = 300, m: int = 3000):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (n, 2))
    lnz = np.cumsum(rng.normal(size=n)) * 0.05 + rng.normal(size=n)  # ln mg/kg
    gx, gy = np.meshgrid(np.linspace(-300, 5300, int(np.sqrt(m))),
                         np.linspace(-300, 5300, int(np.sqrt(m))))
    targets = np.vstack([np.column_stack([gx.ravel(), gy.ravel()]), xy[:20]])  # incl. samples
    return xy, lnz, targets


@pytest.mark.parametrize("name", sorted(MODEL_SHAPES))
@pytest.mark.parametrize("nugget", [0.001, 0.15])  # 0.001: about the fitted Gaussian floor
@pytest.mark.parametrize(("k", "radius"), [(16, None), (8, 400.0), (32, None)])
def test_kernel_matches_the_numpy_algorithm_within_1e_6(name, nugget, k, radius):
    xy, lnz, targets = _case(7)
    model = VariogramModel(name, nugget=nugget, sill=0.9 + nugget, range_=1800.0)
    got = kriging.ordinary_kriging(model, xy, lnz, cKDTree(xy), targets, k=k, radius=radius)
    ref = _reference(model, xy, lnz, targets, k, radius)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    if radius is not None:
        assert np.isnan(ref[0]).any()  # some cells have no sample within 400 m
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_leave_one_out_matches_the_numpy_algorithm():
    xy, lnz, _ = _case(8)
    model = VariogramModel("exponential", nugget=0.1, sill=1.0, range_=1500.0)
    rows = np.arange(len(xy))
    got = kriging.ordinary_kriging(model, xy, lnz, cKDTree(xy), xy, k=16, exclude=rows)
    np.testing.assert_allclose(got, _reference(model, xy, lnz, xy, 16, exclude=rows), atol=1e-9)


def test_near_coincident_samples_without_nugget_take_the_numpy_path(caplog):
    xy = np.array([[0.0, 0.0], [1e-7, 0.0], [50.0, 0.0], [0.0, 60.0], [70.0, 70.0]])
    z = np.array([1.0, 1.0, 2.0, 3.0, 4.0])
    model = VariogramModel("gaussian", nugget=0.0, sill=1.0, range_=500.0)
    targets = np.array([[10.0, 10.0], [40.0, 30.0]])
    with caplog.at_level(logging.WARNING):
        got = kriging.ordinary_kriging(model, xy, z, cKDTree(xy), targets, k=5)
    assert "singular kriging system" in caplog.text
    assert np.isfinite(got).all()
    assert (got[1] >= 0).all()


def test_neighbourhoods_group_targets_with_identical_sets():
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    # k = 2: targets left of x = 50 have samples {0, 2}, right of it {1, 3}
    targets = np.array([[10.0, 40.0], [90.0, 40.0], [5.0, 45.0], [95.0, 45.0]])
    nb = kriging.neighbourhoods(cKDTree(xy), targets, 2)
    np.testing.assert_array_equal(nb.sets, [[0, 2], [1, 3], [0, 2], [1, 3]])
    groups = [sorted(nb.order[a:b]) for a, b in zip(nb.starts[:-1], nb.starts[1:], strict=True)]
    assert sorted(groups) == [[0, 2], [1, 3]]


def test_shared_neighbours_give_the_results_of_separate_searches():
    xy, lnz, targets = _case(9)
    models = [VariogramModel("spherical", 0.1, 1.0, 1500.0),
              VariogramModel("exponential", 0.2, 0.8, 2500.0)]
    alone = [LocalKriging(k=16, variogram=m).fit(xy, np.exp(lnz * (i + 1))) for i, m in
             enumerate(models)]
    shared = [LocalKriging(k=16, variogram=m).fit(xy, np.exp(lnz * (i + 1))) for i, m in
              enumerate(models)]
    assert share_neighbours(shared, targets) == 1
    assert shared[0]._shared[1] is shared[1]._shared[1]
    for a, b in zip(alone, shared, strict=True):
        for x, y in zip(a.predict_distribution(targets), b.predict_distribution(targets),
                        strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.predict(targets), b.predict(targets))


def test_share_neighbours_leaves_other_samples_and_estimators_alone():
    xy, lnz, targets = _case(10)
    model = VariogramModel("spherical", 0.1, 1.0, 1500.0)
    # 20 locations fewer than the other set: more than k = 16, no shared search
    fewer = LocalKriging(k=16, variogram=model).fit(xy[20:], np.exp(lnz[20:]))
    other_k = LocalKriging(k=8, variogram=model).fit(xy, np.exp(lnz))
    idw = IDW().fit(xy, np.exp(lnz))
    full = LocalKriging(k=16, variogram=model).fit(xy, np.exp(lnz))
    assert share_neighbours([fewer, other_k, idw, full], targets) == 0
    assert full._shared is None


def test_sets_missing_a_few_locations_share_one_search_with_the_same_results():
    """Three variables: all samples, 3 left out (outliers), 5 others left out: one search
    of the union for k + 5 neighbours; predictions equal those of separate searches."""
    xy, lnz, targets = _case(12)
    model = VariogramModel("spherical", 0.1, 1.0, 1500.0)
    keep = [np.ones(len(xy), bool), np.isin(np.arange(len(xy)), [3, 17, 40], invert=True),
            np.isin(np.arange(len(xy)), [5, 6, 7, 50, 51], invert=True)]
    alone = [LocalKriging(k=16, variogram=model).fit(xy[m], np.exp(lnz[m] * (i + 1)))
             for i, m in enumerate(keep)]
    shared = [LocalKriging(k=16, variogram=model).fit(xy[m], np.exp(lnz[m] * (i + 1)))
              for i, m in enumerate(keep)]
    assert share_neighbours(shared, targets) == 2
    for a, b in zip(alone, shared, strict=True):
        nb = b._shared[1]
        np.testing.assert_array_equal(nb.sets, kriging.neighbour_sets(a.tree_, targets, 16,
                                                                      None, None))
        for x, y in zip(a.predict_distribution(targets), b.predict_distribution(targets),
                        strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


def test_concurrent_calls_from_threads_give_the_single_thread_results():
    from concurrent.futures import ThreadPoolExecutor

    xy, lnz, targets = _case(11)
    model = VariogramModel("spherical", 0.1, 1.0, 1500.0)
    tree = cKDTree(xy)
    alone = kriging.ordinary_kriging(model, xy, lnz, tree, targets, k=16)
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: kriging.ordinary_kriging(model, xy, lnz, tree, targets,
                                                                 k=16), range(4)))
    for got in runs:
        np.testing.assert_array_equal(got, alone)


def test_first_present_keeps_the_nearest_rows_of_a_set_sorted():
    from farmland.geostats.kernels import first_present

    # tree rows by distance per target; the tree has 6 rows (index 6 = no neighbour)
    idx = np.array([[4, 0, 5, 2, 1, 3],
                    [1, 3, 6, 6, 6, 6],
                    [2, 4, 1, 0, 5, 3]])
    # set 0 lacks tree rows 0 and 5 (its rows 0..3 are tree rows 1..4); set 1 has all six
    # rows in another order (not monotone: the general path); set 2 is set 0's monotone
    # lookup (row 2's three nearest are all in it: the sorted path)
    lookups = np.array([[-1, 0, 1, 2, 3, -1, -1],
                        [5, 4, 3, 2, 1, 0, -1],
                        [-1, 0, 1, 2, 3, -1, -1]], dtype=np.int32)
    out = np.empty((3, 3, 3), dtype=np.int32)
    first_present(idx, lookups, np.array([4, 6, 4]), np.array([True, False, True]), out)
    # set 0, target 0: tree rows 4, 2, 1 -> set rows 3, 1, 0; target 1: 1, 3, then none (4);
    # target 2: tree rows 2, 4, 1 -> 1, 3, 0
    assert out[0].tolist() == [[0, 1, 3], [0, 2, 4], [0, 1, 3]]
    # set 1: tree rows 4, 0, 5 -> 1, 5, 0; 1, 3 -> 4, 2 and none (6); 2, 4, 1 -> 3, 1, 4
    assert out[1].tolist() == [[0, 1, 5], [2, 4, 6], [1, 3, 4]]
    assert out[2].tolist() == out[0].tolist()


def test_unique_locations_by_hand_and_as_numpy():
    coords = np.array([[5.0, 2.0], [1.0, 9.0], [5.0, 2.0], [1.0, 3.0], [5.0, 1.0]])
    unique, location, counts = kriging.unique_locations(coords)
    assert unique.tolist() == [[1.0, 3.0], [1.0, 9.0], [5.0, 1.0], [5.0, 2.0]]  # x, then y
    assert location.tolist() == [3, 1, 3, 0, 2]
    assert counts.tolist() == [1, 1, 1, 2]
    rng = np.random.default_rng(2)
    for xy in (np.round(rng.uniform(1, 50, (3000, 2))), rng.uniform(-9, 9, (500, 2)),
               np.array([[0.0, 1.0], [-0.0, 1.0]]), np.array([[np.nan, 1.0], [np.nan, 1.0]])):
        expected = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
        got = kriging.unique_locations(xy)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1].ravel())
        np.testing.assert_array_equal(got[2], expected[2])


def test_one_thread_kernels_give_the_parallel_kernels_results_bit_for_bit():
    """The demo's processes krige with the one-thread kernels, `farmland classify` on a
    multi-core machine with the parallel ones: the same numbers, not nearly the same."""
    from farmland.geostats import kernels

    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 5_000, (400, 2))
    z = rng.normal(size=400)
    targets = rng.uniform(0, 5_000, (3 * kernels.PARALLEL_FROM, 2))
    tree = cKDTree(xy)
    nb = kriging.neighbourhoods(tree, targets, 12)
    code = kernels.MODEL_CODES["spherical"]
    runs = []
    for krige in ("serial", "parallel"):
        out = np.full((3, len(targets)), np.nan)
        failed = np.zeros(len(nb.starts) - 1, dtype=bool)
        args = (xy, z, nb.sets, nb.order, nb.starts, targets, code, 0.2, 0.8, 1_500.0, out,
                failed)
        if krige == "serial":
            kernels._krige_range(*args, 0, len(nb.starts) - 1)
        else:
            kernels._krige_parallel(*args, 64)
        runs.append(out)
    assert np.isfinite(runs[0]).all()   # every target written
    np.testing.assert_array_equal(runs[0], runs[1])

    keys = np.empty(len(nb.sets), dtype=np.uint64)
    kernels._hash_range(nb.sets, keys, 0, len(keys))
    parallel_keys = np.empty_like(keys)
    kernels._hash_parallel(nb.sets, parallel_keys)
    np.testing.assert_array_equal(keys, parallel_keys)

    idx = tree.query(targets, k=20)[1]
    lookups = np.stack([np.append(np.where(rng.random(400) < p, np.arange(400), -1), -1)
                        for p in (1.0, 0.9)]).astype(np.int32)
    outs = [np.empty((2, len(targets), 12), dtype=np.int32) for _ in range(2)]
    args = (idx, lookups, np.array([400, 400]), np.array([True, True]))
    kernels._first_present_range(*args, outs[0], 0, len(targets))
    kernels._first_present_parallel(*args, outs[1])
    np.testing.assert_array_equal(outs[0], outs[1])


_WARM_UP_THEN_CLASSIFY = """
import sys
from farmland.cli import main
from farmland.cli.parallel import one_thread
from farmland.geostats import kernels

names = ("_krige_range", "_hash_range", "group_starts", "_first_present_range")
kernels.warm_up()
warmed = {n: set(getattr(kernels, n).signatures) for n in names}
assert all(warmed.values()), warmed
with one_thread():
    code = main.main(args=sys.argv[1:], prog_name="farmland", standalone_mode=False)
assert code in (0, None), code
used = {n: set(getattr(kernels, n).signatures) for n in names}
assert used == warmed, (used, warmed)
"""


def test_warm_up_compiles_the_kernels_a_classification_calls(tmp_path):
    """The demo's second process compiles the kernels (``kernels.warm_up``) for the first
    to load: the demo's classification, held to one thread as there, then calls no kernel
    with types the warm-up did not compile."""
    import subprocess
    import sys
    from pathlib import Path

    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    argv = ["classify", "--parcels", str(demo / "parcels.gpkg"), "--parcels-layer", "DLTB",
            "--crs", "EPSG:4545", "--samples", str(demo / "soil_samples.csv"),
            "-o", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-c", _WARM_UP_THEN_CLASSIFY, *argv],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_kernels_import_without_the_rest_of_geostats():
    """The worker imports farmland.geostats.kernels to compile it while the demo's process
    is still importing: the package's names load on first use, and all of them resolve."""
    import subprocess
    import sys

    code = ("import sys, farmland.geostats.kernels\n"
            "assert 'farmland.geostats.estimators' not in sys.modules\n"
            "assert 'pandas' not in sys.modules\n"
            "import farmland.geostats as g\n"
            "assert sorted(g.__all__) == sorted(g._WHERE)\n"
            "assert all(getattr(g, n) is not None for n in g.__all__)\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_process_held_to_one_thread_uses_the_one_thread_kernels():
    import numba

    from farmland.cli.parallel import one_thread
    from farmland.geostats import kernels

    assert not kernels.parallel(kernels.PARALLEL_FROM - 1)
    assert kernels.parallel(kernels.PARALLEL_FROM) == (numba.get_num_threads() > 1)
    with one_thread():
        assert not kernels.parallel(10**7)
