"""Empirical variogram, model fitting, and the "cannot fit" cases (coordinates in metres)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farmland.errors import FarmlandError
from farmland.geostats.variogram import (
    VariogramFitError,
    VariogramModel,
    _pairs_within,
    default_max_lag,
    empirical_variogram,
    fit_sample_variogram,
    fit_variogram,
    structure_lags,
    structure_p_value,
)


def test_model_values_by_hand():
    sph = VariogramModel("spherical", nugget=0.1, sill=1.1, range_=100.0)
    # γ(50) = 0.1 + 1.0 · (1.5·0.5 − 0.5·0.125) = 0.1 + 0.6875; at and beyond the range: sill
    np.testing.assert_allclose(sph([0.0, 50.0, 100.0, 250.0]), [0.0, 0.7875, 1.1, 1.1])
    np.testing.assert_allclose(sph.covariance([0.0, 50.0]), [1.1, 0.3125])
    # practical range: 95 % of the partial sill at h = range (1 − e⁻³ = 0.950213)
    exp_ = VariogramModel("exponential", nugget=0.0, sill=2.0, range_=300.0)
    gau = VariogramModel("gaussian", nugget=0.0, sill=2.0, range_=300.0)
    assert exp_(300.0) == pytest.approx(2.0 * (1 - np.exp(-3.0)))
    assert gau(300.0) == pytest.approx(2.0 * (1 - np.exp(-3.0)))
    assert gau(150.0) == pytest.approx(2.0 * (1 - np.exp(-0.75)))


def test_describe_is_one_line_for_reports():
    model = VariogramModel("spherical", nugget=0.05, sill=0.42, range_=3200.0)
    assert model.describe() == "spherical: nugget 0.05, sill 0.42, range 3 200 m"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("linear", 0.0, 1.0, 1.0), "unknown variogram model 'linear'"),
        (("spherical", 0.5, 0.4, 1.0), "sill >= nugget"),
        (("spherical", 0.0, 1.0, 0.0), "range > 0"),
    ],
)
def test_model_rejects_bad_parameters(args, message):
    with pytest.raises(ValueError, match=message):
        VariogramModel(*args)


def test_empirical_variogram_by_hand():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    emp = empirical_variogram(xy, [0.0, 1.0, 3.0], n_lags=3, max_lag=3.0)
    # pairs: d=1 ½·1² = 0.5 (class [1, 2)); d=2 ½·2² = 2 and d=3 ½·3² = 4.5 (class [2, 3])
    np.testing.assert_allclose(emp.lags, [1.0, 2.5])
    np.testing.assert_allclose(emp.gamma, [0.5, 3.25])
    np.testing.assert_array_equal(emp.counts, [1, 2])


def test_default_max_lag_is_half_the_diagonal():
    xy = np.array([[0.0, 0.0], [20.0, 0.0], [20.0, 40.0]])
    # bounding box 20 × 40 m: diagonal 44.72 m, max lag 22.36 m; pairs at 20, 40 and 44.72 m
    emp = empirical_variogram(xy, [0.0, 1.0, 5.0], n_lags=5)
    np.testing.assert_allclose(emp.lags, [20.0])
    np.testing.assert_allclose(emp.gamma, [0.5])
    np.testing.assert_array_equal(emp.counts, [1])


@pytest.mark.parametrize("name", ["spherical", "exponential", "gaussian"])
def test_fit_recovers_a_noise_free_model_and_auto_picks_it(name):
    truth = VariogramModel(name, nugget=0.15, sill=0.95, range_=2500.0)
    lags = np.linspace(150.0, 6000.0, 15)
    counts = np.full(15, 500)
    got = fit_variogram(lags, truth(lags), counts, model=name)
    np.testing.assert_allclose([got.nugget, got.sill, got.range_], [0.15, 0.95, 2500.0], rtol=1e-3)
    assert fit_variogram(lags, truth(lags), counts, model="auto").name == name


def test_fit_with_fixed_nugget_keeps_it():
    truth = VariogramModel("spherical", nugget=0.0, sill=1.0, range_=2000.0)
    lags = np.linspace(100.0, 4000.0, 12)
    got = fit_variogram(lags, truth(lags) + 0.2, np.full(12, 100), model="spherical", nugget=0.2)
    assert got.nugget == 0.2
    assert got.sill == pytest.approx(1.2, rel=1e-3) and got.range_ == pytest.approx(
        2000.0, rel=1e-3
    )


def test_fitted_parameters_keep_five_significant_digits():
    """What the solver leaves in the last digits follows the machine's BLAS kernels; the
    fit keeps 5 significant digits (a fixed nugget is the user's and stays as given)."""
    truth = VariogramModel("exponential", nugget=0.1234567, sill=0.9876543, range_=2345.678)
    lags = np.linspace(150.0, 6000.0, 15)
    noisy = truth(lags) * (1 + 0.03 * np.sin(lags))   # not an exact fit: arbitrary digits
    got = fit_variogram(lags, noisy, np.full(15, 500), model="exponential")
    for value in (got.nugget, got.sill, got.range_):
        assert value == float(f"{value:.4e}")
    fixed = fit_variogram(lags, noisy, np.full(15, 500), model="exponential",
                          nugget=0.1234567)
    assert fixed.nugget == 0.1234567
    assert fixed.sill == float(f"{fixed.sill:.4e}")


def test_variogram_recovers_the_range_of_a_simulated_field():
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20_000, (1000, 2))
    field = gs.SRF(gs.Spherical(dim=2, var=1.0, len_scale=4000.0, nugget=0.1), seed=0)
    model = fit_sample_variogram(xy, field((xy[:, 0], xy[:, 1])), model="spherical")
    assert model.range_ == pytest.approx(4000.0, rel=0.2)  # one realisation: 20 % tolerance
    assert model.sill == pytest.approx(1.1, rel=0.3)


def test_pair_subsample_gives_the_same_model():
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20_000, (2000, 2))
    z = gs.SRF(gs.Spherical(dim=2, var=1.0, len_scale=4000.0, nugget=0.1), seed=0)(
        (xy[:, 0], xy[:, 1])
    )
    every_pair = fit_sample_variogram(xy, z, model="spherical", max_pairs=2_000_000)
    sampled = fit_sample_variogram(xy, z, model="spherical", max_pairs=20_000)
    assert sampled.range_ == pytest.approx(every_pair.range_, rel=0.1)
    assert sampled.sill == pytest.approx(every_pair.sill, rel=0.1)


def test_too_few_samples_cannot_be_fitted():
    rng = np.random.default_rng(0)
    with pytest.raises(VariogramFitError, match="only 29 samples; a variogram needs at least 30"):
        fit_sample_variogram(rng.uniform(0, 100, (29, 2)), rng.normal(size=29))


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_pure_nugget_cannot_be_fitted(seed):
    rng = np.random.default_rng(seed)
    with pytest.raises(VariogramFitError, match="pure nugget"):
        fit_sample_variogram(rng.uniform(0, 20_000, (1000, 2)), rng.normal(size=1000))


def test_structure_lags_double_from_twice_the_spacing_to_a_third_of_max_lag():
    # a 100 m grid: every nearest neighbour is 100 m away, so the first distance is 200 m
    xy = np.array([(x, y) for x in range(0, 3100, 100) for y in range(0, 3100, 100)], float)
    # max_lag 5 000 m: a third is 1 666.7 m, after 200, 400, 800 and 1 600 m
    np.testing.assert_allclose(structure_lags(xy, 5_000.0), [200, 400, 800, 1600, 5000 / 3])
    # samples no closer than a third of max_lag: only that distance
    np.testing.assert_allclose(structure_lags(xy, 300.0), [100.0])


@pytest.mark.parametrize("seed", [1, 2])
def test_a_short_range_in_a_wide_county_is_not_called_pure_nugget(seed):
    """A 3 km range in a 60 km county (the demo's lead, 4 km in 47 km): the pairs closer
    than a third of max_lag (14 km) alone do not show it, the shorter distances do."""
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60_000, (1500, 2))
    z = gs.SRF(gs.Spherical(dim=2, var=0.3, len_scale=3000.0, nugget=0.7), seed=seed)(
        (xy[:, 0], xy[:, 1])
    )
    max_lag = default_max_lag(xy)
    pairs = _pairs_within(xy, max_lag, 200_000, 0)
    assert structure_p_value(pairs, z, short_lags=max_lag / 3) > 0.05
    assert structure_p_value(pairs, z, short_lags=structure_lags(xy, max_lag)) <= 0.02
    model = fit_sample_variogram(xy, z)
    assert 2_000 < model.range_ < 8_000


def test_white_noise_is_found_structured_about_one_time_in_twenty():
    """The min-p adjustment keeps the level: testing at several distances and keeping
    the best would otherwise find structure in noise far more often than 5 %."""
    found = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        xy, z = rng.uniform(0, 20_000, (200, 2)), rng.normal(size=200)
        max_lag = default_max_lag(xy)
        pairs = _pairs_within(xy, max_lag, 200_000, seed)
        found += structure_p_value(pairs, z, short_lags=structure_lags(xy, max_lag),
                                   seed=seed) <= 0.05
    assert 1 <= found <= 10  # binomial(100, 0.05): 1-10 holds 99 % of draws


def test_flat_or_sparse_empirical_variogram_cannot_be_fitted():
    lags = np.array([100.0, 200.0, 300.0, 400.0, 500.0])
    with pytest.raises(VariogramFitError, match="pure nugget"):
        fit_variogram(lags, np.full(5, 0.8), np.full(5, 100))
    with pytest.raises(VariogramFitError, match="only 3 distance classes"):
        fit_variogram(lags[:3], [0.1, 0.2, 0.3], [10, 10, 10])
    with pytest.raises(VariogramFitError, match="do not vary"):
        fit_variogram(lags, np.zeros(5), np.full(5, 100))


def test_fit_error_is_a_farmland_error_and_bad_model_name_is_rejected():
    assert issubclass(VariogramFitError, FarmlandError)
    with pytest.raises(ValueError, match="model must be 'auto' or one of"):
        fit_variogram([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.3], [5, 5, 5, 5], model="cubic")


def test_near_pairs_are_each_listed_once_in_order():
    from farmland.geostats.variogram import _sample_pairs

    # 20 samples on a line, spacings growing (no ties), 189 of 190 pairs wanted: 94
    # random pairs (the same-sample ones dropped) come first, then every sample with its 8
    # nearest as distinct pairs (i < j), sorted
    x = np.arange(20) * (1 + 0.01 * np.arange(20))
    coords = np.column_stack([x, np.zeros(20)])
    i, j = _sample_pairs(coords, max_pairs=189, seed=0)
    ri, rj = np.random.default_rng(0).integers(0, 20, size=(2, 94))
    random = int((ri != rj).sum())
    np.testing.assert_array_equal(i[:random], ri[ri != rj])
    near_i, near_j = i[random:], j[random:]
    assert (near_i < near_j).all() and (np.diff(near_i * 20 + near_j) > 0).all()
    assert list(near_j[near_i == 0]) == [1, 2, 3, 4, 5, 6, 7, 8]  # sample 0's 8 nearest
    assert list(near_i[near_j == 19]) == [11, 12, 13, 14, 15, 16, 17, 18]  # sample 19's


def test_the_test_before_2026_12_04_is_kept_for_older_runs():
    """``structure="one"`` (``[interpolation] structure_test = "one"``) is the old test to
    the p-value: one distance, 99 relabellings, (1 + as alike) / 100."""
    gs = pytest.importorskip("gstools")
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 60_000, (1500, 2))
    z = gs.SRF(gs.Spherical(dim=2, var=0.3, len_scale=3000.0, nugget=0.7), seed=1)(
        (xy[:, 0], xy[:, 1]))
    max_lag = default_max_lag(xy)
    pairs = _pairs_within(xy, max_lag, 200_000, 0)
    short = pairs.dist <= max_lag / 3
    i, j = pairs.i[short], pairs.j[short]
    observed = np.mean((z[i] - z[j]) ** 2)
    perm = np.random.default_rng(0)
    as_low = sum(np.mean((p[i] - p[j]) ** 2) <= observed
                 for p in (perm.permutation(z) for _ in range(99)))
    old = (1 + as_low) / 100
    assert old > 0.05
    with pytest.raises(VariogramFitError, match=rf"permutation p = {old:.3f} > 0.05"):
        fit_sample_variogram(xy, z, structure="one")
    assert fit_sample_variogram(xy, z).range_ > 0   # "several" finds the 3 km range
    with pytest.raises(ValueError, match="structure must be one of"):
        fit_sample_variogram(xy, z, structure="two")


def test_the_rules_choose_the_structure_test_on_the_demos_lead(tmp_path):
    """The defect the several distances mend: the demo county's lead, structured over 4 km,
    was called pure nugget by the test at a third of max_lag (11 km)."""
    import farmland as fl
    from farmland.errors import StandardError
    from farmland.geostats.surfaces import fit_surface_models
    from farmland.rules import load_rules

    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    soil = fl.read_soil_samples(demo / "soil_samples.csv", crs="EPSG:4545")
    assert load_rules().get("interpolation", "structure_test") == "several"
    shipped = fit_surface_models(soil, load_rules(), "kriging").models["pb"]
    assert shipped.describe() == ("gaussian: nugget 0.0446, sill 0.467, range 4 028 m "
                                  "(residuals of a linear trend)")
    path = tmp_path / "rules.toml"
    # the test before 2026-12-04, on the variogram of the values as it was then
    path.write_text('[interpolation]\nstructure_test = "one"\ntrend = "none"\n', encoding="utf-8")
    old = fit_surface_models(soil, load_rules(path), "kriging").models["pb"]
    assert old.startswith("pure nugget: nearby samples are no more alike than random ones "
                          "(permutation p = 0.400 > 0.05)")
    path.write_text('[interpolation]\nstructure_test = "all"\n', encoding="utf-8")
    with pytest.raises(StandardError, match="structure_test"):
        load_rules(path)
