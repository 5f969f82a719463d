"""The planner's expected effect (issue 15 item 4): kriging variance with planned points,
the pre-posterior class decision, a noisy sample inside a parcel, locality, and the
greedy scores kept exact after each pick."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import X0, Y0, make_parcels
from scipy.stats import multivariate_normal

from farmland.geostats.variance import (
    kriging_variance,
    neighbourhood_systems,
    variance_with_point,
)
from farmland.geostats.variogram import VariogramModel
from farmland.sampling import preposterior as pp
from farmland.sampling.expected import EffectSettings, ExpectedEffect
from farmland.sampling.scoring import CandidateScores

#: C(h) = exp(−h / 100 m): exponential, no nugget, sill 1, practical range 300 m
EXP300 = VariogramModel("exponential", 0.0, 1.0, 300.0)
E1, E2, ES2 = math.exp(-1), math.exp(-2), math.exp(-math.sqrt(2))


# ------------------------------------------------------------------ kriging variance
def test_ordinary_kriging_variance_with_a_planned_third_point_by_hand():
    """Target t = (0, 0); samples at (±100, 0); planned point at (0, 100)."""
    t = np.array([[0.0, 0.0]])
    two = np.array([[100.0, 0.0], [-100.0, 0.0]])
    # before: [[1, e⁻², 1], [e⁻², 1, 1], [1, 1, 0]] [w1, w2, μ] = [e⁻¹, e⁻¹, 1];
    # symmetry gives w1 = w2 = ½, row 1: ½ + ½e⁻² + μ = e⁻¹, and
    # σ² = C(0) − w·c − μ = 1 − e⁻¹ − (e⁻¹ − ½ − ½e⁻²) = 1.5 − 2e⁻¹ + ½e⁻² = 0.831909
    before = 1.5 - 2 * E1 + 0.5 * E2
    assert before == pytest.approx(0.831909, abs=1e-6)
    assert kriging_variance(EXP300, two, t, k=16)[0] == pytest.approx(before, rel=1e-12)
    # after: C(p1, p3) = C(p2, p3) = e^(−√2), C(t, p3) = e⁻¹. Symmetry: w1 = w2 = a,
    # w3 = b = 1 − 2a. Rows 1 and 3: a(1 + e⁻²) + b e^(−√2) + μ = e⁻¹ and
    # 2a e^(−√2) + b + μ = e⁻¹; their difference gives
    # a = (1 − e^(−√2)) / (3 + e⁻² − 4 e^(−√2)) = 0.349944, b = 0.300112,
    # μ = e⁻¹ − b − 2a e^(−√2) = −0.102388 and σ² = 1 − e⁻¹(2a + b) − μ = 0.734507
    a = (1 - ES2) / (3 + E2 - 4 * ES2)
    b = 1 - 2 * a
    mu = E1 - b - 2 * a * ES2
    after = 1 - E1 * (2 * a + b) - mu
    assert (a, b, mu, after) == pytest.approx((0.349944, 0.300112, -0.102387, 0.734507),
                                              abs=1e-6)
    sets = np.array([[0, 1]])
    systems = neighbourhood_systems(EXP300, two, t, sets)
    planned = variance_with_point(systems, EXP300, np.array([0]), np.array([[0.0, 100.0]]))
    assert planned[0] == pytest.approx(after, rel=1e-12)
    three = np.vstack([two, [[0.0, 100.0]]])
    assert kriging_variance(EXP300, three, t, k=16)[0] == pytest.approx(after, rel=1e-12)


def _hand_effect(variogram: VariogramModel):
    """The hand example's effect: parcel T (p_class 0.6 / 0.4) at the target, parcel P at
    (0, 100), samples at (±100, 0); ``(evaluation points, effect)``."""
    parcels = make_parcels([(-10, -10, 10, 10), (-10, 90, 10, 110)],
                           parcel_id=["T", "P"], final_class=[1, 1],
                           rule=["interpolated:area_majority"] * 2,
                           p_class_1=[0.6, 0.9], p_class_2=[0.4, 0.1], p_class_3=[0.0, 0.0])
    xy = np.array([[X0, Y0], [X0, Y0 + 100]])
    fixed = np.array([[X0 + 100, Y0], [X0 - 100, Y0]])
    return xy, ExpectedEffect(parcels, fixed, xy, np.array([0, 1]), np.array([0.6, 0.6]),
                              EffectSettings(variogram))


def test_the_effect_follows_the_kriging_variance_of_the_hand_example():
    """One interpolated parcel at the target, the two samples, a sample planned at
    (0, 100) in another parcel: its loss is the pre-posterior loss at r² = 0.734507 /
    0.831909."""
    xy, effect = _hand_effect(EXP300)
    z1, z2 = pp.latent_thresholds([0.6], [0.4], [0.0])
    assert effect.loss[0] == pytest.approx(0.4)   # class 1 (P(≥2) = 0.4 < 0.5): loss 0.4
    effect.commit(xy[1], 1, row=1)
    r = math.sqrt(0.734507 / 0.831909)
    assert effect.var_now[0] == pytest.approx(0.734507, abs=1e-6)
    assert effect.loss[0] == pytest.approx(pp.expected_loss(z1, z2, [r], 0.3, 0.5)[0],
                                           abs=1e-6)
    assert effect.loss[0] < 0.4
    # per parcel: T's one active point at r²; P holds the new sample (no active point)
    ratio = effect.variance_ratio()
    assert ratio[0] == pytest.approx(0.734507 / 0.831909, abs=1e-6)
    assert np.isnan(ratio[1])


def test_the_effect_reads_an_anisotropic_variogram_in_its_kriging_space():
    """The hand example with the variogram twice as long east-west (azimuth 90°, ratio 2):
    the samples at (±100, 0) lie along the major axis (100 m in the kriging space), the
    planned point at (0, 100) across it (200 m): the variances are the isotropic
    variogram's with the planned point at (0, 200)."""
    turned = VariogramModel("exponential", 0.0, 1.0, 300.0, 2.0, 90.0)
    xy, effect = _hand_effect(turned)
    t, two = np.array([[0.0, 0.0]]), np.array([[100.0, 0.0], [-100.0, 0.0]])
    assert effect.var0[0] == pytest.approx(1.5 - 2 * E1 + 0.5 * E2, rel=1e-9)
    effect.commit(xy[1], 1, row=1)
    across = kriging_variance(EXP300, np.vstack([two, [[0.0, 200.0]]]), t, k=16)[0]
    assert effect.var_now[0] == pytest.approx(across, rel=1e-9)
    along = kriging_variance(EXP300, np.vstack([two, [[0.0, 100.0]]]), t, k=16)[0]
    assert across > along + 0.05   # the isotropic reading would have promised more


def test_a_planned_point_beyond_the_neighbourhood_changes_nothing():
    """k = 2: the target's neighbourhood is its two samples 100 m away; a point 150 m
    away (beyond them) joins no neighbourhood and changes neither σ² nor the loss,
    while a point 80 m away does."""
    parcels = make_parcels([(-10, -10, 10, 10), (140, -10, 160, 10), (-10, 70, 10, 90)],
                           parcel_id=["T", "FAR", "NEAR"], final_class=[1, 1, 1],
                           rule=["interpolated:area_majority"] * 3,
                           p_class_1=[0.6, 0.99999, 0.99999], p_class_2=[0.4, 1e-5, 1e-5],
                           p_class_3=[0.0, 0.0, 0.0])
    xy = np.array([[X0, Y0], [X0 + 150, Y0], [X0, Y0 + 80]])
    fixed = np.array([[X0 + 100, Y0], [X0 - 100, Y0]])
    effect = ExpectedEffect(parcels, fixed, xy, np.array([0, 1, 2]), np.ones(3),
                            EffectSettings(EXP300, neighbours=2))
    assert effect.radius[0] == pytest.approx(100.0)
    scores = CandidateScores(effect, np.ones(3, dtype=bool))
    assert scores.kriging[1] == 0.0 and scores.kriging[2] > 0.0
    var, loss = effect.var_now[0], effect.loss[0]
    _, touched = effect.commit(xy[1], 1, row=1)
    assert effect.var_now[0] == var and effect.loss[0] == loss
    assert 0 not in touched
    effect.commit(xy[2], 2, row=2)
    assert effect.var_now[0] < var and effect.loss[0] < loss


# ------------------------------------------------------------------ pre-posterior
def test_bivariate_normal_cdf_matches_scipy():
    rng = np.random.default_rng(3)
    h, k = rng.normal(0, 2, (2, 40))
    rho = rng.uniform(-0.95, 0.95, 40)
    ours = pp.bivariate_normal_cdf(h, k, rho)
    ref = [multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([a, b])
           for a, b, r in zip(h, k, rho)]
    np.testing.assert_allclose(ours, ref, atol=1e-7)
    assert pp.bivariate_normal_cdf(0.0, 0.0, 0.5) == pytest.approx(1 / 3)


def test_expected_loss_of_a_fifty_fifty_cell_by_hand():
    """Two classes split at today's mean (z₁ = 0, no class 3), median rule: after the
    update the decision is the sign of ξ and the truth the sign of U, corr(ξ, U) = s,
    so P(wrong) = arccos(s)/π; the decision flips for half of the ξ."""
    z1, z2 = np.array([0.0]), np.array([pp.Z_CAP])
    for r in (0.6, 0.8):
        s = math.sqrt(1 - r * r)
        assert pp.expected_loss(z1, z2, [r], 0.5, 0.5)[0] == pytest.approx(
            math.acos(s) / math.pi, abs=1e-9)
    assert math.acos(0.8) / math.pi == pytest.approx(0.204833, abs=1e-6)
    assert pp.decision_change(z1, z2, [0.6], 0.5, 0.5)[0] == pytest.approx(0.5)
    assert pp.expected_loss(z1, z2, [1.0], 0.5, 0.5)[0] == pytest.approx(0.5)   # no change
    assert pp.expected_loss(z1, z2, [0.0], 0.5, 0.5)[0] == pytest.approx(0.0)   # certain


def test_one_noisy_sample_near_a_threshold_is_close_to_a_coin_flip():
    """Y ~ N(0, 0.75) against the threshold 0, Z = Y + ε with var ε = 0.25: the sample's
    class is wrong with P = arccos(√0.75)/π = 1/6; without noise never; with noise much
    larger than the spread of the soil nearly a coin flip."""
    z1, z2 = np.array([0.0]), np.array([pp.Z_CAP])
    assert pp.sample_loss(z1, z2, 0.75, 0.25)[0] == pytest.approx(1 / 6, abs=1e-9)
    assert pp.sample_loss(z1, z2, 1.0, 0.0)[0] == pytest.approx(0.0, abs=1e-9)
    assert pp.sample_loss(z1, z2, 0.01, 1.0)[0] > 0.45
    # far from the threshold one sample is almost always right
    assert pp.sample_loss(np.array([2.5]), z2, 0.75, 0.25)[0] < 0.01


def test_the_risk_rule_can_make_more_information_look_worse():
    """P(1) = 0.84, P(3) = 0.16: class 1 today (loss 0.16). After the update some draws
    reach P(3) ≥ 0.3 and are called class 3 while most of their mass is still class 1:
    the precautionary rule trades misclassification for class-3 recall."""
    z1, z2 = pp.latent_thresholds([0.84], [0.0], [0.16])
    today = pp.today_loss(z1, z2, 0.3, 0.5)[0]
    assert today == pytest.approx(0.16)
    assert pp.expected_loss(z1, z2, [0.9], 0.3, 0.5)[0] > today
    assert pp.expected_loss(z1, z2, [0.9], 0.5, 0.5)[0] <= today + 1e-12


# ------------------------------------------------------------------ greedy scores
def test_scores_kept_after_picks_equal_a_fresh_computation():
    from test_sampling import field_case

    from farmland.sampling.modes import pick_uncertainty
    from farmland.sampling.planner import _build_state

    parcels, samples, _ = field_case()
    state = _build_state(parcels, samples, settings=EffectSettings(
        VariogramModel("spherical", 0.1, 1.0, 600.0), neighbours=4), min_spacing=250.0,
        exclusions=None, flags=None, spacing=None, edge_distance=5.0)
    total = state.effect.total()
    assert pick_uncertainty(state, 5) == 5
    fresh = CandidateScores(state.effect, state.available)
    ok = state.available
    np.testing.assert_allclose(state.scores()[ok], fresh.scores()[ok], atol=1e-9)
    # the points' benefits add up to the drop in expected misclassified area
    assert sum(p["benefit"] for p in state.picks) == pytest.approx(total - state.effect.total())


# ------------------------------------------------------------------ the calibrated truth
def test_calibrated_truth_by_hand():
    """Model (0.5, 0.3, 0.2): cuts z₁ = 0, z₂ = Φ⁻¹(0.8) = 0.841621. Calibrated
    (0.7, 0.2, 0.1): w₁ = Φ⁻¹(0.7) = 0.524401, w₂ = Φ⁻¹(0.9) = 1.281552, so
    σ_c = 0.841621 / 0.757151 = 1.111563 and μ_c = 0 − σ_c·w₁ = −0.582904; the truth
    N(μ_c, σ_c²) then gives P(T ≤ z₁) = 0.7 and P(T ≤ z₂) = 0.9."""
    z1, z2 = pp.latent_thresholds([0.5], [0.3], [0.2])
    mu, sd = pp.calibrated_truth(z1, z2, [0.7], [0.2], [0.1])
    assert (mu[0], sd[0]) == pytest.approx((-0.582904, 1.111563), abs=1e-6)
    # today (median rule: P(≥2) = 0.5 → class 2) is wrong when the truth is not 2: 1 − 0.2
    assert pp.today_loss(z1, z2, 0.5, 0.5, 0.0, mu, sd)[0] == pytest.approx(0.8, abs=1e-9)
    # one cut only (no class 3 either way): the model's spread √(1 − ν), μ from that cut
    z1, z2 = pp.latent_thresholds([0.5], [0.5], [0.0])
    q1 = pp.ndtr(0.5)                                  # 0.691462
    mu, sd = pp.calibrated_truth(z1, z2, [q1], [1 - q1], [0.0], nu=0.36)
    assert (mu[0], sd[0]) == pytest.approx((-0.8 * 0.5, 0.8), abs=1e-6)
    # missing calibrated probabilities: the model's truth
    mu, sd = pp.calibrated_truth(z1, z2, [np.nan], [np.nan], [np.nan], nu=0.36)
    assert (mu[0], sd[0]) == (0.0, pytest.approx(0.8))


def test_expected_loss_with_a_calibrated_truth_by_hand_and_by_simulation():
    """Two classes cut at z₁ = 0, median rule, ν = 0; the calibrated truth N(−0.5, 1).
    With r = 0.8 (s² = 0.36): the move M = κT + η, κ = s² = 0.36, var η = s² − s⁴, so
    M ~ N(κμ, s²) = N(−0.18, 0.36) and corr(M, T) = s = 0.6. Class 2 after when M ≥ 0;
    standardised: ξ ≥ 0.18/0.6 = 0.3 and the truth Y = T + 0.5 above 0.5 is class 2:
    P(wrong) = [Φ(0.5) − Φ₂(0.3, 0.5; 0.6)] + [Φ(0.3) − Φ₂(0.3, 0.5; 0.6)]."""
    z1, z2 = np.array([0.0]), np.array([pp.Z_CAP])
    mu, sd = np.array([-0.5]), np.array([1.0])
    f = multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]]).cdf([0.3, 0.5])
    by_hand = (pp.ndtr(0.5) - f) + (pp.ndtr(0.3) - f)
    got = pp.expected_loss(z1, z2, [0.8], 0.5, 0.5, 0.0, mu, sd)[0]
    assert got == pytest.approx(by_hand, abs=1e-6)
    # the generative model itself, drawn
    rng = np.random.default_rng(5)
    t = rng.normal(-0.5, 1.0, 400_000)
    m = 0.36 * t + rng.normal(0.0, math.sqrt(0.36 - 0.36**2), t.size)
    assert got == pytest.approx(np.mean((m >= 0) != (t > 0)), abs=4e-3)
    # the decision moves to class 1 more often than the model truth says (bias −0.18)
    assert pp.decision_change(z1, z2, [0.8], 0.5, 0.5, 0.0, mu, sd)[0] == pytest.approx(
        pp.ndtr(0.3), abs=1e-9)
    assert pp.decision_change(z1, z2, [0.8], 0.5, 0.5)[0] == pytest.approx(0.5)
    # today: class 2 (P(≥2) = 0.5), the calibrated truth says class 1 with 0.691462
    assert pp.today_loss(z1, z2, 0.5, 0.5, 0.0, mu, sd)[0] == pytest.approx(0.691462,
                                                                             abs=1e-6)
    # a noisy sample in the parcel measures N(−0.5, 1) + ε: with var ε = 0 it is right
    assert pp.sample_loss(z1, z2, 1.0, 0.0, mu)[0] == pytest.approx(0.0, abs=1e-9)
    assert pp.sample_change(z1, z2, 1.0, 0.0, 0.5, 0.5, mu)[0] == pytest.approx(0.691462,
                                                                                abs=1e-6)


def test_replaying_the_picks_under_the_calibrated_truth_equals_ranking_by_it():
    """The planner ranks by the model's truth and reports under the calibrated one:
    replaying the commits gives the same losses, totals and drops as an effect that
    committed the same points under the calibrated truth throughout."""
    from test_sampling import field_case

    from farmland.sampling.modes import pick_uncertainty
    from farmland.sampling.planner import _build_state, candidate_effect

    parcels, samples, _ = field_case()
    rng = np.random.default_rng(11)
    shift = rng.uniform(-0.15, 0.15, len(parcels))
    parcels["p_calibrated_1"] = np.clip(parcels["p_class_1"] + shift, 0.01, 0.99)
    parcels["p_calibrated_2"] = 1 - parcels["p_calibrated_1"]
    parcels["p_calibrated_3"] = 0.0
    variogram = VariogramModel("spherical", 0.1, 1.0, 600.0)
    ranked = EffectSettings(variogram, neighbours=4)
    state = _build_state(parcels, samples, settings=ranked, min_spacing=250.0,
                         exclusions=None, flags=None, spacing=None, edge_distance=5.0)
    assert state.effect.truth == "model"
    assert pick_uncertainty(state, 6) == 6
    model_drops = [p["benefit"] for p in state.picks]
    before, drops = state.effect.replay("calibrated")
    same = EffectSettings(variogram, neighbours=4, ranking_truth="calibrated")
    direct = candidate_effect(parcels, state.fixed_xy, state.cand_xy, state.cand_parcel, same)
    assert direct.truth == "calibrated"
    np.testing.assert_allclose(before, direct.parcel_totals(), atol=1e-12)
    expected = [direct.commit(p["xy"], p["parcel"], row=p["cand"])[0] for p in state.picks]
    np.testing.assert_allclose(drops, expected, atol=1e-9)
    np.testing.assert_allclose(state.effect.loss, direct.loss, atol=1e-12)
    np.testing.assert_allclose(state.effect.change_probability(),
                               direct.change_probability(), atol=1e-12)
    assert not np.allclose(drops, model_drops)      # the truths do differ here
    # back to the model: the drops the picks were ranked with
    _, again = state.effect.replay("model")
    np.testing.assert_allclose(again, model_drops, atol=1e-12)


def test_a_plan_reports_its_benefits_and_reasons_under_the_calibrated_truth():
    """plan_sampling ranks by the model's truth and reports under the calibrated one:
    the points' benefits add up to plan_effect's drop, and a neighbour reason's figure is
    the point's expected_benefit."""
    import re

    from test_sampling import field_case

    from farmland.sampling.effect import parcel_effect
    from farmland.sampling.planner import plan_sampling

    parcels, samples, _ = field_case()
    shift = np.random.default_rng(11).uniform(-0.15, 0.15, len(parcels))
    parcels["p_calibrated_1"] = np.clip(parcels["p_class_1"] + shift, 0.01, 0.99)
    parcels["p_calibrated_2"] = 1 - parcels["p_calibrated_1"]
    parcels["p_calibrated_3"] = 0.0
    variogram = VariogramModel("spherical", 0.1, 1.0, 600.0)
    plan, planned = plan_sampling(parcels, samples, n=8, mode="uncertainty",
                                  variogram=variogram, return_effect=True)
    assert planned.effect.truth == "calibrated"
    assert "truth calibrated (picks ranked by the model truth)" in plan.attrs["planner"]["effect"]
    effect = parcel_effect(parcels, samples, plan, planned=planned)
    fresh = parcel_effect(parcels, samples, plan)        # recomputed, then replayed
    np.testing.assert_allclose(effect["misclassified_after"], fresh["misclassified_after"],
                               atol=1e-9)
    drop = (effect["misclassified_before"] - effect["misclassified_after"]).sum()
    assert plan["expected_benefit"].sum() == pytest.approx(drop, abs=1e-3)
    checked = 0
    for reason, benefit in zip(plan["reason"], plan["expected_benefit"]):
        figure = re.search(r"([\d.]+) 亩 fewer expected misclassified", reason)
        if figure:
            assert float(figure.group(1)) == pytest.approx(benefit, abs=0.05)
            checked += 1
    assert checked >= 1


def test_a_point_the_model_is_sure_of_stays_inactive_under_the_calibrated_floor():
    """The calibration never says less than 0.001 of a class (CERTAINTY_LIMIT): under the
    calibrated truth a parcel the model is sure of (loss 0.0001 < ACTIVE_LOSS) keeps that
    loss, and it does not join the kriging systems the planner keeps (at province scale
    nearly every point would: 4.0 → 6.5 GB for `farmland plan` before this rule)."""
    parcels = make_parcels([(-10, -10, 10, 10), (-10, 90, 10, 110)],
                           parcel_id=["SURE", "OPEN"], final_class=[1, 1],
                           rule=["interpolated:area_majority"] * 2,
                           p_class_1=[0.9999, 0.6], p_class_2=[0.0001, 0.4],
                           p_class_3=[0.0, 0.0], p_calibrated_1=[0.999, 0.7],
                           p_calibrated_2=[0.001, 0.3], p_calibrated_3=[0.0, 0.0])
    xy = np.array([[X0, Y0], [X0, Y0 + 100]])
    fixed = np.array([[X0 + 100, Y0], [X0 - 100, Y0]])
    effect = ExpectedEffect(parcels, fixed, xy, np.array([0, 1]), np.array([0.6, 0.6]),
                            EffectSettings(EXP300))
    assert effect.active.tolist() == [1]
    before, _ = effect.replay("calibrated")
    assert before[0] == pytest.approx(0.6 * 0.001, rel=1e-6)      # 亩 × (1 − 0.999)
    assert before[1] == pytest.approx(0.6 * 0.3, rel=1e-6)
