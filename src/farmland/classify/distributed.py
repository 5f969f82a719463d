"""Classify parcels in partitions on a dask cluster, with the single-process result.

Parcels are partitioned by a coarse grid cell (default 20 km) of their adjustment
unit (the parcel itself by default; the evaluation unit, the rules' crop unit, or the
group linking both when they differ), so no unit is ever split.
Each partition gets the soil samples within a **halo** of its bounding box: the
halo radius is the largest of the 1 000 m distance limit and the k-th
nearest-neighbour distance (over the de-duplicated samples of every interpolated
variable) anywhere in the box — bounded from the k-NN distances at a 500 m grid of
points, since that distance is 1-Lipschitz — so every parcel sees exactly the
samples it would see in one process. Variograms are fitted once, on all samples,
and passed to the workers (``LocalKriging(variogram=...)``); crops are graded and
assigned to parcels once, then sent to the partition of their parcel. Results are
concatenated and put back into the input order.

Coordinates are metres (metric CRS, as everywhere in farmland). Needs
``dask[distributed]`` (the optional ``dask`` extra); the rest of farmland never
imports dask.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.classify.crops import assign_crops, grade_crops
from farmland.classify.parcels import classify_parcels
from farmland.classify.samples import classify_samples
from farmland.classify.units import UnitsArg, evaluation_units
from farmland.errors import FarmlandError
from farmland.geostats.surfaces import SurfaceModels, fit_surface_models, interpolation_inputs
from farmland.rules import Rules, load_rules
from farmland.standards import load_standard

log = logging.getLogger(__name__)

#: side of the partition grid cells (m)
PARTITION_M = 20_000.0
#: spacing of the points at which the halo's k-NN distance is bounded (m)
HALO_GRID_M = 500.0


def require_dask() -> None:
    """Raise :class:`~farmland.errors.FarmlandError` (one line: how to install the
    ``dask`` extra) when ``dask.distributed`` cannot be imported; the CLI calls it before
    reading any input, so a missing extra is said at once, not after the work."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError as exc:  # ModuleNotFoundError, or a dask without distributed
        raise FarmlandError(
            "classifying on dask (--scheduler) needs the optional 'dask' extra, which is "
            "not installed. Fix: pip install \"farmland[dask]\" (or pip install "
            "\"dask[distributed]\"), or leave out --scheduler to classify in this process"
        ) from exc


def partition_labels(parcels: gpd.GeoDataFrame, *, unit: str = "parcel",
                     cell: float = PARTITION_M) -> np.ndarray:
    """Partition number of every parcel: the grid cell of its unit's mean representative point."""
    pts = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    if unit == "parcel":
        xy = pts
    else:
        key = parcels[unit].astype(object).fillna("__none__").to_numpy()
        frame = pd.DataFrame({"x": pts[:, 0], "y": pts[:, 1], "u": key})
        xy = frame.groupby("u")[["x", "y"]].transform("mean").to_numpy()
    gx = np.floor(xy[:, 0] / cell).astype(np.int64)
    gy = np.floor(xy[:, 1] / cell).astype(np.int64)
    _, labels = np.unique(np.column_stack([gx, gy]), axis=0, return_inverse=True)
    return labels.ravel()


def halo_radius(bounds: np.ndarray, trees: list[cKDTree], k: int, minimum: float) -> float:
    """Radius (m) around ``bounds`` holding the k nearest samples of every point inside it."""
    minx, miny, maxx, maxy = bounds
    xs = np.arange(minx, maxx + HALO_GRID_M, HALO_GRID_M)
    ys = np.arange(miny, maxy + HALO_GRID_M, HALO_GRID_M)
    grid = np.column_stack([a.ravel() for a in np.meshgrid(xs, ys)])
    step = HALO_GRID_M * np.sqrt(2.0)  # any point of the box is this close to a grid point
    radius = minimum
    for tree in trees:
        kk = min(k, tree.n)
        if kk == 0:
            continue
        dist, _ = tree.query(grid, k=kk)
        radius = max(radius, float(np.max(dist.reshape(len(grid), -1)[:, -1])) + step)
    return radius + 1.0  # 1 m margin against rounding


def variable_trees(usable: pd.DataFrame) -> list[cKDTree]:
    """KD-trees of the de-duplicated locations with a value, one per interpolated variable."""
    xy, values = interpolation_inputs(usable)
    trees = [cKDTree(np.unique(xy, axis=0))]
    for v in values.values():
        ok = np.isfinite(v)
        if ok.any():
            trees.append(cKDTree(np.unique(xy[ok], axis=0)))
    return trees


def _classify_part(parcels, samples, crops, rules, standard, factory, units=None):
    out, _, _ = classify_parcels(parcels, samples, crops=crops, rules=rules, standard=standard,
                                 interpolator=factory, units=units)
    return out


def _partition_key(parcels: gpd.GeoDataFrame, unit_ids: pd.Series | None,
                   crop_unit: str) -> tuple[gpd.GeoDataFrame, str]:
    """Parcels with the column to partition by, and its name: the column keeps every
    evaluation unit and every crop-adjustment unit whole (``_partition``: the connected
    groups of both, when the rules name a crop unit of their own)."""
    if unit_ids is None:
        return parcels, crop_unit
    out = parcels.assign(unit_id=unit_ids.to_numpy())
    if crop_unit in ("parcel", "unit_id"):
        return out, "unit_id"
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    a = pd.factorize(out["unit_id"])[0]
    b = pd.factorize(out[crop_unit].astype(object).fillna("__none__"))[0] + a.max() + 1
    n = int(b.max()) + 1
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return out.assign(_partition=label[a]), "_partition"


def classify_parcels_distributed(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    *,
    crops: gpd.GeoDataFrame | None = None,
    rules: Rules | None = None,
    interpolator: str | SurfaceModels | None = None,
    standard=None,
    units: UnitsArg = None,
    scheduler: str = "local",
    partition_size: float = PARTITION_M,
    n_workers: int = 2,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """:func:`farmland.classify.parcels.classify_parcels` run in partitions on dask.

    Parameters
    ----------
    parcels, samples, crops, rules, standard
        As for :func:`~farmland.classify.parcels.classify_parcels` (metric CRS, metres).
    interpolator
        ``"kriging"`` or ``"idw"`` (default from the rules), or models already fitted
        with :func:`~farmland.geostats.surfaces.fit_surface_models`; custom factories are not
        supported here.
    units
        Evaluation units, as for :func:`~farmland.classify.parcels.classify_parcels`.
    scheduler
        ``"local"`` (a ``LocalCluster`` of ``n_workers`` single-thread processes) or
        a scheduler address ``"tcp://HOST:PORT"``.
    partition_size
        Side of the partition grid cells, metres.

    Returns
    -------
    parcels, samples, crops
        The same frames as the single-process run, parcels in the input order.
    """
    require_dask()
    from dask.distributed import Client, LocalCluster

    std = standard or load_standard()
    rules = rules or load_rules()
    if "point_class" not in samples:
        samples = classify_samples(samples, parcels=parcels, standard=std, rules=rules)
    usable = samples[samples["usable"]]
    factory = (interpolator if isinstance(interpolator, SurfaceModels) else
               fit_surface_models(usable, rules,
                                  interpolator or rules.get("interpolation", "method")))
    unit_ids = evaluation_units(parcels, units)
    unit = rules.get("crops", "unit")
    keyed, key = _partition_key(parcels, unit_ids, unit)
    labels = partition_labels(keyed, unit=key, cell=partition_size)
    crop_unit = "unit_id" if unit_ids is not None and unit == "parcel" else unit
    graded, crop_part = _crops_by_partition(crops, keyed, labels, std, crop_unit)
    trees = variable_trees(usable) if len(usable) else []
    k = max(rules.get("interpolation", "neighbours"),
            rules.get("interpolation", "evidence_samples"))
    limit = rules.get("interpolation", "max_distance_m")
    sample_geoms = samples.geometry.values
    geoms = parcels.geometry.values
    jobs = []
    for part in np.unique(labels):
        rows = np.flatnonzero(labels == part)
        bounds = np.asarray(shapely.total_bounds(geoms[rows]))
        radius = halo_radius(bounds, trees, k, limit) if trees else 0.0
        box = shapely.box(*bounds)
        near = np.flatnonzero(shapely.dwithin(sample_geoms, box, radius))
        part_crops = None if crop_part is None else crops.iloc[np.flatnonzero(crop_part == part)]
        part_units = None if unit_ids is None else unit_ids.iloc[rows]
        jobs.append((rows, parcels.iloc[rows], samples.iloc[near], part_crops, part_units))
    log.info("classifying %d parcels in %d partitions on %s", len(parcels), len(jobs), scheduler)
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        futures = [client.submit(_classify_part, p, s, c, rules, std, factory, u, pure=False)
                   for _, p, s, c, u in jobs]
        parts = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    out = _reassemble(parts, [rows for rows, *_ in jobs], parcels)
    return out, samples, graded


def _crops_by_partition(crops, parcels, labels, std, unit):
    """Graded crops (as one process gives them) and the partition of each crop sample."""
    if crops is None or len(crops) == 0:
        return None, None
    graded = grade_crops(crops, standard=std)
    graded[["parcel_id", "unit"]] = assign_crops(graded, parcels, unit=unit)
    part_of = pd.Series(labels, index=parcels["parcel_id"].to_numpy())
    part_of = part_of[~part_of.index.duplicated()]
    crop_part = graded["parcel_id"].map(part_of).to_numpy(dtype=float, na_value=-1)
    return graded, crop_part


def _reassemble(parts, rows, parcels) -> gpd.GeoDataFrame:
    """Concatenate partition results and restore the input order and index."""
    order = np.argsort(np.concatenate(rows), kind="stable")
    out = pd.concat(parts, ignore_index=True).iloc[order]
    out.index = parcels.index
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=parcels.crs)
    attrs = [p.attrs.get("interpolator") for p in parts if p.attrs.get("interpolator")]
    if attrs:
        out.attrs["interpolator"] = attrs[0]
    return out
