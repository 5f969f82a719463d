"""Partitioned classification on a 2-worker dask LocalCluster equals the single-process run."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, X0, Y0

pytest.importorskip("distributed", reason="dask[distributed] is not installed (extra 'dask')")

from farmland.classify.distributed import classify_parcels_distributed, halo_radius
from farmland.classify.parcels import classify_parcels


def _case(seed: int = 7):
    """2 000 parcels (50 x 40 grid of 80 m squares, some gaps), 300 soil and 60 crop samples."""
    rng = np.random.default_rng(seed)
    x0, y0 = X0, Y0
    cols, rows = np.meshgrid(np.arange(50), np.arange(40))
    cols, rows = cols.ravel(), rows.ravel()
    geoms = shapely.box(x0 + cols * 80, y0 + rows * 80, x0 + cols * 80 + 78, y0 + rows * 80 + 78)
    parcels = gpd.GeoDataFrame({
        "parcel_id": [f"P{i:05d}" for i in range(len(geoms))],
        "township": np.where(cols < 25, "西镇", "东镇"), "township_code": "450299101",
        "village": [f"V{c // 10}{r // 10}" for c, r in zip(cols, rows)],
        "dlbm": "0101", "landuse": np.where(rng.random(len(geoms)) < 0.7, "paddy", "dry"),
    }, geometry=geoms, crs=CRS)
    # samples in the western 3/4 only: the eastern parcels are beyond 1 000 m (unclassified)
    sx = x0 + rng.uniform(0, 2_900, 300)
    sy = y0 + rng.uniform(0, 3_200, 300)
    u, v = (sx - x0) / 600, (sy - y0) / 700  # smooth fields, so variograms are fitted

    def field(median, amp, phase):
        return np.exp(np.log(median) + amp * (np.sin(u + phase) + np.cos(v - phase))
                      + 0.1 * rng.standard_normal(300))

    samples = gpd.GeoDataFrame({
        "sample_id": [f"S{i:04d}" for i in range(300)],
        "ph": np.round(6.2 + 0.6 * np.sin(v + 1) + 0.1 * rng.standard_normal(300), 2),
        "cd": np.round(field(0.3, 0.6, 0.0), 3), "hg": np.round(field(0.2, 0.5, 1.0), 3),
        "as": np.round(field(15, 0.4, 2.0), 2), "pb": np.round(field(50, 0.4, 3.0), 1),
        "cr": np.round(field(90, 0.3, 4.0), 1),
    }, geometry=shapely.points(sx, sy), crs=CRS)
    samples.loc[5, "ph"] = np.nan  # one unusable sample
    pick = rng.choice(len(parcels), 20, replace=False)
    cxy = shapely.get_coordinates(shapely.centroid(geoms[np.repeat(pick, 3)]))
    crops = gpd.GeoDataFrame({
        "sample_id": [f"C{i:03d}" for i in range(60)], "crop": "rice",
        "cd": np.round(rng.uniform(0.05, 0.3, 60), 3), "year": 2023,
    }, geometry=shapely.points(cxy), crs=CRS)
    return parcels, samples, crops


@pytest.fixture(scope="module")
def both():
    parcels, samples, crops = _case()
    single, _, c1 = classify_parcels(parcels, samples, crops=crops)
    many, _, c2 = classify_parcels_distributed(parcels, samples, crops=crops,
                                                scheduler="local", partition_size=1_000.0)
    return parcels, single, many, (c1, c2)


def test_partitioned_run_equals_single_process(both):
    parcels, single, many, _ = both
    pd.testing.assert_frame_equal(many.drop(columns="geometry"),
                                  single.drop(columns="geometry"))
    assert many.geometry.geom_equals_exact(single.geometry, tolerance=0).all()
    assert list(many["parcel_id"]) == list(parcels["parcel_id"])


def test_the_case_exercises_every_rule(both):
    _, single, _, _ = both
    assert "fallback" not in single.attrs["interpolator"]  # kriging, not IDW
    rules = single["rule"].str.split(";").str[0].value_counts()
    assert {"points:majority", "interpolated:area_majority",
            "unclassified:too_far"} <= set(rules.index)
    assert single["rule"].str.contains("crops:").any()


def test_graded_crops_equal_single_process(both):
    _, _, _, (c1, c2) = both
    pd.testing.assert_frame_equal(c2, c1)


def test_halo_holds_the_k_nearest_of_every_point_in_the_box():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 10_000, size=(400, 2))
    from scipy.spatial import cKDTree
    tree = cKDTree(xy)
    bounds = np.array([2_000.0, 3_000.0, 4_000.0, 4_500.0])
    r = halo_radius(bounds, [tree], k=16, minimum=0.0)
    box = shapely.box(*bounds)
    inside = shapely.dwithin(shapely.points(xy), box, r)
    probe = rng.uniform(bounds[:2], bounds[2:], size=(2_000, 2))
    _, nn = tree.query(probe, k=16)
    assert inside[nn].all()


def test_scheduler_without_dask_says_how_to_install_it(monkeypatch):
    """`--scheduler local` without the optional extra: one line naming the extra."""
    import builtins

    import pytest

    from farmland.classify.distributed import classify_parcels_distributed
    from farmland.errors import FarmlandError

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ModuleNotFoundError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(FarmlandError, match=r'pip install "farmland\[dask\]"'):
        classify_parcels_distributed(None, None, scheduler="local")
