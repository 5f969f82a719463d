"""Clusters, candidate ranking and confirmation samples of ``farmland sources`` at
province scale (the part of the step that grows with the parcels).

A synthetic province: an N × N grid of 100 m parcels (N² parcels), contamination from a
smooth random field plus plumes around 60 enterprises, 100 000 soil samples, a
meandering river network of 40 lines with tributaries, karst on a third of the land.
The hot spots and the factor analysis, which grow with the samples, are timed by
``benchmarks/sources_scale.py``.

Run::

    pip install -e .
    python benchmarks/sources_province.py --side 1000      # 1 000 000 parcels
    python benchmarks/sources_province.py --side 450       # ≈ 200 000 parcels
"""

from __future__ import annotations

import argparse
import resource
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.sources.candidates import EvidenceLayers, rank_candidates
from farmland.sources.clusters import contaminated_clusters
from farmland.sources.confirm import confirmation_samples

CRS = "EPSG:4545"
X0, Y0 = 400_000.0, 2_600_000.0
CELL = 100.0


def smooth(rng, xy, length, k=64):
    wave = rng.normal(scale=1 / length, size=(k, 2))
    phase = rng.uniform(0, 2 * np.pi, k)
    return np.sqrt(2 / k) * np.cos(xy @ wave.T + phase).sum(axis=1)


def province(side: int, n_samples: int, n_enterprises: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x0, y0 = X0 + i.ravel() * CELL, Y0 + j.ravel() * CELL
    centres = np.c_[x0 + CELL / 2, y0 + CELL / 2]
    ent_xy = np.c_[rng.uniform(X0, X0 + side * CELL, n_enterprises),
                   rng.uniform(Y0, Y0 + side * CELL, n_enterprises)]
    field = smooth(rng, centres - [X0, Y0], 8_000.0)
    karst = smooth(rng, centres - [X0, Y0], 15_000.0) > 0.4
    plume = np.zeros(len(centres))
    for e in ent_xy:
        plume += 2.5 * np.exp(-np.hypot(*(centres - e).T) / 800.0)
    score = field + plume
    cls = np.where(score > 2.0, 3, np.where(score > 1.2, 2, 1))
    parcels = gpd.GeoDataFrame(
        {"parcel_id": np.arange(len(centres)).astype(str), "township": "T",
         "final_class": pd.array(cls, dtype="Int8"), "area_mu": CELL * CELL * 15 / 10_000,
         "driving_element": np.where(cls >= 2, "cd", None)},
        geometry=shapely.box(x0, y0, x0 + CELL, y0 + CELL), crs=CRS)
    s_xy = np.c_[rng.uniform(X0, X0 + side * CELL, n_samples),
                 rng.uniform(Y0, Y0 + side * CELL, n_samples)]
    near = np.zeros(n_samples)
    for e in ent_xy:
        near += np.exp(-np.hypot(*(s_xy - e).T) / 800.0)
    s_field = np.interp(s_xy[:, 0], centres[:side * side:side, 0], field[::side])
    samples = gpd.GeoDataFrame({
        "sample_id": [f"S{k}" for k in range(n_samples)],
        "ph": np.where(rng.uniform(size=n_samples) < 0.33, 7.8, 5.8),
        "cd": np.exp(rng.normal(np.log(0.2), 0.4, n_samples) + 0.3 * s_field) + 1.5 * near,
        "pb": np.exp(rng.normal(np.log(35), 0.25, n_samples)) + 80 * near,
        "zn": np.exp(rng.normal(np.log(90), 0.25, n_samples)) + 60 * near,
        "as": np.exp(rng.normal(np.log(11), 0.25, n_samples)),
        "hg": np.exp(rng.normal(np.log(0.05), 0.5, n_samples)),
        "pi_cd": 1.0, "usable": True}, geometry=shapely.points(s_xy), crs=CRS)
    ent = gpd.GeoDataFrame({"source_id": [f"E{k:03d}" for k in range(n_enterprises)],
                            "name": "厂", "industry": "冶炼", "metals": "cd,pb,zn"},
                           geometry=shapely.points(ent_xy), crs=CRS)
    rivers = []
    for r in range(40):
        y = Y0 + (r + 0.5) * side * CELL / 40
        xs = np.linspace(X0, X0 + side * CELL, 200)
        ys = y + 1_500 * np.sin(xs / 7_000 + r)
        rivers.append(shapely.LineString(np.c_[xs, ys]))
    rivers = gpd.GeoDataFrame({"name": [f"R{r}" for r in range(40)]}, geometry=rivers, crs=CRS)
    geology = gpd.GeoDataFrame({"karst": [True]}, geometry=[shapely.union_all(
        shapely.box(x0[karst], y0[karst], x0[karst] + CELL, y0[karst] + CELL),
        grid_size=1.0)], crs=CRS)
    return parcels, samples, EvidenceLayers(ent, rivers, geology)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--enterprises", type=int, default=60)
    args = ap.parse_args()
    t = time.perf_counter()
    parcels, samples, layers = province(args.side, args.samples, args.enterprises)
    print(f"built {len(parcels):,} parcels, {len(samples):,} samples in "
          f"{time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    found = contaminated_clusters(parcels, samples)
    t_clusters = time.perf_counter() - t
    t = time.perf_counter()
    ranked = rank_candidates(found, samples, layers)
    t_rank = time.perf_counter() - t
    t = time.perf_counter()
    confirm = confirmation_samples(found, ranked, parcels, layers.enterprises,
                                   rivers=layers.rivers)
    t_confirm = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n2 = int((parcels["final_class"] >= 2).sum())
    print(f"| {len(parcels):,} | {n2:,} | {len(samples):,} | {len(found.clusters):,} | "
          f"{len(ranked):,} | {len(confirm):,} | {t_clusters:.1f} | {t_rank:.1f} | "
          f"{t_confirm:.1f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
