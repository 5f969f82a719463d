"""Local hot spots (farmland.sources.hotspots): Gi* by hand on a lattice, agreement with
esda (the reference implementation), Benjamini–Hochberg by hand, determinism."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import CRS, X0, Y0

from farmland.errors import InputError
from farmland.sources import (
    HOTSPOT_COLUMNS,
    fdr_bh,
    knn_neighbours,
    local_hotspots,
    local_statistics,
    synthetic_samples,
)
from farmland.sources.hotspots import random_draws, tail_counts

#: a 4 × 4 lattice with a high corner (row-major, cell (0, 0) first); sum 48, mean 3
LATTICE = np.array([[9, 8, 2, 1],
                    [8, 7, 2, 1],
                    [2, 2, 1, 1],
                    [1, 1, 1, 1]], dtype=float)


def torus_rook_neighbours(rows: int = 4, cols: int = 4) -> np.ndarray:
    """Rook contiguity on a torus: every cell has exactly 4 neighbours (up, down, left, right)."""
    out = []
    for r in range(rows):
        for c in range(cols):
            out.append([((r - 1) % rows) * cols + c, ((r + 1) % rows) * cols + c,
                        r * cols + (c - 1) % cols, r * cols + (c + 1) % cols])
    return np.array(out)


def gi_star_by_formula(x: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Ord & Getis (1995) Gi* with binary weights including i itself:

    Gi* = (Σⱼ wᵢⱼ xⱼ − x̄ Wᵢ) / (S · sqrt((n Wᵢ − Wᵢ²) / (n − 1))),
    Wᵢ = k + 1, S² = Σ x² / n − x̄².
    """
    n, k = neighbours.shape
    w = k + 1
    mean = x.mean()
    s = np.sqrt((x**2).mean() - mean**2)
    local = x + x[neighbours].sum(axis=1)
    return (local - mean * w) / (s * np.sqrt((n * w - w**2) / (n - 1)))


def test_gi_star_on_a_lattice_by_hand():
    x, nb = LATTICE.ravel(), torus_rook_neighbours()
    stats = local_statistics(x, nb, permutations=99, seed=1)
    # cell (0, 0): itself 9, neighbours 8 (right), 8 (below), 1 (left, wraps), 1 (above, wraps)
    #   Σ = 27, x̄ W = 3 · 5 = 15; S² = 282/16 − 9 = 8.625; (16·5 − 25)/15 = 55/15
    #   z = 12 / (sqrt(8.625) · sqrt(55/15)) = 12 / 5.623609 = 2.133860
    assert stats["gi_z"][0] == pytest.approx(12 / (np.sqrt(8.625) * np.sqrt(55 / 15)))
    assert stats["gi_z"][0] == pytest.approx(2.133860, abs=1e-6)
    # cell (3, 3): itself 1, neighbours 1 (above), 1 (left), 1 (below: (0, 3) = 1), 1 (right:
    # (3, 0) = 1): Σ = 5, z = (5 − 15) / 5.62361 = −1.77822
    assert stats["gi_z"][15] == pytest.approx(-10 / (np.sqrt(8.625) * np.sqrt(55 / 15)))
    np.testing.assert_allclose(stats["gi_z"], gi_star_by_formula(x, nb), rtol=1e-12)


def _esda_as_plain_python(monkeypatch):
    """Run esda's permutation engine as the Python it is written in.

    With numba installed esda compiles it on first use (about a minute on a 2-core
    machine); the Python functions behind the compiled ones compute the same numbers.
    Without numba this changes nothing.
    """
    import esda.crand
    import esda.getisord
    import esda.moran

    for module in (esda.crand, esda.getisord, esda.moran):
        for name, func in list(vars(module).items()):
            if hasattr(func, "py_func"):
                monkeypatch.setattr(module, name, func.py_func)
    monkeypatch.setattr(esda.crand, "boolean", bool)  # numba's boolean type, used as a dtype


def _esda_with_our_draws(y, neighbours, draws, monkeypatch):
    """esda's G_Local (Gi*) and Moran_Local, made to use farmland's random draws."""
    import esda
    import esda.crand
    from libpysal.graph import Graph

    _esda_as_plain_python(monkeypatch)
    monkeypatch.setattr(esda.crand, "vec_permutations", lambda *args, **kwargs: draws)
    n, k = neighbours.shape
    graph = Graph.from_arrays(np.repeat(np.arange(n), k), neighbours.ravel(), np.ones(n * k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gi = esda.G_Local(y, graph, transform="B", star=True, permutations=len(draws),
                          n_jobs=1, seed=1)
        moran = esda.Moran_Local(y, graph, transformation="r", permutations=len(draws),
                                 n_jobs=1, seed=1)
    return gi, moran


def test_gi_star_on_the_lattice_agrees_with_esda(monkeypatch):
    x, nb = LATTICE.ravel(), torus_rook_neighbours()
    gi, moran = _esda_with_our_draws(x, nb, random_draws(16, 4, 99, seed=1), monkeypatch)
    stats = local_statistics(x, nb, permutations=99, seed=1)
    np.testing.assert_allclose(stats["gi_z"], gi.Zs, rtol=1e-12)
    np.testing.assert_allclose(stats["moran_i"], moran.Is, rtol=1e-12)


def test_statistics_and_p_values_agree_with_esda_given_the_same_draws(monkeypatch):
    rng = np.random.default_rng(3)
    n, k, permutations = 300, 6, 199
    xy = rng.uniform(0, 1000, (n, 2))
    y = rng.lognormal(0, 0.5, n)
    nb = knn_neighbours(xy, k)
    gi, moran = _esda_with_our_draws(y, nb, random_draws(n, k, permutations, seed=7),
                                     monkeypatch)
    stats = local_statistics(y, nb, permutations=permutations, seed=7)
    np.testing.assert_allclose(stats["gi_z"], gi.Zs, rtol=1e-10)
    np.testing.assert_allclose(stats["moran_i"], moran.Is, rtol=1e-10)
    assert list(stats["moran_quadrant"]) == [("HH", "LH", "LL", "HL")[q - 1] for q in moran.q]
    # farmland's p is two-sided: twice esda's "directed" pseudo p (esda keeps it in float32)
    np.testing.assert_allclose(stats["gi_p"], np.minimum(1, 2 * gi.p_sim), atol=1e-6)
    np.testing.assert_allclose(stats["moran_p"], np.minimum(1, 2 * moran.p_sim), atol=1e-6)


def test_tail_counts_equal_a_direct_count():
    rng = np.random.default_rng(0)
    n, k = 40, 5
    y = rng.normal(size=n)
    nb = knn_neighbours(rng.uniform(size=(n, 2)), k)
    draws = random_draws(n, k, 50, seed=2)
    observed = y[nb].sum(axis=1)
    n_ge, n_le = tail_counts(y, observed, draws)
    for i in range(n):
        others = np.delete(y, i)
        sums = others[draws].sum(axis=1)
        assert n_ge[i] == (sums >= observed[i] - 1e-12).sum()
        assert n_le[i] == (sums <= observed[i] + 1e-12).sum()


def test_benjamini_hochberg_by_hand():
    # sorted p 0.01, 0.03, 0.04, 0.20 (n = 4): p·n/rank = 0.04, 0.06, 0.0533, 0.20;
    # running minimum from the largest: 0.04, 0.0533, 0.0533, 0.20
    q = fdr_bh(np.array([0.01, 0.04, 0.03, 0.20]))
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert fdr_bh(np.array([0.5, 0.9])).tolist() == [0.9, 0.9]


def test_knn_neighbours_never_include_the_point_itself():
    xy = np.array([[0, 0], [0, 0], [0, 0], [10, 0], [20, 0]], dtype=float)
    nb = knn_neighbours(xy, 2)
    assert all(i not in row for i, row in enumerate(nb))
    assert sorted(nb[0]) == [1, 2]
    assert nb[4].tolist() == [3, 0] or nb[4][0] == 3
    with pytest.raises(ValueError, match="k must be between 1 and n - 1 = 4"):
        knn_neighbours(xy, 5)


@pytest.fixture(scope="module")
def county() -> gpd.GeoDataFrame:
    return synthetic_samples(600, size_m=20_000, seed=4)


def test_hotspots_are_reproducible_with_a_seed(county):
    a = local_hotspots(county, ["cd", "pb"], permutations=199, seed=11)
    b = local_hotspots(county, ["cd", "pb"], permutations=199, seed=11)
    c = local_hotspots(county, ["cd", "pb"], permutations=199, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["gi_p"], c["gi_p"])
    np.testing.assert_array_equal(a["gi_z"], c["gi_z"])  # the statistic itself is not random


def test_hotspots_find_the_smelter_plume(county):
    out = local_hotspots(county, permutations=499, seed=0)
    assert tuple(out.columns) == HOTSPOT_COLUMNS
    assert list(out["element"].unique()) == ["cd", "hg", "as", "pb", "cr", "cu", "ni", "zn"]
    cd = out[out["element"] == "cd"].set_index("sample_id")
    xy = county.set_index("sample_id").geometry
    smelter = (500_000 + 0.7 * 20_000, 2_700_000 + 0.3 * 20_000)  # synthetic_samples' origin
    distance = np.hypot(xy.x - smelter[0], xy.y - smelter[1])
    hot = cd.index[cd["hotspot"] == "hot"]
    assert len(hot) >= 20
    assert distance[hot].max() < 8_000  # every Cd hot spot lies around the smelter
    assert (cd.loc[hot, "quadrant"] == "HH").mean() > 0.9
    assert set(cd["hotspot"]) <= {"hot", "cold", "ns"}
    assert set(cd["quadrant"]) <= {"HH", "LH", "LL", "HL", "ns"}
    assert (cd["gi_q"] >= cd["gi_p"]).all()
    # with k-NN weights both tests rank the same random draws: the same p-values
    np.testing.assert_array_equal(cd["gi_p"], cd["moran_p"])


def test_nd_values_count_at_half_the_detection_limit_and_missing_values_are_left_out(county):
    samples = county.iloc[:60].copy()
    samples.loc[samples.index[0], ["hg", "hg_censored"]] = [np.nan, True]   # ND, no number
    samples.loc[samples.index[1], ["hg", "hg_censored"]] = [np.nan, False]  # not measured
    out = local_hotspots(samples, ["hg"], permutations=99)
    assert len(out) == 59
    first = out.set_index("sample_id").loc[samples["sample_id"].iloc[0]]
    assert first["value"] == 0.001  # half of HJ 680's 0.002 mg/kg
    assert samples["sample_id"].iloc[1] not in set(out["sample_id"])


def test_samples_must_be_in_a_projected_crs():
    samples = gpd.GeoDataFrame({"sample_id": ["a", "b"], "cd": [0.1, 0.2]},
                               geometry=gpd.points_from_xy([108.0, 108.1], [24.0, 24.1]),
                               crs="EPSG:4490")
    with pytest.raises(InputError, match="projected metric CRS, got EPSG:4490"):
        local_hotspots(samples)


def test_too_few_samples_skip_the_element(caplog):
    samples = gpd.GeoDataFrame({"sample_id": list("abcde"), "cd": [0.1, 0.2, 0.3, 0.2, 0.1],
                                "pb": [20.0] * 5},
                               geometry=gpd.points_from_xy(X0 + np.arange(5) * 100.0,
                                                           [Y0] * 5), crs=CRS)
    out = local_hotspots(samples, ["cd"], k=2)
    assert len(out) == 5
    assert local_hotspots(samples, ["pb"], k=2).empty
    assert "pb: 5 value(s) all equal; no hot spots computed" in caplog.text
