"""``[interpolation] nugget``: variograms fitted with the nugget fixed at the measurement
error of one sample (docs/decisions.md "The nugget from the measurement error")."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest

from farmland.errors import StandardError
from farmland.geostats.surfaces import fit_surface_models, fixed_nugget
from farmland.geostats.variogram import VariogramModel
from farmland.rules import load_rules


def _rules(tmp_path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def test_fixed_nugget_by_hand(tmp_path):
    assert fixed_nugget(load_rules(), "cd") is None                 # shipped: fitted
    rules = _rules(tmp_path, '[interpolation]\nnugget = "measurement"\n')
    assert fixed_nugget(rules, "cd") == pytest.approx(math.log(1.04))   # cv 0.2
    assert fixed_nugget(rules, "ph") == pytest.approx(0.01)             # sd 0.1
    rules = _rules(tmp_path, '[points]\nerror_cv = 0.32\n[interpolation]\n'
                             'nugget = "measurement"\nnugget_ph_sd = 0.25\n')
    assert fixed_nugget(rules, "pb") == pytest.approx(math.log(1 + 0.32**2))
    assert fixed_nugget(rules, "ph") == pytest.approx(0.0625)


def test_unknown_nugget_mode_is_refused(tmp_path):
    with pytest.raises(StandardError, match="nugget"):
        _rules(tmp_path, '[interpolation]\nnugget = "zero"\n')


def test_measurement_nugget_is_the_fitted_models_nugget(tmp_path):
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 5000, size=(300, 2))
    smooth = np.sin(xy[:, 0] / 700) + np.cos(xy[:, 1] / 900)
    noise = rng.normal(0, 0.3, size=(300, 6))
    usable = gpd.GeoDataFrame(
        {"ph": 6 + 0.5 * smooth + noise[:, 0],
         **{el: np.exp(-1 + 0.8 * smooth + noise[:, j + 1])
            for j, el in enumerate(("cd", "hg", "as", "pb", "cr"))}},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:4545")
    fitted = fit_surface_models(usable, load_rules(), "kriging").models
    rules = _rules(tmp_path, '[interpolation]\nnugget = "measurement"\n')
    fixed = fit_surface_models(usable, rules, "kriging").models
    for var in ("ph", "cd", "hg", "as", "pb", "cr"):
        assert isinstance(fixed[var], VariogramModel)
        assert fixed[var].nugget == pytest.approx(fixed_nugget(rules, var))
        # the fit put a nugget near the noise's 0.09 (0.077–0.091 here); fixed at the
        # measurement error (0.039 for the metals, 0.01 for pH), the rest goes to the structure
        assert 0.07 < fitted[var].nugget < 0.11
        assert fitted[var].nugget > 1.9 * fixed[var].nugget


def test_the_planner_takes_the_error_of_one_value_from_the_rules(tmp_path):
    # one quantity, one setting: the planner's error of a new sample defaults to the
    # rules' [points] error_cv, the same CV the measurement nugget uses
    from farmland.sampling.expected import EffectSettings

    rules = _rules(tmp_path, "[points]\nerror_cv = 0.32\n")
    model = VariogramModel("exponential", 0.05, 0.5, 1500.0)
    settings = EffectSettings.from_rules(rules, variogram=model)
    assert settings.sample_error_cv == 0.32
    assert settings.sample_error == pytest.approx(math.log(1 + 0.32**2))  # > nugget 0.05
    assert EffectSettings.from_rules(rules.as_dict(), variogram=model).sample_error_cv == 0.32
    assert EffectSettings.from_rules(rules, variogram=model, sample_error_cv=0.1
                                     ).sample_error == 0.05             # the nugget, larger
    assert EffectSettings.from_rules(load_rules()).sample_error_cv == 0.2
