"""The variogram of linear-trend residuals (``[interpolation] trend``), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from farmland.geostats.anisotropy import kriging_space
from farmland.geostats.estimators import LocalKriging
from farmland.geostats.quality import model_summary
from farmland.geostats.trend import residuals
from farmland.geostats.variogram import VariogramModel, variogram_shift
from farmland.rules import load_rules

SQUARE = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0], [1000.0, 1000.0]])


def test_residuals_of_four_corners_by_hand():
    # values 0, 0, 0, 4 at the corners of a 1 km square. Centred coordinates (km) are
    # ±0.5; the plane's slopes are Σ x z / Σ x² = (0.5 · 4) / 1 = 2 in x and in y;
    # residuals z − 2x − 2y = [0 + 1 + 1, 0 − 1 + 1, 0 + 1 − 1, 4 − 1 − 1] = [2, 0, 0, 2],
    # whose mean is the values' mean, 1
    z = np.array([0.0, 0.0, 0.0, 4.0])
    np.testing.assert_allclose(residuals(SQUARE, z, "linear"), [2.0, 0.0, 0.0, 2.0],
                               atol=1e-12)
    np.testing.assert_array_equal(residuals(SQUARE, z, "none"), z)


def test_a_plane_leaves_its_mean_and_the_space_does_not_matter():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 9000, (50, 2))
    plane = 2.0 + 0.001 * xy[:, 0] - 0.0004 * xy[:, 1]
    np.testing.assert_allclose(residuals(xy, plane, "linear"), plane.mean(), atol=1e-12)
    noisy = plane + rng.normal(0, 0.2, 50)
    # a plane stays a plane in an anisotropy's kriging space: the same residuals
    np.testing.assert_allclose(residuals(kriging_space(xy, 3.0, 30.0), noisy, "linear"),
                               residuals(xy, noisy, "linear"), atol=1e-10)
    # two locations: no plane through them is unique; the minimum-norm fit leaves the mean
    two = residuals(SQUARE[:2], np.array([1.0, 3.0]), "linear")
    assert two.mean() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="trend"):
        residuals(xy, noisy, "quadratic")


def _trend_field(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cd rising 0.3 ln-units a kilometre eastwards, with a 2 km spherical structure."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 8000, (400, 2))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    cov = 0.2 * np.where(d < 2000, 1 - 1.5 * d / 2000 + 0.5 * (d / 2000) ** 3, 0.0)
    field = np.linalg.cholesky(cov + 1e-9 * np.eye(len(xy))) @ rng.normal(size=len(xy))
    return xy, np.exp(-1.5 + 0.0003 * xy[:, 0] + field + rng.normal(0, 0.15, len(xy)))


def test_the_trend_inflates_the_raw_variogram_not_the_residual_one():
    xy, cd = _trend_field()
    raw = LocalKriging(trend="none").fit(xy, cd).variogram_
    res = LocalKriging(trend="linear").fit(xy, cd).variogram_
    # the structure around the trend: variance 0.2 + 0.0225 nugget; the east-west rise
    # alone adds (0.3 · 8)² / 12 = 0.48 to the variance of the raw values
    # (fitted here: raw sill 2.6 and range 27 km; residual sill 0.24, range 2.5 km)
    assert raw.sill > 1.0 and raw.range_ > 10_000
    assert 0.18 < res.sill < 0.3 and 1500 < res.range_ < 4000
    assert (raw.trend, res.trend) == ("none", "linear")
    assert res.describe().endswith("(residuals of a linear trend)")
    assert "residuals" not in raw.describe()


def test_kriging_itself_does_not_change():
    xy, cd = _trend_field(2)
    model = VariogramModel("spherical", 0.02, 0.22, 2000.0)
    targets = np.array([[4000.0, 4000.0], [100.0, 7900.0]])
    plain = LocalKriging(variogram=model).fit(xy, cd).predict_distribution(targets)
    given = LocalKriging(variogram=VariogramModel("spherical", 0.02, 0.22, 2000.0,
                                                  trend="linear"), trend="linear")
    np.testing.assert_array_equal(given.fit(xy, cd).predict_distribution(targets), plain)


def test_summary_round_trip_and_shift():
    res = VariogramModel("spherical", 0.02, 0.22, 2000.0, trend="linear")
    two = (np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([1.0, 2.0]))
    info = model_summary(LocalKriging(variogram=res).fit(*two))
    assert info["trend"] == "linear"
    assert VariogramModel.from_summary(info) == res
    flat = VariogramModel("spherical", 0.02, 0.22, 2000.0)
    flat_info = model_summary(LocalKriging(variogram=flat).fit(*two))
    assert "trend" not in flat_info                      # manifests as before
    assert VariogramModel.from_summary(flat_info) == flat
    assert variogram_shift(flat, res, 5000.0) == math.inf   # other values: refit
    assert variogram_shift(res, res, 5000.0) == 0.0
    with pytest.raises(ValueError, match="trend"):
        VariogramModel("spherical", 0.02, 0.22, 2000.0, trend="quadratic")


def test_surfaces_take_the_trend_from_the_rules(tmp_path):
    import geopandas as gpd

    from farmland.geostats.surfaces import fit_surface_models

    xy, cd = _trend_field(4)
    nan = np.full(len(xy), np.nan)   # the other metals not measured: no model
    usable = gpd.GeoDataFrame({"ph": np.full(len(xy), 6.0), "cd": cd, "hg": nan, "as": nan,
                               "pb": nan, "cr": nan},
                              geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:4545")
    shipped = fit_surface_models(usable, load_rules(), "kriging").models["cd"]
    path = tmp_path / "r.toml"
    path.write_text('[interpolation]\ntrend = "none"\n', encoding="utf-8")
    raw = fit_surface_models(usable, load_rules(path), "kriging").models["cd"]
    assert (shipped.trend, raw.trend) == ("linear", "none")
    assert shipped.sill < 0.5 < raw.sill


def test_values_on_a_plane_do_not_vary():
    # a constant pH and an exact plane leave rounding noise (1e-16) after the fit: that is
    # not variation, or a variogram with a sill of 1e-31 would krige them
    xy = np.random.default_rng(5).uniform(0, 3000, (64, 2))
    np.testing.assert_array_equal(residuals(xy, np.full(64, 6.0), "linear"), np.full(64, 6.0))
    plane = 1.5 + 0.0004 * xy[:, 0] + 0.0002 * xy[:, 1]
    np.testing.assert_array_equal(residuals(xy, plane, "linear"), np.full(64, plane.mean()))
    est = LocalKriging(log=False, trend="linear").fit(xy, np.full(64, 6.0))
    assert est.fallback_ is not None and "do not vary" in est.fallback_
