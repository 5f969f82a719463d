"""PCA / APCS-MLR (farmland.sources.apcs): the APCS of a two-element case by hand,
varimax, and recovery of known sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farmland.sources import APCS, SOURCE_PROFILES, synthetic_mixture, varimax


def test_apcs_of_two_elements_by_hand():
    # x1 = 1, 2, 3, 4 (mean 2.5, sd sqrt(5/3) = 1.290994); x2 = 2, 4, 5, 9 (mean 5,
    # sd sqrt(26/3) = 2.943920); r = (11/3) / (1.290994 · 2.943920) = 0.964764.
    # A 2 × 2 correlation matrix has eigenvalues 1 ± r with vectors (1, 1)/√2 and (1, −1)/√2:
    # Kaiser keeps one component, loadings sqrt((1 + r)/2) = 0.991152 for both elements,
    # score coefficients 1/sqrt(2 (1 + r)) = 0.504464, so
    # APCS = (z1 + z2 − z1(0) − z2(0)) · 0.504464 = (x1/sd1 + x2/sd2) · 0.504464.
    X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 5.0], [4.0, 9.0]])
    model = APCS().fit(X, elements=["a", "b"])
    r = (11 / 3) / (np.sqrt(5 / 3) * np.sqrt(26 / 3))
    assert r == pytest.approx(0.964764, abs=1e-6)
    assert model.n_factors_ == 1
    np.testing.assert_allclose(model.eigenvalues_, [1 + r, 1 - r])
    np.testing.assert_allclose(model.loadings_[:, 0], [0.991152, 0.991152], atol=1e-6)
    np.testing.assert_allclose(model.score_coefficients_[:, 0], [0.504464, 0.504464], atol=1e-6)
    # the zero sample: z = (−2.5/1.290994, −5/2.943920) = (−1.936492, −1.698416)
    assert model.zero_scores_[0] == pytest.approx((-1.936492 - 1.698416) * 0.504464, abs=1e-5)
    expected = (X[:, 0] / np.sqrt(5 / 3) + X[:, 1] / np.sqrt(26 / 3)) / np.sqrt(2 * (1 + r))
    np.testing.assert_allclose(model.apcs_[:, 0], expected)
    # first sample: (1/1.290994 + 2/2.943920) · 0.504464 = 1.453963 · 0.504464 = 0.733471
    np.testing.assert_allclose(model.apcs_[:, 0], [0.733471, 1.466943, 2.029056, 3.105243],
                               atol=1e-6)
    # one factor explains each element up to its regression's r²; the shares add up to 100
    table = model.contribution_table()
    assert list(table.columns) == ["element", "factor", "mean_mg_kg", "percent", "r2"]
    np.testing.assert_allclose(table.groupby("element")["percent"].sum(), 100)
    assert model.r2_.min() > 0.9


def _varimax_criterion(L: np.ndarray) -> float:
    """Kaiser's raw varimax criterion: the summed variance of the squared loadings."""
    return float(((L**2) ** 2).mean(axis=0).sum() - ((L**2).mean(axis=0) ** 2).sum())


def test_varimax_undoes_a_rotation_of_a_simple_structure():
    simple = np.array([[0.9, 0.05], [0.8, 0.1], [0.75, 0.0], [0.05, 0.7], [0.1, 0.9]])
    angle = 0.5
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated, rotation = varimax(simple @ turn, normalize=False)
    best, _ = varimax(simple, normalize=False)
    np.testing.assert_allclose(np.abs(rotated), np.abs(best), atol=1e-9)
    np.testing.assert_allclose(np.abs(rotated), simple, atol=0.06)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(2), atol=1e-12)
    assert _varimax_criterion(rotated) > _varimax_criterion(simple @ turn)
    # Kaiser normalisation changes the weights of the rows, not the simple structure here
    normalised, _ = varimax(simple @ turn)
    np.testing.assert_allclose(np.abs(normalised), simple, atol=0.08)


@pytest.fixture(scope="module")
def three_sources():
    """Parent material, smelting and atmospheric deposition; 1000 samples."""
    return synthetic_mixture(1000, profiles=SOURCE_PROFILES.iloc[[0, 2, 3]], seed=1)


def test_apcs_recovers_known_sources(three_sources):
    mix = three_sources
    model = APCS(3).fit(mix.X, elements=mix.elements)
    corr = np.corrcoef(np.hstack([mix.G, model.apcs_]).T)[:3, 3:]
    match = corr.argmax(axis=1)
    assert sorted(match) == [0, 1, 2]
    assert corr[np.arange(3), match].min() > 0.95  # each APCS follows one true source
    assert model.r2_.min() > 0.95
    # mean shares of each element: within 20 percentage points of the truth (APCS-MLR's
    # known bias: it shares the overlap of correlated sources out by the loadings)
    true_pct = 100 * mix.G.mean(axis=0)[:, None] * mix.F / mix.X.mean(axis=0)
    est_pct = 100 * model.contributions_.mean(axis=0) / mix.X.mean(axis=0)
    assert np.abs(est_pct[match] - true_pct).max() < 20
    # per sample, the mg/kg of the dominant element of each source follows the truth
    for k, j in zip([0, 1, 2], [mix.elements.index("cr"), mix.elements.index("cd"),
                                mix.elements.index("hg")], strict=True):
        truth = mix.G[:, k] * mix.F[k, j]
        assert np.corrcoef(truth, model.contributions_[:, match[k], j])[0, 1] > 0.95


def test_kaiser_criterion_and_the_tables(three_sources):
    mix = three_sources
    model = APCS().fit(mix.X, elements=mix.elements)
    assert model.n_factors_ == int((model.eigenvalues_ > 1).sum())
    np.testing.assert_allclose(model.explained_variance_ratio_.sum(), 1.0)
    loadings = model.loading_table()
    assert list(loadings.columns) == ["element", *model.factors_]
    table = model.contribution_table()
    assert set(table["factor"]) == {*model.factors_, "unexplained"}
    np.testing.assert_allclose(table.groupby("element")["percent"].sum(), 100)
    total = pd.Series(model.contributions_.sum(axis=1).mean(axis=0) + model.intercept_,
                      index=mix.elements)
    np.testing.assert_allclose(total, mix.X.mean(axis=0))


def test_apcs_refuses_a_constant_element():
    X = np.column_stack([np.arange(10.0), np.ones(10), np.arange(10.0) ** 2])
    with pytest.raises(ValueError, match="same value in every sample"):
        APCS().fit(X)
