"""The sampling planner (farmland.sampling.planner); ``farmland plan`` is in test_cli_plan.py."""

from __future__ import annotations

import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import X0, Y0, make_parcels, make_points
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farmland.errors import InputError
from farmland.sampling import effect as effect_module
from farmland.sampling.effect import parcel_effect, plan_effect
from farmland.sampling.modes import best_candidate, candidate_points
from farmland.sampling.planner import (
    MODES,
    PLAN_COLUMNS,
    _split,
    plan_sampling,
)

NAN = np.nan


def _parcels(boxes, **cols):
    """Class-1 parcels Q0, Q1 … in township T1 (boxes in metres from X0, Y0)."""
    return make_parcels(boxes, **{"parcel_id": [f"Q{i}" for i in range(len(boxes))],
                                  "final_class": [1] * len(boxes), **cols})


def _samples(xy):
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return make_points(xy, sample_id=[f"S{i}" for i in range(len(xy))])


def _local(plan):
    return plan[["x", "y"]].to_numpy() - [X0, Y0]


# ------------------------------------------------------------------ invariants
@st.composite
def layouts(draw):
    """1-6 parcels (boxes or L shapes) in slots of a 3 x 2 grid of 600 m squares."""
    slots = draw(st.permutations(range(6)))[:draw(st.integers(1, 6))]
    geoms, classes = [], []
    for slot in slots:
        sx, sy = (slot % 3) * 600.0, (slot // 3) * 600.0
        w = draw(st.floats(20, 580))
        h = draw(st.floats(20, 580))
        x = sx + draw(st.floats(0, 580 - w))
        y = sy + draw(st.floats(0, 580 - h))
        g = shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)
        if draw(st.booleans()):  # L shape: cut away the upper-right quarter
            g = g.difference(shapely.box(X0 + x + w / 2, Y0 + y + h / 2, X0 + x + w, Y0 + y + h))
        geoms.append(g)
        classes.append(draw(st.sampled_from([1, 2, 3, None])))
    n = len(geoms)
    p1 = draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))
    parcels = gpd.GeoDataFrame({
        "parcel_id": [f"R{i}" for i in range(n)], "township": ["T1"] * n,
        "final_class": pd.array(classes, dtype="Int8"),
        "p_class_1": p1, "p_class_2": [1 - p for p in p1], "p_class_3": [0.0] * n},
        geometry=geoms, crs="EPSG:4545")
    pts = draw(st.lists(st.tuples(st.floats(0, 1800), st.floats(0, 1200)), max_size=4))
    return parcels, _samples(pts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts(), n=st.integers(1, 12), seed=st.integers(0, 10_000),
       min_spacing=st.sampled_from([0.0, 100.0, 250.0, 400.0]), mode=st.sampled_from(MODES),
       exclude=st.booleans())
def test_every_point_inside_farmland_spaced_and_outside_exclusions(layout, n, seed,
                                                                  min_spacing, mode, exclude):
    parcels, samples = layout
    exclusions = gpd.GeoSeries([shapely.box(X0 + 300, Y0 + 300, X0 + 900, Y0 + 900)],
                               crs="EPSG:4545") if exclude else None
    sources = gpd.GeoDataFrame({"source_id": ["F1"], "name": ["mill"]},
                               geometry=shapely.points([[X0 + 900, Y0 + 600]]), crs="EPSG:4545")
    plan = plan_sampling(parcels, samples, n=n, mode=mode, min_spacing=min_spacing, seed=seed,
                         exclusions=exclusions, sources=sources)
    assert len(plan) <= n
    assert plan["point_id"].tolist() == [f"P{i:03d}" for i in range(1, len(plan) + 1)]
    by_id = parcels.set_index("parcel_id").geometry
    for pt, pid in zip(plan.geometry, plan["parcel_id"]):
        assert by_id[pid].contains(pt)           # strictly inside its parcel
        if exclusions is not None:
            assert not exclusions.iloc[0].intersects(pt)
    xy = np.column_stack([plan.geometry.x, plan.geometry.y])
    if len(xy) > 1:
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(xy), 1)].min() >= min_spacing - 1e-6
    if len(xy) and len(samples):
        s = np.column_stack([samples.geometry.x, samples.geometry.y])
        assert np.hypot(*(xy[:, None, :] - s[None, :, :]).transpose(2, 0, 1)).min() >= (
            min_spacing - 1e-6)


def test_candidates_are_inside_and_away_from_edges():
    geoms = np.array([shapely.box(0, 0, 300, 200), shapely.box(1000, 0, 1030, 30)])
    xy, owner = candidate_points(geoms, spacing=100.0, edge_distance=5.0)
    # 3 x 2 cell centres in the first box; the 30 m box holds none -> its centre
    assert xy[owner == 0].tolist() == [[50, 50], [50, 150], [150, 50], [150, 150],
                                       [250, 50], [250, 150]]
    assert xy[owner == 1].tolist() == [[1015, 15]]


# ------------------------------------------------------------------ coverage
def test_coverage_fills_the_far_side_of_a_square():
    square = _parcels([(0, 0, 1000, 1000)])
    corner = _samples([(50, 50)])
    plan = plan_sampling(square, corner, n=1, mode="coverage", seed=0)
    # With the corner sample fixed, k-means moves the one free centre to the centroid
    # of the grid cells nearer to it than to the corner: (550, 550), a cell centre.
    assert _local(plan).tolist() == [[550.0, 550.0]]
    assert plan["mode"].tolist() == ["coverage"]
    g = np.arange(50, 1000, 100.0)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])

    def mean_nearest(points):
        pts = np.asarray(points)
        return np.hypot(*(grid[:, None, :] - pts[None]).transpose(2, 0, 1)).min(axis=1).mean()

    # before: 100 m x mean of sqrt(i² + j²) over i, j = 0..9 = 700.30 m
    assert mean_nearest([(50, 50)]) == pytest.approx(700.30, abs=0.01)
    # after: the far 66 cells (i + j >= 11 ... the Voronoi half) move to (550, 550): 338.99 m
    assert mean_nearest([(50, 50), (550, 550)]) == pytest.approx(338.99, abs=0.01)
    three = plan_sampling(square, corner, n=3, mode="coverage", seed=0)
    assert mean_nearest([(50, 50), *_local(three)]) == pytest.approx(207.02, abs=0.01)


def test_coverage_restricted_to_flagged_area():
    parcels = _parcels([(0, 0, 1000, 1000), (2000, 0, 3000, 1000)])
    flagged = gpd.GeoSeries([shapely.box(X0 + 2000, Y0, X0 + 3000, Y0 + 1000)], crs="EPSG:4545")
    plan = plan_sampling(parcels, _samples([]), n=3, mode="coverage", flags=flagged)
    assert (plan["parcel_id"] == "Q1").all()
    assert (_local(plan)[:, 0] > 2000).all()


# ------------------------------------------------------------------ uncertainty
def _grid_5x5(uncertain=(1, 3)):
    boxes, p1, p2 = [], [], []
    for row in range(5):
        for col in range(5):
            boxes.append((col * 200, row * 200, (col + 1) * 200, (row + 1) * 200))
            near_half = (col, row) == uncertain
            p1.append(0.5 if near_half else 0.95)
            p2.append(0.5 if near_half else 0.05)
    return _parcels(boxes, p_class_1=p1, p_class_2=p2, p_class_3=[0.0] * 25)


def test_uncertainty_mode_picks_the_fifty_fifty_parcel_first():
    parcels = _grid_5x5()
    plan = plan_sampling(parcels, _samples([(900, 100)]), n=3, mode="uncertainty",
                         variogram_range=300.0, candidate_spacing=200.0)
    first = plan.iloc[0]
    assert first["parcel_id"] == "Q16"                     # col 1, row 3
    assert _local(plan)[0].tolist() == [300.0, 700.0]      # its centre
    # P(1) = P(2) = 0.5: class 2 today (P(≥2) ≥ 0.5); the sample's class is 1 or 2 with
    # probability 0.5 each
    assert first["reason"] == ("类别概率不确定（变化概率高）: p(change)=0.50 / uncertain class "
                               "probabilities (high chance of a class change), p(change)=0.50")
    assert first["priority"] == 1
    # own parcel: 60 亩 x (0.5 − P(sample class wrong)); the variogram has no nugget, so the
    # sample's error is the floor ln(1 + 0.2²) against the soil variance σ²: with the
    # threshold at the mean, P(wrong) = arccos(ρ)/π, ρ = √(1 / (1 + ln(1.04)/σ²)); on top
    # come the neighbours' gains (each 60 亩 x 0.05 today at most)
    own = _own_gain_fifty_fifty(plan)
    assert own < first["expected_benefit"] < own + 24 * 60 * 0.05
    assert plan["expected_benefit"].is_monotonic_decreasing


def test_greedy_pick_ignores_last_bit_differences_and_takes_the_first_of_equals():
    """Scores 1e-9 亩 apart are equal to the pick (another machine's BLAS kernels move the
    last bits); 2e-6 亩 apart they are not; unavailable candidates are −∞."""
    assert best_candidate(np.array([5.0, 5.0 + 1e-9, 4.0])) == 0
    assert best_candidate(np.array([5.0 + 1e-9, 5.0, 4.0])) == 0
    assert best_candidate(np.array([5.0, 5.0 + 2e-6, 4.0])) == 1
    assert best_candidate(np.array([-np.inf, 3.0, 3.0 - 4e-7])) == 1


def _own_gain_fifty_fifty(plan) -> float:
    """60 亩 x (0.5 − arccos(ρ)/π) for the fifty-fifty parcel of _grid_5x5 with the sample
    at (900, 100) and the test's variogram (exponential, range 300 m, no nugget, sill 1):
    one sample 721 m away gives the soil variance 2γ(721 m)."""
    from farmland.geostats.variance import kriging_variance
    from farmland.geostats.variogram import VariogramModel

    var = kriging_variance(VariogramModel("exponential", 0.0, 1.0, 300.0),
                           np.array([[X0 + 900, Y0 + 100]]), np.array([[X0 + 300, Y0 + 700]]),
                           k=16)[0]
    rho = math.sqrt(1.0 / (1.0 + math.log(1.04) / var))
    return 60 * (0.5 - math.acos(rho) / math.pi)


def test_random_mode_is_seeded():
    parcels = _grid_5x5()
    a = plan_sampling(parcels, _samples([(900, 100)]), n=4, mode="random", seed=1)
    b = plan_sampling(parcels, _samples([(900, 100)]), n=4, mode="random", seed=1)
    c = plan_sampling(parcels, _samples([(900, 100)]), n=4, mode="random", seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert a["x"].tolist() != c["x"].tolist()
    assert (a["mode"] == "random").all() and (a["reason"] == "随机布点 / random point").all()


# ------------------------------------------------------------------ sources
@pytest.mark.parametrize("bearing, expected", [(90.0, [2350.0, 2050.0]),
                                               (None, [2050.0, 2350.0])])
def test_sources_ring_downstream_first(bearing, expected):
    parcels = _parcels([(0, 0, 4000, 4000)])
    src = gpd.GeoDataFrame({"source_id": ["F1"], "name": ["冶炼厂"],
                            "downstream_bearing": [bearing]},
                           geometry=shapely.points([[X0 + 2050, Y0 + 2050]]), crs="EPSG:4545")
    plan = plan_sampling(parcels, _samples([]), n=4, mode="sources", sources=src)
    assert _local(plan)[0].tolist() == expected   # 300 m east (downstream) or north
    assert plan["reason"].iloc[0].startswith("污染源 冶炼厂（F1）")
    r = np.hypot(*(_local(plan) - [2050, 2050]).T)
    assert ((r >= 150) & (r <= 450)).all()


def test_sources_mode_needs_sources_and_mode_is_checked():
    parcels = _parcels([(0, 0, 500, 500)])
    with pytest.raises(InputError, match="mode 'sources' needs pollution sources"):
        plan_sampling(parcels, _samples([]), mode="sources")
    with pytest.raises(InputError, match="unknown sampling mode 'grid'"):
        plan_sampling(parcels, _samples([]), mode="grid")
    with pytest.raises(InputError, match="no farmland parcel with a geometry"):
        plan_sampling(parcels.iloc[:0], _samples([]))


def test_exclusions_in_another_crs_are_reprojected():
    parcels = _parcels([(0, 0, 300, 300), (1000, 0, 1300, 300)])
    ex = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 400, Y0 + 400)],
                          crs="EPSG:4545").to_crs(4490)
    plan = plan_sampling(parcels, _samples([]), n=4, mode="coverage", exclusions=ex)
    # Q0 lies in the exclusion; Q1's first point is its centre, and every other place in
    # Q1 is within the half-diagonal 212 m of it, closer than the 250 m spacing
    assert plan["parcel_id"].tolist() == ["Q1"]
    assert _local(plan).tolist() == [[1150.0, 150.0]]


# ------------------------------------------------------------------ combined
def test_budget_split_largest_remainder_and_reallocation():
    assert _split(60, None, has_sources=True) == {"uncertainty": 30, "coverage": 21,
                                                  "sources": 9}
    # no sources: 60 x 0.5/0.85 = 35.29 and 60 x 0.35/0.85 = 24.71 -> 35 + 25
    assert _split(60, None, has_sources=False) == {"uncertainty": 35, "coverage": 25,
                                                   "sources": 0}
    with pytest.raises(InputError, match="shares must be non-negative"):
        _split(10, {"random": 1.0}, has_sources=False)


def field_case():
    """144 slots of 240 m parcels, 70 % filled, random class probabilities; 6 samples and one
    source (also test_cli_plan.py)."""
    rng = np.random.default_rng(7)
    boxes, p1 = [], []
    for row in range(12):
        for col in range(12):
            if rng.random() < 0.7:
                boxes.append((col * 250, row * 250, col * 250 + 240, row * 250 + 240))
                p1.append(float(rng.uniform(0.4, 1.0)))
    parcels = _parcels(boxes, p_class_1=p1, p_class_2=[1 - p for p in p1],
                       p_class_3=[0.0] * len(p1),
                       township=["T1" if b[0] < 1500 else "T2" for b in boxes])
    samples = _samples(rng.uniform(0, 3000, (6, 2)))
    sources = gpd.GeoDataFrame({"source_id": ["F1"], "name": ["mill"]},
                               geometry=shapely.points([[X0 + 1500, Y0 + 1500]]),
                               crs="EPSG:4545")
    return parcels, samples, sources


@pytest.fixture
def field():
    return field_case()


def test_combined_plan_columns_modes_and_determinism(field):
    parcels, samples, sources = field
    a = plan_sampling(parcels, samples, n=20, sources=sources, seed=3)
    b = plan_sampling(parcels, samples, n=20, sources=sources, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == PLAN_COLUMNS + ["geometry"]
    assert a["mode"].value_counts().to_dict() == {"uncertainty": 10, "coverage": 7,
                                                  "sources": 3}
    assert a["priority"].tolist() == list(range(1, 21))
    assert a.crs.to_epsg() == 4545
    # lon/lat are WGS84 with 6 decimals, x/y the metric coordinates with 2
    back = gpd.GeoSeries(gpd.points_from_xy(a["lon"], a["lat"]), crs=4326).to_crs(4545)
    assert np.hypot(back.x - a["x"], back.y - a["y"]).max() < 0.2
    assert (a["lon"].round(6) == a["lon"]).all() and (a["x"].round(2) == a["x"]).all()


def test_inputs_not_mutated(field):
    parcels, samples, sources = field
    p0, s0 = parcels.copy(), samples.copy()
    plan_sampling(parcels, samples, n=5, sources=sources)
    pd.testing.assert_frame_equal(parcels, p0)
    pd.testing.assert_frame_equal(samples, s0)


def test_fewer_points_than_asked_logs_a_warning(caplog):
    tiny = _parcels([(0, 0, 200, 200)])
    with caplog.at_level(logging.WARNING, logger="farmland.sampling.planner"):
        plan = plan_sampling(tiny, _samples([]), n=5, mode="coverage")
    assert len(plan) == 1
    assert "only 1 of 5 points fit the constraints" in caplog.text


def test_target_density_sets_the_budget():
    parcels = _parcels([(0, 0, 2000, 1000)])        # 2 km² of farmland
    plan = plan_sampling(parcels, _samples([(100, 100)]), target_density=2.0,
                         mode="coverage")
    assert len(plan) == 3                            # 2/km² x 2 km² − 1 existing


# ------------------------------------------------------------------ effect
def test_plan_effect_before_and_after():
    parcels = _parcels([(0, 0, 100, 100), (2000, 0, 2100, 100)], township=["T1", "T2"],
                       p_class_1=[0.6, 0.6], p_class_2=[0.4, 0.4], p_class_3=[0.0, 0.0])
    samples = _samples([(50, 50)])
    plan = plan_sampling(parcels, samples, n=1, mode="uncertainty")
    assert _local(plan).tolist() == [[2050.0, 50.0]]
    # each parcel: class 1 today (P(≥2) = 0.4 < 0.5), 15 亩 x (1 − 0.6) = 6 亩 expected
    # misclassified; the new point gives Q1 its own sample (wrong with the small
    # probability of its error, see below); Q0's kriging neighbourhood gains the point,
    # but with the exponential 1 km model at 2 km the variance barely moves
    eff = plan_effect(parcels, samples, plan).set_index("township")
    county = eff.loc["全县 County"]
    assert county["mean_dist_before_m"] == pytest.approx(1000.0)   # (0·15 + 2000·15) / 30
    assert county["mean_dist_after_m"] == pytest.approx(0.0)
    assert county["p95_dist_before_m"] == pytest.approx(2000.0)
    assert (county["uncovered_cells_before"], county["uncovered_cells_after"]) == (1, 0)
    assert county["misclassified_mu_before"] == pytest.approx(12.0)
    # Q1's sample: soil variance 2γ(2 km) = 2(1 − e⁻⁶) (one sample 2 km away), error the
    # floor ln(1 + 0.2²); P(its class ≠ the soil's) with the threshold at Φ⁻¹(0.6)
    from farmland.sampling.preposterior import latent_thresholds, sample_loss
    var = 2 * (1 - math.exp(-6))
    z1, z2 = latent_thresholds([0.6], [0.4], [0.0])
    wrong = sample_loss(z1, z2, 1.0, math.log(1.04) / var)[0]
    assert 0.01 < wrong < 0.05
    assert eff.loc["T2", "misclassified_mu_after"] == pytest.approx(15 * wrong, abs=1e-3)
    assert county["misclassified_mu_after"] == pytest.approx(6.0 + 15 * wrong, abs=0.05)
    # Q1 changes class when its sample is class 2: P(Z > z₁), Z ~ N(0, 1 + e), a little
    # more than P(class 2) = 0.4 because of the error
    from scipy.stats import norm
    e = math.log(1.04) / var
    assert eff.loc["T2", "class_change_mu"] == pytest.approx(
        15 * norm.sf(z1[0] / math.sqrt(1 + e)), abs=1e-3)
    assert plan["expected_benefit"].iloc[0] == pytest.approx(
        county["misclassified_mu_before"] - county["misclassified_mu_after"], abs=1e-4)
    assert (county["n_samples"], county["n_new"]) == (1, 1)
    assert eff.loc["T2", "mean_dist_before_m"] == pytest.approx(2000.0)
    assert (eff.loc["T2", "n_new"], eff.loc["T1", "n_new"]) == (1, 0)


def test_the_planners_committed_effect_is_the_recomputed_one(field, monkeypatch):
    """plan_sampling(return_effect=True) hands plan_effect the effect it committed the plan
    into: the tables are those of committing the plan again, and a record of another plan
    or other samples is not taken."""
    parcels, samples, sources = field
    plan, planned = plan_sampling(parcels, samples, n=20, sources=sources, seed=3,
                                  return_effect=True)
    again, table = parcel_effect(parcels, samples, plan), plan_effect(parcels, samples, plan)
    with monkeypatch.context() as m:       # nothing is committed again
        m.setattr(effect_module, "_committed_effect", None)
        pd.testing.assert_frame_equal(parcel_effect(parcels, samples, plan, planned=planned),
                                      again)
        pd.testing.assert_frame_equal(plan_effect(parcels, samples, plan, planned=planned),
                                      table)
    part, fewer = plan.iloc[:10], samples.iloc[:5]
    pd.testing.assert_frame_equal(parcel_effect(parcels, samples, part, planned=planned),
                                  parcel_effect(parcels, samples, part))
    pd.testing.assert_frame_equal(parcel_effect(parcels, fewer, plan, planned=planned),
                                  parcel_effect(parcels, fewer, plan))


def test_unclassified_parcels_count_as_wrong_until_a_sample_comes_within_reach():
    parcels = _parcels([(0, 0, 100, 100), (3000, 0, 3100, 100)],
                       final_class=[1, None], rule=["interpolated:area_majority",
                                                    "unclassified:too_far"],
                       p_class_1=[0.8, NAN], p_class_2=[0.2, NAN], p_class_3=[0.0, NAN])
    samples = _samples([(50, 50)])
    plan = plan_sampling(parcels, samples, n=1, mode="uncertainty")
    assert plan["parcel_id"].tolist() == ["Q1"]
    assert plan["reason"].iloc[0].startswith("未分类图斑")
    eff = plan_effect(parcels, samples, plan).set_index("township").loc["全县 County"]
    # Q1: 15 亩 wrong today; with its own sample it is expected to be wrong as often as
    # the county's interpolated land is today: Q0's 1 − 0.8 = 0.2
    assert eff["misclassified_mu_before"] == pytest.approx(15 * 0.2 + 15)
    assert eff["misclassified_mu_after"] == pytest.approx(15 * 0.2 + 15 * 0.2, abs=0.05)


