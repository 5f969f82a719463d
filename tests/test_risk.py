"""Class probabilities and the decision rule of interpolated cells (issue 15, item 2):
pH-band probabilities, the nugget-free ("parcel") variance, the precautionary "risk"
rule, worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from farmland.classify.interpolated import _exceedances, _screening_values, _variance
from farmland.classify.risk import CellRule, band_probabilities, risk_classes
from farmland.errors import StandardError
from farmland.rules import load_rules
from farmland.standards import load_standard

EDGES = np.array([5.5, 6.5, 7.5])


def test_band_probabilities_of_a_normal_ph():
    # pH 6.5 ± 1: the edges are at -1, 0 and +1 standard deviations
    probs, reps = band_probabilities(np.array([6.5]), np.array([1.0]), EDGES, (0.0, 14.0))
    phi = norm.cdf
    assert probs[0] == pytest.approx([phi(-1), phi(0) - phi(-1), phi(1) - phi(0), 1 - phi(1)])
    assert probs.sum() == pytest.approx(1.0)
    assert reps.tolist() == [5.0, 6.0, 7.0, 8.0]   # one pH inside each band


def test_a_certain_ph_on_an_edge_belongs_to_the_lower_band():
    probs, _ = band_probabilities(np.array([6.5, 7.6, np.nan]), np.array([0.0, 0.0, 1.0]),
                                  EDGES, (0.0, 14.0))
    assert probs[0].tolist() == [0.0, 1.0, 0.0, 0.0]     # bands are closed on the right
    assert probs[1].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_risk_rule_thresholds():
    p1, p2, p3 = np.array([0.5, 0.5, 0.7, np.nan]), np.array([0.3, 0.3, 0.2, 0.5]), \
        np.array([0.2, 0.2, 0.1, 0.5])
    assert risk_classes(p1, p2, p3, tau3=0.2, tau2=0.5).tolist() == [3, 3, 1, 0]
    # P(3) = 0.2 < 0.25, P(2) + P(3) = 0.5 >= 0.5 -> class 2; 0.3 < 0.5 -> class 1
    assert risk_classes(p1, p2, p3, tau3=0.25, tau2=0.5).tolist() == [2, 2, 1, 0]
    # at 0.5 the risk rule is the median rule of a single element
    assert risk_classes(np.array([0.5]), np.array([0.5]), np.array([0.0]), tau3=0.5,
                        tau2=0.5).tolist() == [2]


def test_parcel_probabilities_take_the_nugget_off():
    class Est:
        class variogram_:  # the estimator's attribute name
            nugget = 0.04
    var = np.array([0.10, 0.03, 0.0])
    assert _variance(Est(), var, CellRule()).tolist() == var.tolist()
    assert _variance(Est(), var, CellRule(probabilities="parcel")) == pytest.approx(
        [0.06, 0.0, 0.0])


def test_exceedance_over_ph_bands_weighs_each_bands_threshold():
    std = load_standard()
    # Cd on paddy: screening 0.3 (pH <= 5.5), 0.4 (5.5-6.5), 0.6 (6.5-7.5), 0.8 (> 7.5)
    mean, var = np.log(np.array([0.5])), np.array([0.0])      # Cd exactly 0.5, certain
    probs = np.array([[0.25, 0.25, 0.25, 0.25]])
    reps = np.array([5.0, 6.0, 7.0, 8.0])
    landuse = np.array(["paddy"], dtype=object)
    screen = std.screening_values("cd", landuse, np.array([6.0]))
    interv = std.intervention_values("cd", np.array([6.0]))
    ps, pi = _exceedances(mean, var, "cd", screen, interv, landuse, (probs, reps), std)
    # 0.5 exceeds the screening value of the two acid bands only; no intervention value
    assert ps == pytest.approx([0.5])
    assert pi == pytest.approx([0.0])
    ps1, _ = _exceedances(mean, var, "cd", screen, interv, landuse, None, std)
    assert ps1 == pytest.approx([1.0])    # the kriged pH 6.0 alone: 0.5 > 0.4


def test_screening_values_looked_up_per_land_use_equal_the_direct_lookup():
    std = load_standard()
    landuse = np.array(["paddy", "dry", None, "orchard", "paddy", "dry"], dtype=object)
    ph = np.array([5.0, 6.0, 7.0, 8.0, 7.2, np.nan])
    codes, uniques = pd.factorize(landuse)  # None -> -1: "unknown", as the standard reads it
    got = _screening_values(std, "cd", (codes, uniques), ph)
    np.testing.assert_array_equal(got, std.screening_values("cd", landuse, ph))


def test_rules_keys_are_checked(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[interpolation]\ndecision = "risk"\nrisk_class3 = 0.2\n', encoding="utf-8")
    rule = CellRule.from_rules(load_rules(path)["interpolation"])
    assert (rule.decision, rule.risk_class3) == ("risk", 0.2)
    path.write_text('[interpolation]\ndecision = "maximum"\n', encoding="utf-8")
    with pytest.raises(StandardError, match="decision = 'maximum' is out of range"):
        load_rules(path)
