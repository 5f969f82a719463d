"""The measurement-error point rule (issue 15): a parcel's own samples weighed against
the kriged neighbourhood, worked by hand on a one-parcel scene."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_parcels, make_samples
from scipy.stats import norm

from farmland.classify.parcels import classify_parcels
from farmland.classify.point_evidence import posterior
from farmland.errors import StandardError
from farmland.geostats.surfaces import SurfaceModels
from farmland.geostats.variogram import VariogramModel
from farmland.rules import load_rules

#: Cd: nugget 0.1, total sill 0.2, range 100 m. The two other samples lie 500 m either
#: side of the parcel's own sample (1 000 m apart): beyond the range, so C(500) = C(1000) = 0,
#: the kriging weights are 1/2 each, the kriging mean is the mean of their logs and the
#: variance σ² = C(0) − Σwc − μ = 0.2 + 0.2/2 = 0.3 (μ = −C(0)/2). The other variables
#: have no kriging model (IDW), so only the parcel's own values speak for them.
MODELS = SurfaceModels(method="kriging", k=16, power=2.0, models={
    "ph": "no structure (test)", "cd": VariogramModel("spherical", 0.1, 0.2, 100.0),
    "hg": "no structure (test)", "as": "no structure (test)", "pb": "no structure (test)",
    "cr": "no structure (test)"})
# screening and intervention values of Cd on paddy at pH 6.0: 0.4 and 2.0 mg/kg
SCREEN, INTERV = 0.4, 2.0


def _rules(tmp_path, **points):
    lines = ["[points]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}"
                            for k, v in points.items()]
    path = tmp_path / "r.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return load_rules(path)


def _classify(own_cd: float, rules):
    parcels = make_parcels(n=1)                      # P0: 0..100 m square, paddy
    samples = make_samples([(50, 50), (-450, 50), (550, 50)], cd=[own_cd, 0.25, 0.25])
    out, _, _ = classify_parcels(parcels, samples, rules=rules, interpolator=MODELS)
    return out.iloc[0]


def test_posterior_by_hand():
    # own ln 0.5; prior ln 0.25 with point variance 0.3; nugget 0.1, all of it error:
    # τ² = max(0.1, ln 1.04) = 0.1, σ²_p = 0.3 − 0.1 = 0.2; precisions 10 and 5
    mean, var = posterior(np.log([[0.5]]), np.log([0.25]), np.array([0.3]), np.array([0.1]),
                          error_share=1.0, error_cv=0.2)
    assert var == pytest.approx([1 / 15])
    assert np.exp(mean) == pytest.approx([0.25 ** (1 / 3) * 0.5 ** (2 / 3)])  # 0.39685
    # half the nugget is error: τ² = max(0.05, 0.0392) = 0.05, σ²_p = 0.25 -> 20 + 4
    mean, var = posterior(np.log([[0.5]]), np.log([0.25]), np.array([0.3]), np.array([0.1]),
                          error_share=0.5, error_cv=0.2)
    assert var == pytest.approx([1 / 24])
    assert np.exp(mean) == pytest.approx([0.25 ** (4 / 24) * 0.5 ** (20 / 24)])


def test_posterior_without_a_prior_is_the_own_mean_with_its_error():
    # two own values, no kriging (NaN prior, no nugget): τ² = ln(1 + 0.2²) on each
    own = np.log([[0.3, 0.6], [0.5, np.nan], [np.nan, np.nan]])
    nan = np.full(3, np.nan)
    mean, var = posterior(own, nan, nan, nan, error_share=1.0, error_cv=0.2)
    tau2 = np.log(1.04)
    assert np.exp(mean[:2]) == pytest.approx([np.sqrt(0.18), 0.5])
    assert var[:2] == pytest.approx([tau2 / 2, tau2])
    assert np.isnan(mean[2]) and np.isnan(var[2])     # nothing known


def test_evidence_classes_one_noisy_value_against_its_neighbourhood(tmp_path):
    # county practice: the one sample (Cd 0.5 > 0.4) makes the parcel class 2
    before = _classify(0.5, load_rules())
    assert before["soil_class"] == 2 and before["rule"] == "points:majority"
    # evidence: posterior median 0.397 with variance 1/15 -> P(Cd > 0.4) = 0.4878 < 0.5
    after = _classify(0.5, _rules(tmp_path, rule="evidence", error_share=1.0, evidence_lowers=True))
    z = (np.log(SCREEN) - np.log(0.25 ** (1 / 3) * 0.5 ** (2 / 3))) * np.sqrt(15)
    p2 = norm.sf(z)
    assert p2 == pytest.approx(0.4878, abs=1e-4)
    assert after["p_class_2"] == pytest.approx(p2, rel=1e-6)
    assert after["p_class_1"] == pytest.approx(1 - p2, rel=1e-6)
    assert after["p_class_3"] == pytest.approx(norm.sf((np.log(INTERV) - np.log(0.39685))
                                                       * np.sqrt(15)), abs=1e-9)
    assert after["soil_class"] == 1 and after["final_class"] == 1
    assert after["rule"] == "points:evidence"
    assert after["class_confidence"] == pytest.approx(1 - p2, rel=1e-6)
    assert "evidence_not_point_class_2" in after["qa_flags"]
    assert after["n_samples"] == 1 and after["sample_ids"] == "S0"


def test_half_the_nugget_as_error_keeps_this_value_class_2(tmp_path):
    # error_share 0.5: τ² = max(0.05, ln 1.04) = 0.05, σ²_p = 0.3 − 0.05 = 0.25;
    # precisions 20 and 4 -> median 0.25^(1/6) · 0.5^(5/6) = 0.4454, variance 1/24
    row = _classify(0.5, _rules(tmp_path, rule="evidence", error_share=0.5,
                                evidence_lowers=True))
    median = 0.25 ** (1 / 6) * 0.5 ** (5 / 6)
    assert median == pytest.approx(0.4454, abs=1e-4)
    assert row["p_class_2"] + row["p_class_3"] == pytest.approx(
        norm.sf(np.log(SCREEN / median) * np.sqrt(24)), rel=1e-6)      # 0.701
    assert row["soil_class"] == 2 and row["rule"] == "points:majority"   # evidence agrees
    assert "evidence_not_point_class" not in row["qa_flags"]


def test_raise_only_keeps_the_points_class_as_a_floor(tmp_path):
    # the class-2 value of the first scene: evidence says 1, the floor keeps 2
    row = _classify(0.5, _rules(tmp_path, rule="evidence", error_share=1.0,
                                evidence_lowers=False))
    assert row["soil_class"] == 2 and row["rule"] == "points:majority"
    assert row["p_class_2"] == pytest.approx(0.4878, abs=1e-4)    # the posterior's, kept
    assert row["driving_element"] == "cd"


def test_evidence_raises_a_clean_value_in_a_contaminated_neighbourhood(tmp_path):
    # own 0.35 (class 1) with neighbours at 1.0: the posterior median is
    # 1.0^(1/3) · 0.35^(2/3) = 0.4966 > 0.4, so P(Cd > 0.4) = Φ(ln(0.4966/0.4)·√15)
    parcels = make_parcels(n=1)
    samples = make_samples([(50, 50), (-450, 50), (550, 50)], cd=[0.35, 1.0, 1.0])
    rules = _rules(tmp_path, rule="evidence", error_share=1.0, evidence_lowers=True)
    out, _, _ = classify_parcels(parcels, samples, rules=rules, interpolator=MODELS)
    row = out.iloc[0]
    median = 0.35 ** (2 / 3)
    assert row["p_class_2"] + row["p_class_3"] == pytest.approx(
        norm.cdf(np.log(median / SCREEN) * np.sqrt(15)), rel=1e-6)   # 0.860
    assert row["soil_class"] == 2 and row["driving_element"] == "cd"
    assert row["rule"] == "points:evidence"
    assert "evidence_not_point_class_1" in row["qa_flags"]


def test_strict_override_still_wins_above_the_intervention_value(tmp_path):
    # own Cd 2.5 > 2.0: class 3 under evidence too, as long as strict_override is on
    row = _classify(2.5, _rules(tmp_path, rule="evidence", error_share=1.0, evidence_lowers=True))
    assert row["soil_class"] == 3 and row["rule"] == "points:strict_override"
    # without it the evidence decides: median 0.25^(1/3)·2.5^(2/3) = 1.160, so
    # P(Cd > 2.0) = 1 − Φ(ln(2.0/1.160)·√15) = 0.0175 < 0.3 -> class 2
    row = _classify(2.5, _rules(tmp_path, rule="evidence", error_share=1.0, evidence_lowers=True,
                                strict_override=False))
    assert row["p_class_3"] == pytest.approx(
        norm.sf(np.log(INTERV / (0.25 ** (1 / 3) * 2.5 ** (2 / 3))) * np.sqrt(15)), rel=1e-6)
    assert row["p_class_3"] == pytest.approx(0.0175, abs=1e-4)
    assert row["soil_class"] == 2 and row["rule"] == "points:evidence"


def test_median_decision_classes_by_the_posterior_median(tmp_path):
    # same scene, [interpolation] decision = "median": 0.397 <= 0.4 -> class 1
    path = tmp_path / "m.toml"
    path.write_text('[points]\nrule = "evidence"\nerror_share = 1.0\nevidence_lowers = true\n'
                    '[interpolation]\ndecision = "median"\n', encoding="utf-8")
    row = _classify(0.5, load_rules(path))
    assert row["soil_class"] == 1


def test_shipped_profile_is_county_practice_and_the_opt_in_raises_only(tmp_path):
    shipped = load_rules()
    assert shipped.get("points", "rule") == "override"
    opt_in = _rules(tmp_path, rule="evidence")  # the measured settings come with it
    assert {k: opt_in.get("points", k) for k in ("rule", "error_share", "error_cv",
                                                 "evidence_lowers")} == {
        "rule": "evidence", "error_share": 1.0, "error_cv": 0.2, "evidence_lowers": False}
    # opt-in: the evidence would lower the class-2 value of the first scene; it may not
    row = _classify(0.5, opt_in)
    assert row["soil_class"] == 2 and row["rule"] == "points:majority"
    assert row["p_class_2"] == pytest.approx(0.4878, abs=1e-4)
    # shipped county practice: the class of the points, interpolated p_class
    row = _classify(0.5, shipped)
    assert row["soil_class"] == 2 and row["rule"] == "points:majority"
    assert row["p_class_2"] != pytest.approx(0.4878, abs=1e-3)
    # opt-in, a clean value in a contaminated neighbourhood is raised; shipped, it is not
    parcels = make_parcels(n=1)
    samples = make_samples([(50, 50), (-450, 50), (550, 50)], cd=[0.35, 1.0, 1.0])
    out, _, _ = classify_parcels(parcels, samples, rules=opt_in, interpolator=MODELS)
    assert out.iloc[0]["soil_class"] == 2 and out.iloc[0]["rule"] == "points:evidence"
    out, _, _ = classify_parcels(parcels, samples, rules=shipped, interpolator=MODELS)
    assert out.iloc[0]["soil_class"] == 1 and out.iloc[0]["rule"] == "points:majority"


def test_rule_switch_is_validated(tmp_path):
    with pytest.raises(StandardError, match="'override' or 'evidence'"):
        _rules(tmp_path, rule="bayes")
    with pytest.raises(StandardError, match="error_share"):
        _rules(tmp_path, error_share=1.5)
