"""IDW, local ordinary (log-)kriging, exceedance and class probabilities.

Coordinates are metres (any projected CRS, e.g. EPSG:4545); hand-checkable cases
use two or three samples on a line. Hand computations are written out beside the
expected numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from farmland.errors import InputError
from farmland.geostats import kriging
from farmland.geostats.estimators import (
    IDW,
    LocalKriging,
    class_probabilities,
    exceedance_probability,
)
from farmland.geostats.variogram import VariogramModel

TWO_XY = np.array([[0.0, 0.0], [10.0, 0.0]])
#: spherical, no nugget, sill 1, range 20 m: γ(5) = 1.5·0.25 − 0.5·0.125·0.125 = 0.3671875,
#: γ(10) = 0.75 − 0.0625 = 0.6875, so C(5) = 0.6328125 and C(10) = 0.3125
SPH20 = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=20.0)


# ----------------------------------------------------------------------------- IDW


def test_idw_midpoint_and_quarter_point_by_hand():
    est = IDW(k=2, power=2.0).fit(TWO_XY, [0.0, 10.0])
    # x=5: equal weights -> 5; x=2.5: (0/6.25 + 10/56.25) / (1/6.25 + 1/56.25) = 1.0
    got = est.predict([[5.0, 0.0], [2.5, 0.0]])
    np.testing.assert_allclose(got, [5.0, 1.0], rtol=1e-12)


def test_idw_is_exact_at_data_points():
    est = IDW(k=2).fit(TWO_XY, [0.0, 10.0])
    np.testing.assert_array_equal(est.predict(TWO_XY), [0.0, 10.0])


def test_idw_max_distance_gives_nan_beyond_reach():
    est = IDW(k=2, max_distance=3.0).fit(TWO_XY, [0.0, 10.0])
    got = est.predict([[5.0, 0.0], [2.5, 0.0], [5.0, 100.0]])
    # x=5 is 5 m from both samples -> NaN; x=2.5 reaches only the sample at 0 -> 0
    assert np.isnan(got[0]) and got[1] == 0.0 and np.isnan(got[2])


def test_idw_log_is_weighted_geometric_mean():
    est = IDW(k=2, log=True).fit(TWO_XY, [1.0, 100.0])
    assert est.predict([[5.0, 0.0]])[0] == pytest.approx(10.0)  # exp((ln 1 + ln 100) / 2)


def test_idw_duplicate_locations_are_averaged():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    est = IDW(k=3).fit(xy, [2.0, 4.0, 10.0])
    assert len(est.coords_) == 2
    assert est.predict([[0.0, 0.0]])[0] == pytest.approx(3.0)


def test_idw_gives_no_distribution():
    est = IDW().fit(TWO_XY, [1.0, 2.0])
    with pytest.raises(NotImplementedError, match="IDW gives no distribution"):
        est.predict_distribution(TWO_XY)
    with pytest.raises(NotImplementedError, match="IDW gives no distribution"):
        est.exceedance_probability(TWO_XY, 1.0)


def test_idw_init_stores_parameters_only():
    est = IDW(k=5, power=1.0, max_distance=100.0, log=True)
    assert est.get_params() == {"k": 5, "power": 1.0, "max_distance": 100.0, "log": True}
    assert not hasattr(est, "tree_")


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("xy", "values", "log", "message"),
    [
        (TWO_XY, [1.0, -2.0], True, r"row/id 1: interpolation needs finite values > 0 .*got -2\.0"),
        (TWO_XY, [1.0, np.nan], False, r"row/id 1: interpolation needs finite values"),
        ([[0.0, np.nan], [1.0, 1.0]], [1.0, 2.0], False, r"row/id 0: coordinates must be finite"),
        ([[0.0, 0.0]], [1.0], False, r"at least 2 samples"),
        (TWO_XY, [1.0, 2.0, 3.0], False, r"2 coordinates but 3 values"),
        ([0.0, 1.0], [1.0, 2.0], False, r"must be an \(n, 2\) array"),
    ],
)
def test_fit_rejects_unusable_samples(xy, values, log, message):
    for est in (IDW(log=log), LocalKriging(log=log, variogram=SPH20)):
        with pytest.raises(InputError, match=message):
            est.fit(xy, values)


# ----------------------------------------------------------------------------- kriging


def test_kriging_equidistant_point_by_hand():
    est = LocalKriging(k=2, variogram=SPH20, log=False).fit(TWO_XY, [1.0, 3.0])
    mean, var = est.predict_distribution([[5.0, 0.0]])
    # symmetry: w = 1/2, 1/2 -> mean 2; μ from 1·½ + C(10)·½ + μ = C(5): μ = −0.0234375;
    # σ² = C(0) − Σ w C(5) − μ = 1 − 0.6328125 + 0.0234375 = 0.390625
    assert mean[0] == pytest.approx(2.0, abs=1e-12)
    assert var[0] == pytest.approx(0.390625, abs=1e-12)


@pytest.mark.parametrize("nugget", [0.0, 0.3])
def test_kriging_exact_with_zero_variance_at_data_points(nugget):
    # γ(0) = 0 even with a nugget: the standard (exact) convention
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    model = VariogramModel("spherical", nugget=nugget, sill=1.0, range_=20.0)
    est = LocalKriging(k=3, variogram=model, log=False).fit(xy, [1.0, 2.0, 3.0])
    mean, var = est.predict_distribution(xy)
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(var, 0.0, atol=1e-12)
    assert (var >= 0).all()


def test_log_kriging_back_transform_by_hand():
    est = LocalKriging(k=2, variogram=SPH20).fit(TWO_XY, [math.e, math.e**3])
    # data point: exp(1 + 0 + 0) = e; midpoint: m = 2, σ² = 0.390625, μ = −0.0234375:
    # exp(m + σ²/2 + μ) = exp(2 + 0.1953125 − 0.0234375) = exp(2.171875)
    got = est.predict([[0.0, 0.0], [5.0, 0.0]])
    np.testing.assert_allclose(got, [math.e, math.exp(2.171875)], rtol=1e-12)


def test_search_radius_limits_neighbours_and_gives_nan_beyond():
    est = LocalKriging(k=2, search_radius=6.0, variogram=SPH20, log=False).fit(TWO_XY, [1.0, 3.0])
    mean, var = est.predict_distribution([[2.0, 0.0], [50.0, 0.0]])
    # x=2 sees only the sample at 0: w = 1, σ² = 2 γ(2) = 2 (0.15 − 0.0005) = 0.299
    assert mean[0] == pytest.approx(1.0) and var[0] == pytest.approx(0.299)
    assert np.isnan(mean[1]) and np.isnan(var[1]) and np.isnan(est.predict([[50.0, 0.0]])[0])


def _dense_ok(model, xy, z, target):
    """Reference: global ordinary kriging in variogram (γ) form, one target at a time."""
    n = len(xy)
    g = np.ones((n + 1, n + 1))
    g[:n, :n] = model(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)))
    g[n, n] = 0.0
    rhs = np.append(model(np.hypot(*(xy - target).T)), 1.0)
    sol = np.linalg.solve(g, rhs)
    w, psi = sol[:n], sol[n]
    return w @ z, w @ rhs[:n] + psi  # mean, σ² = Σ w γ0 + ψ


@pytest.mark.parametrize("name", ["spherical", "exponential", "gaussian"])
def test_kriging_matches_dense_variogram_form(name):
    rng = np.random.default_rng(1)
    xy, z = rng.uniform(0, 1000, (25, 2)), rng.normal(size=25)
    targets = rng.uniform(0, 1000, (40, 2))
    model = VariogramModel(name, nugget=0.2, sill=1.2, range_=600.0)
    est = LocalKriging(k=25, variogram=model, log=False).fit(xy, z)
    mean, var = est.predict_distribution(targets)
    ref = np.array([_dense_ok(model, xy, z, t) for t in targets])
    np.testing.assert_allclose(mean, ref[:, 0], atol=1e-8)
    np.testing.assert_allclose(var, ref[:, 1], atol=1e-8)


def _local_reference(model, xy, z, target, k, radius):
    """Reference for a moving window: the k nearest samples within radius, then _dense_ok."""
    d = np.hypot(*(xy - target).T)
    near = np.argsort(d, kind="stable")[:k]
    near = near[d[near] <= radius]
    return _dense_ok(model, xy[near], z[near], target) if len(near) else (np.nan, np.nan)


def _every_set_singular(real):
    """The compiled kernel, then every group marked failed (so the numpy path solves all)."""
    def run(*args):
        real(*args)
        args[11][:] = True  # ``failed``
    return run


@pytest.mark.parametrize("path", ["kernel", "numpy"])  # numpy: the path of singular sets
def test_moving_window_with_radius_matches_reference_on_both_paths(path, monkeypatch):
    rng = np.random.default_rng(2)
    xy, z = rng.uniform(0, 1000, (60, 2)), rng.normal(size=60)
    gx, gy = np.meshgrid(np.arange(-95, 1100, 30.0), np.arange(-95, 1100, 30.0))
    targets = np.column_stack([gx.ravel(), gy.ravel()])  # 1600 cells, many share neighbours
    model = VariogramModel("exponential", nugget=0.1, sill=1.0, range_=500.0)
    if path == "numpy":
        monkeypatch.setattr(kriging, "krige_groups", _every_set_singular(kriging.krige_groups))
    est = LocalKriging(k=8, search_radius=150.0, variogram=model, log=False).fit(xy, z)
    mean, var = est.predict_distribution(targets)
    ref = np.array([_local_reference(model, xy, z, t, 8, 150.0) for t in targets])
    assert np.isnan(ref[:, 0]).any() and np.isfinite(ref[:, 0]).any()
    np.testing.assert_allclose(mean, ref[:, 0], atol=1e-8)
    np.testing.assert_allclose(var, ref[:, 1], atol=1e-8)


def test_duplicate_locations_are_averaged_on_the_log_scale():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    est = LocalKriging(k=2, variogram=SPH20).fit(xy, [1.0, 4.0, 5.0])
    assert len(est.coords_) == 2
    assert est.predict([[0.0, 0.0]])[0] == pytest.approx(2.0)  # exp((ln 1 + ln 4) / 2)


def test_log_back_transform_is_unbiased_on_a_lognormal_field():
    gs = pytest.importorskip("gstools")
    ratios, naive = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        xy, targets = rng.uniform(0, 40_000, (600, 2)), rng.uniform(0, 40_000, (3000, 2))
        field = gs.SRF(gs.Spherical(dim=2, var=0.7, len_scale=3000.0, nugget=0.3), seed=seed)
        pts = np.vstack([xy, targets])
        z = np.exp(field((pts[:, 0], pts[:, 1])))
        est = LocalKriging(k=16, variogram=VariogramModel("spherical", 0.3, 1.0, 3000.0))
        est.fit(xy, z[:600])
        ratios.append(est.predict(targets).sum() / z[600:].sum())
        naive.append(np.exp(est.predict_distribution(targets)[0]).sum() / z[600:].sum())
    # tolerance 8 % on the mean of three fields; exp(m) alone is ~30 % low, so this can fail
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.08)
    assert np.mean(naive) < 0.8


def test_kriging_probability_is_one_half_at_the_median():
    est = LocalKriging(k=2, variogram=SPH20).fit(TWO_XY, [math.e, math.e**3])
    mean, _ = est.predict_distribution([[5.0, 0.0]])
    p = est.exceedance_probability([[5.0, 0.0]], np.exp(mean))
    assert p[0] == pytest.approx(0.5)


def test_kriging_falls_back_to_idw_with_few_samples(caplog):
    rng = np.random.default_rng(0)
    xy, z = rng.uniform(0, 1000, (20, 2)), rng.lognormal(size=20)
    est = LocalKriging(k=8).fit(xy, z)
    assert est.fallback_ is not None and "only 20 samples" in est.fallback_
    assert est.variogram_ is None and "falls back to IDW" in caplog.text
    targets = rng.uniform(0, 1000, (5, 2))
    np.testing.assert_allclose(est.predict(targets), IDW(k=8, log=True).fit(xy, z).predict(targets))
    mean, var = est.predict_distribution(targets)
    assert np.isnan(mean).all() and np.isnan(var).all()
    assert np.isnan(est.exceedance_probability(targets, 1.0)).all()


def test_kriging_falls_back_on_pure_nugget():
    rng = np.random.default_rng(3)
    xy, z = rng.uniform(0, 5000, (400, 2)), rng.lognormal(size=400)
    est = LocalKriging().fit(xy, z)
    assert "pure nugget" in est.fallback_
    assert np.isfinite(est.predict(xy[:3])).all()


def test_kriging_fits_a_variogram_by_itself():
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20_000, (800, 2))
    z = np.exp(gs.SRF(gs.Spherical(dim=2, var=1.0, len_scale=4000.0), seed=0)((xy[:, 0], xy[:, 1])))
    est = LocalKriging(k=16, model="spherical").fit(xy, z)
    assert est.fallback_ is None and est.variogram_.name == "spherical"
    assert 3000 < est.variogram_.range_ < 5500


def test_repeated_calls_on_one_grid_give_fresh_equal_arrays():
    est = LocalKriging(k=2, variogram=SPH20, log=False).fit(TWO_XY, [1.0, 3.0])
    mean, _ = est.predict_distribution([[5.0, 0.0]])
    mean[0] = -1.0  # the caller's array; the kept result must not change
    assert est.predict_distribution([[5.0, 0.0]])[0][0] == pytest.approx(2.0)
    assert est.predict([[5.0, 0.0]])[0] == pytest.approx(2.0)
    assert est.predict([[2.0, 0.0]])[0] != pytest.approx(2.0)  # another grid is recomputed


def test_kriging_init_stores_parameters_only():
    est = LocalKriging(k=8, search_radius=500.0, model="exponential", nugget=0.1, seed=3)
    assert est.get_params()["search_radius"] == 500.0 and not hasattr(est, "variogram_")


# ----------------------------------------------------------------------------- probabilities


def test_exceedance_probability_against_the_normal_distribution():
    got = exceedance_probability(
        np.array([0.0, math.log(2.0)]), np.array([1.0, 0.25]), np.array([math.e, 4.0])
    )
    # (ln e − 0)/1 = 1;  (ln 4 − ln 2)/0.5 = 2 ln 2 = 1.3862943611198906
    np.testing.assert_allclose(got, [norm.sf(1.0), norm.sf(1.3862943611198906)], rtol=1e-12)
    assert got[0] == pytest.approx(0.15865525393145707)


def test_exceedance_probability_zero_variance_and_nan():
    got = exceedance_probability(
        np.array([1.0, 1.0, np.nan, 0.0]),
        np.array([0.0, 0.0, 1.0, 1.0]),
        np.array([1.0, 5.0, 1.0, np.nan]),
    )
    assert got[0] == 1.0 and got[1] == 0.0  # exp(1) = 2.718 vs 1 and 5
    assert np.isnan(got[2]) and np.isnan(got[3])  # unknown mean or threshold


def test_exceedance_probability_rejects_non_positive_threshold():
    with pytest.raises(ValueError, match="thresholds must be > 0"):
        exceedance_probability(np.zeros(1), np.ones(1), 0.0)


def test_class_probabilities_hand_example():
    p1, p2, p3 = class_probabilities(
        {"cd": np.array([0.5]), "pb": np.array([0.2])},
        {"cd": np.array([0.1]), "pb": np.array([0.0])},
    )
    # P(<=1) = 0.5 · 0.8 = 0.4;  P(<=2) = 0.9 · 1.0 = 0.9
    np.testing.assert_allclose([p1[0], p2[0], p3[0]], [0.4, 0.5, 0.1])


def test_class_probabilities_sum_to_one_and_propagate_nan():
    p = class_probabilities({"cd": np.array([0.3, np.nan])}, {"cd": np.array([0.05, 0.0])})
    total = p[0] + p[1] + p[2]
    assert total[0] == pytest.approx(1.0) and np.isnan(total[1])
