"""PMF (farmland.sources.pmf, pmf_solver, pmf_uncertainty) and its input matrix
(farmland.sources.matrix): the EPA uncertainty rule by hand, recovery of known profiles,
reproducibility, robust mode, diagnostics and bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmland.errors import InputError
from farmland.io import read_soil_samples
from farmland.sources import (
    PMF,
    bootstrap_profiles,
    choose_factor_count,
    detection_limits,
    epa_uncertainty,
    factor_diagnostics,
    match_factors,
    sample_matrix,
    synthetic_mixture,
)
from farmland.sources.pmf_solver import q_values


# ------------------------------------------------------------------ uncertainties
def test_detection_limits_are_shipped_for_every_metal():
    table = detection_limits().set_index("element")
    assert list(table.index) == ["cd", "hg", "as", "pb", "cr", "cu", "ni", "zn"]
    assert table.loc["cd", "mdl_mg_kg"] == 0.01 and "GB/T 17141" in table.loc["cd", "standard"]
    assert table.loc["hg", "mdl_mg_kg"] == 0.002 and "HJ 680" in table.loc["hg", "standard"]
    assert table.loc["cr", "mdl_mg_kg"] == 4 and "HJ 491" in table.loc["cr", "standard"]


def test_epa_uncertainty_at_its_boundaries_by_hand():
    # Cd, MDL 0.01 mg/kg, EF 0.10
    u = epa_uncertainty(np.array([0.004, 0.01, 0.0101, 1.0]), 0.01, 0.10)
    assert u[0] == pytest.approx(5 / 6 * 0.01)            # below the MDL: 0.008333
    assert u[1] == pytest.approx(0.0083333333)             # at the MDL: still 5/6 · MDL
    assert u[2] == pytest.approx(np.sqrt(0.00101**2 + 0.005**2))  # just above: 0.0051010
    assert u[2] == pytest.approx(0.0051010, abs=1e-7)
    assert u[3] == pytest.approx(np.sqrt(0.1**2 + 0.005**2))       # 0.100125


def lab_sheet() -> pd.DataFrame:
    """Five samples as a laboratory reports them: ND, a '<DL' value, a blank."""
    return pd.DataFrame({
        "sample_id": ["A", "B", "C", "D", "E"],
        "x": [500_000.0, 500_100, 500_200, 500_300, 500_400], "y": [2_700_000.0] * 5,
        "ph": [6.0] * 5,
        "cd": [0.01, "0.0101", "ND", 0.5, 0.2],
        "hg": [0.05, None, 0.04, 0.06, 0.03],
        "as": [10, 11, "<0.02", 9, 12],
        "pb": [30, 31, 32, 33, 34], "cr": [70, 71, 72, 73, 74]})


def test_sample_matrix_fills_nd_and_missing_values_by_the_epa_rules():
    samples = read_soil_samples(lab_sheet(), crs="EPSG:4545")
    X, U, elements, ids = sample_matrix(samples)
    assert elements == ("cd", "hg", "as", "pb", "cr") and list(ids) == list("ABCDE")
    cd, hg, as_ = (elements.index(e) for e in ("cd", "hg", "as"))
    # Cd: x = MDL → 5/6 MDL; just above → sqrt((0.1 x)² + (MDL/2)²); ND → MDL/2, 5/6 MDL
    assert U[0, cd] == pytest.approx(0.0083333333)
    assert U[1, cd] == pytest.approx(0.0051010, abs=1e-7)
    assert X[2, cd] == 0.005 and U[2, cd] == pytest.approx(0.0083333333)
    # Hg of B not measured: median of 0.05, 0.04, 0.06, 0.03 = 0.045, u = 4 × 0.045
    assert X[1, hg] == pytest.approx(0.045) and U[1, hg] == pytest.approx(0.18)
    # As '<0.02' is read as 0.01 (half the lab's limit), at the shipped MDL: u = 5/6 · 0.01
    assert X[2, as_] == 0.01 and U[2, as_] == pytest.approx(0.0083333333)


def test_sample_matrix_takes_the_lab_limits_and_names_missing_elements():
    samples = read_soil_samples(lab_sheet(), crs="EPSG:4545")
    X, U, *_ = sample_matrix(samples, ["cd", "pb"], mdl={"cd": 0.02}, error_fraction=0.2)
    assert X[2, 0] == 0.01 and U[2, 0] == pytest.approx(5 / 6 * 0.02)
    assert U[3, 1] == pytest.approx(np.sqrt((0.2 * 33) ** 2 + 0.05**2))
    with pytest.raises(InputError, match="no column for zn in the soil samples"):
        sample_matrix(samples, ["cd", "zn"])


# ------------------------------------------------------------------ PMF
@pytest.fixture(scope="module")
def mixture():
    """300 samples, 8 elements, the 4 shipped synthetic sources, 10 % lab error."""
    return synthetic_mixture(300, seed=1)


@pytest.fixture(scope="module")
def fitted(mixture):
    return PMF(4, seed=0).fit(mixture.X, mixture.U, elements=mixture.elements)


def test_pmf_recovers_the_known_profiles(mixture, fitted):
    match, corr = match_factors(mixture.F, fitted.profiles_, mixture.X.mean(axis=0))
    assert (match >= 0).all()
    assert corr.min() >= 0.95, corr
    # Q at the solution is close to its expectation when the uncertainties are right
    assert 0.8 < fitted.q_robust_ / fitted.q_expected_ < 1.2
    assert fitted.q_expected_ == 300 * 8 - 4 * (300 + 8)
    # the contributions follow the true ones (least for agriculture, the weakest source)
    r = [np.corrcoef(mixture.G[:, k], fitted.contributions_[:, j])[0, 1]
         for k, j in enumerate(match)]
    assert min(r) > 0.8 and sorted(r)[1] > 0.9


def test_pmf_is_reproducible_with_a_seed(mixture, fitted):
    again = PMF(4, seed=0).fit(mixture.X, mixture.U, elements=mixture.elements)
    np.testing.assert_array_equal(again.profiles_, fitted.profiles_)
    np.testing.assert_array_equal(again.contributions_, fitted.contributions_)
    pd.testing.assert_frame_equal(again.runs_, fitted.runs_)


def test_pmf_runs_record_every_start_and_its_convergence(fitted):
    runs = fitted.runs_
    assert list(runs.columns) == ["start", "samples", "q_true", "q_robust", "n_iter",
                                  "converged", "best"]
    assert len(runs) == 20 and runs["best"].sum() == 1 and (runs["samples"] == 300).all()
    assert runs["converged"].all() and fitted.converged_
    best = runs[runs["best"]].iloc[0]
    assert best["q_robust"] == runs["q_robust"].min()
    assert fitted.q_robust_ <= best["q_robust"]  # refined from there


def test_pmf_screens_starts_on_a_subsample_of_large_matrices(monkeypatch):
    monkeypatch.setattr("farmland.sources.pmf.SCREEN_SAMPLES", 200)
    mix = synthetic_mixture(500, seed=2)
    model = PMF(4, n_starts=4, seed=0).fit(mix.X, mix.U)
    assert (model.runs_["samples"] == 200).all()
    assert model.contributions_.shape == (500, 4)
    _, corr = match_factors(mix.F, model.profiles_, mix.X.mean(axis=0))
    assert corr.min() > 0.95


def test_profile_table_and_sample_contributions_add_up(mixture, fitted):
    table = fitted.profile_table()
    assert list(table.columns) == ["factor", "element", "mg_kg", "percent_of_species",
                                   "percent_of_factor"]
    np.testing.assert_allclose(table.groupby("element")["percent_of_species"].sum(), 100)
    np.testing.assert_allclose(table.groupby("factor")["percent_of_factor"].sum(), 100)
    np.testing.assert_allclose(fitted.contributions_.mean(axis=0), 1.0)
    parts = fitted.sample_contributions()
    assert list(parts.columns) == ["sample_id", "element", "F1", "F2", "F3", "F4",
                                   "modelled", "residual"]
    np.testing.assert_allclose(parts[["F1", "F2", "F3", "F4"]].sum(axis=1), parts["modelled"])
    np.testing.assert_allclose(parts["modelled"] + parts["residual"], mixture.X.ravel())
    # average over samples of a factor's mg/kg is its profile (contributions average 1)
    mean = parts.groupby("element", sort=False)["F1"].mean()
    np.testing.assert_allclose(mean.to_numpy(), fitted.profiles_[0])


def test_q_values_by_hand():
    # scaled residuals 1, −5, 2, 8 with α = 4: Q(true) = 1 + 25 + 4 + 64 = 94;
    # Q(robust) counts the two beyond ±4 as α·|r|: 1 + 20 + 4 + 32 = 57
    assert q_values(np.array([[1.0, -5.0], [2.0, 8.0]]), 4.0) == (94.0, 57.0)


def test_robust_mode_limits_the_pull_of_a_gross_error(mixture, fitted):
    X = mixture.X.copy()
    X[7, 0] *= 5  # one Cd value five times too high
    robust = PMF(4, seed=0, n_starts=5).fit(X, mixture.U)
    plain = PMF(4, seed=0, n_starts=5, robust=False).fit(X, mixture.U)
    # robust mode follows the bad value less: it keeps a larger residual
    assert robust.scaled_residuals_[7, 0] > 30 > plain.scaled_residuals_[7, 0] > 4
    assert robust.q_robust_ < robust.q_true_
    scale = mixture.X.mean(axis=0)
    _, corr_robust = match_factors(fitted.profiles_, robust.profiles_, scale)
    _, corr_plain = match_factors(fitted.profiles_, plain.profiles_, scale)
    assert corr_robust.min() > max(0.95, corr_plain.min())


def test_pmf_refuses_impossible_factor_counts(mixture):
    with pytest.raises(ValueError, match="n_factors must be between 1 and 7"):
        PMF(8).fit(mixture.X, mixture.U)


def test_match_factors_by_hand():
    reference = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    other = np.array([[0.0, 2.0, 2.1], [3.0, 0.1, 0.0], [1.0, 1.0, 1.0]])
    match, corr = match_factors(reference, other)
    assert match.tolist() == [1, 0]
    assert corr[0] > 0.99 and corr[1] > 0.99
    match, _ = match_factors(reference, other[[2]], min_correlation=0.5)
    assert match.tolist() == [-1, -1]  # a constant profile correlates with nothing


def test_diagnostics_choose_the_true_number_of_sources(mixture):
    diagnostics = factor_diagnostics(mixture.X, mixture.U, range(2, 7), n_starts=4, seed=0)
    assert diagnostics["n_factors"].tolist() == [2, 3, 4, 5, 6]
    assert {"q_ratio", "beyond_3", "worst_beyond_3", "im", "is"} <= set(diagnostics.columns)
    assert choose_factor_count(diagnostics) == 4
    four = diagnostics.set_index("n_factors").loc[4]
    assert four["beyond_3"] < 0.01 < diagnostics.set_index("n_factors").loc[3, "beyond_3"]


def test_choose_factor_count_by_hand():
    d = pd.DataFrame({"n_factors": [2, 3, 4, 5], "q_ratio": [6.0, 3.0, 1.0, 0.95]})
    assert choose_factor_count(d) == 4   # 1.0 → 0.95 is a 5 % drop
    d["q_ratio"] = [6.0, 3.0, 2.0, 1.0]
    assert choose_factor_count(d) == 5   # never levels off: the largest p tried


def test_bootstrap_maps_every_factor_and_brackets_the_base(mixture, fitted):
    boot = bootstrap_profiles(fitted, mixture.X, mixture.U, n_boot=30, seed=3)
    assert boot.profiles.shape == (30, 4, 8)
    assert boot.mapped["share_mapped"].tolist() == [1.0, 1.0, 1.0, 1.0]
    s = boot.summary
    assert list(s.columns) == ["factor", "element", "base", "p05", "p50", "p95"]
    assert (s["p05"] <= s["p50"]).all() and (s["p50"] <= s["p95"]).all()
    big = s["base"] > 0.05 * s.groupby("element")["base"].transform("sum")
    inside = (s["p05"] <= s["base"] * 1.02) & (s["base"] * 0.98 <= s["p95"])
    assert inside[big].mean() > 0.9
    again = bootstrap_profiles(fitted, mixture.X, mixture.U, n_boot=30, seed=3)
    pd.testing.assert_frame_equal(again.summary, s)
