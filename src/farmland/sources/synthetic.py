"""Synthetic soil data with known sources, for tests, benchmarks and tutorials.

Four source profiles in mg/kg per unit contribution (typical of Chinese farmland
soils, rounded; not measured): parent material (Cr, Ni, Cu, As, Pb), agriculture
(fertiliser and manure: Cd, Zn, Cu), smelting and mining (Cd, Pb, Zn, As) and
atmospheric deposition from coal (Hg, Pb). Samples mix them with log-normal
contributions of mean 1; the laboratory adds a relative error of the error fraction and
reports values below the detection limit as ND.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from farmland.sources.matrix import METALS, _mdl_of, epa_uncertainty

#: source → mg/kg of each metal of :data:`~farmland.sources.matrix.METALS` at contribution 1
SOURCE_PROFILES = pd.DataFrame(
    [[0.08, 0.020, 8.0, 25.0, 70.0, 20.0, 30.0, 60.0],
     [0.15, 0.005, 3.0, 3.0, 2.0, 12.0, 2.0, 30.0],
     [0.80, 0.020, 6.0, 60.0, 1.0, 5.0, 1.0, 80.0],
     [0.05, 0.080, 2.0, 15.0, 3.0, 3.0, 2.0, 15.0]],
    index=["parent_material", "agriculture", "smelting", "atmospheric"], columns=list(METALS))


class SyntheticMixture(NamedTuple):
    """Synthetic concentrations with the sources that made them."""

    X: np.ndarray
    """(n, m) measured concentrations, mg/kg (below detection: MDL/2)."""
    U: np.ndarray
    """(n, m) EPA uncertainties of ``X``."""
    G: np.ndarray
    """(n, p) true contributions (mean about 1)."""
    F: np.ndarray
    """(p, m) true profiles, mg/kg."""
    elements: tuple[str, ...]
    """Column names."""


def synthetic_mixture(n_samples: int = 300, *, profiles: pd.DataFrame | None = None,
                      contributions: np.ndarray | None = None, spread: float = 1.0,
                      error_fraction: float = 0.1, seed: int = 0) -> SyntheticMixture:
    """Samples mixing known source profiles, measured with error.

    Parameters
    ----------
    n_samples
        Rows (ignored when ``contributions`` is given).
    profiles
        Source × element table in mg/kg; default :data:`SOURCE_PROFILES`.
    contributions
        (n, p) contributions; default log-normal with mean 1 and log-sd ``spread``.
    spread
        Log-sd of the default contributions.
    error_fraction
        Relative laboratory error (normal, truncated at zero) and EF of the uncertainties.
    seed
        Seed of the draws.

    Returns
    -------
    SyntheticMixture
        ``X, U, G, F, elements``.
    """
    profiles = SOURCE_PROFILES if profiles is None else profiles
    rng = np.random.default_rng(seed)
    F = profiles.to_numpy(dtype=float)
    if contributions is None:
        G = rng.lognormal(-spread**2 / 2, spread, size=(n_samples, len(F)))
    else:
        G = np.asarray(contributions, dtype=float)
    elements = tuple(profiles.columns)
    true = G @ F
    X = np.maximum(true * (1 + error_fraction * rng.standard_normal(true.shape)), 0.0)
    mdl = _mdl_of(elements, None)
    X = np.where(X < mdl, mdl / 2, X)
    return SyntheticMixture(X, epa_uncertainty(X, mdl, error_fraction), G, F, elements)


def synthetic_samples(n_samples: int = 2000, *, size_m: float = 30_000.0, seed: int = 0,
                      crs: str = "EPSG:4545") -> pd.DataFrame:
    """A county of soil samples with a smelter plume, as a GeoDataFrame.

    Parameters
    ----------
    n_samples
        Samples, spread uniformly over a ``size_m`` square.
    size_m
        Side of the county, metres.
    seed
        Seed of the draws.
    crs
        Projected CRS the coordinates are given in.

    Returns
    -------
    geopandas.GeoDataFrame
        ``sample_id, cd, hg, as, pb, cr, cu, ni, zn`` (mg/kg), ``<el>_censored``, points;
        the smelting contribution falls off with distance from a point at (0.7, 0.3) of
        the square (scale 3 km), parent material varies smoothly, agriculture and
        deposition at random. ``attrs["contributions"]`` holds the true (n, 4) G.
    """
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    x0, y0 = 500_000.0, 2_700_000.0
    xy = rng.uniform(0, size_m, size=(n_samples, 2))
    d = np.hypot(xy[:, 0] - 0.7 * size_m, xy[:, 1] - 0.3 * size_m)
    G = np.column_stack([
        np.exp(0.3 * np.sin(xy[:, 0] / 4000.0) + 0.3 * np.cos(xy[:, 1] / 5000.0)
               + rng.normal(0, 0.2, n_samples)),
        rng.lognormal(-0.18, 0.6, n_samples),
        0.1 + 4.0 * np.exp(-d / 3000.0) * rng.lognormal(0, 0.3, n_samples),
        rng.lognormal(-0.18, 0.6, n_samples),
    ])
    mix = synthetic_mixture(contributions=G, seed=seed + 1)
    frame = pd.DataFrame(mix.X, columns=list(mix.elements))
    frame.insert(0, "sample_id", [f"S{i:06d}" for i in range(1, n_samples + 1)])
    for j, el in enumerate(mix.elements):
        frame[f"{el}_censored"] = mix.X[:, j] < _mdl_of([el], None)[0]
    out = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xy[:, 0] + x0, xy[:, 1] + y0),
                           crs=crs)
    out.attrs["contributions"] = G
    return out
