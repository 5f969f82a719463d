"""Spatial units shared by flags and the planner: contiguous zones, grid cells.

Adjacent parcels of one class (touching, or closer than a small snapping
tolerance) are joined into zones without any O(n²) step: an STRtree finds the
neighbour pairs, :func:`scipy.sparse.csgraph.connected_components` labels the
zones, and each zone's geometry is the union of its parcels. Zones feed the
"too few samples in a zone" flag (:mod:`farmland.sampling.flags`) and the list of
特定农产品严格管控区域 candidates (:func:`strict_control_zones`).

Grid cells (:func:`farmland_cells`) are squares aligned to multiples of the cell
size; a parcel's area is split over the cells it overlaps, pro rata.

All geometries are in the parcels' metric CRS (metres); areas are in 亩 from the
parcels' ``area_mu`` (net area), never from degrees.
"""

from __future__ import annotations

import itertools
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from farmland import classes as C
from farmland.classes import parcel_area_mu
from farmland.crs import require_metric, same_crs
from farmland.errors import InputError
from farmland.standards import CLASS_ELEMENTS
from farmland.vocabulary import townships_of

log = logging.getLogger(__name__)

#: parcels closer than this (metres) belong to one contiguous zone. Land-survey (三调)
#: parcels are separated by 5–20 m ditches, field roads and ridges; with a 1 m snap every
#: parcel of a real county was its own zone (docs/decisions.md, zone gap)
ZONE_GAP_M = 30.0
#: zone id prefix per class: SC = strict control (严格管控), SU = safe utilisation (安全利用)
ZONE_PREFIX = {3: "SC", 2: "SU", 1: "PP"}
ZONE_COLUMNS = ["zone_id", "final_class", "township", "other_townships", "area_mu", "area_hm2",
                "n_parcels", "n_samples", "driving_elements", "parcel_ids"]


def contiguous_labels(geoms: np.ndarray, *, tolerance: float = ZONE_GAP_M) -> np.ndarray:
    """Label groups of polygons that touch or lie within ``tolerance`` of each other.

    Parameters
    ----------
    geoms
        Array of shapely polygons in a metric CRS.
    tolerance
        Snapping distance in metres; 0 joins only touching/overlapping polygons.

    Returns
    -------
    numpy.ndarray
        Integer component label per polygon (0..k-1), labels ordered by first occurrence.
    """
    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    if tolerance > 0:
        left, right = tree.query(geoms, predicate="dwithin", distance=tolerance)
    else:
        left, right = tree.query(geoms, predicate="intersects")
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # relabel by first occurrence so labels do not depend on scipy internals
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[labels]


def usable_samples(samples: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Soil samples that count as evidence: all, or those with ``usable`` True when given."""
    if samples is None:
        return gpd.GeoDataFrame({"sample_id": []}, geometry=gpd.GeoSeries([]))
    keep = samples.geometry.notna() & ~samples.geometry.is_empty
    if "usable" in samples:
        keep &= samples["usable"].fillna(False).astype(bool)
    return samples.loc[keep]


def class_zones(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame | None,
    *,
    final_class: int,
    tolerance: float = ZONE_GAP_M,
) -> gpd.GeoDataFrame:
    """Dissolve contiguous parcels of one ``final_class`` into zones.

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (docs/schema.md), metric CRS.
    samples
        Soil samples (usable ones are counted; metric CRS, reprojected if needed).
    final_class
        1, 2 or 3.
    tolerance
        Zone gap: parcels closer than this (metres) join one zone (default 30 m: ditches
        and field roads between parcels do not split a zone). Recorded as ``zone_gap_m``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per zone, ordered by ``area_mu`` descending then smallest parcel id:
        ``zone_id`` (``SC001`` for class 3, ``SU001`` class 2, ``PP001`` class 1),
        ``final_class``, ``township`` (holding most of the zone's area),
        ``other_townships`` (comma list), ``area_mu``, ``area_hm2``, ``n_parcels``,
        ``n_samples`` (usable soil samples inside the zone), ``driving_elements``
        (comma list), ``parcel_ids`` (comma list), geometry (union of the parcels).
    """
    _require(parcels, ("parcel_id", "final_class"))
    cls = C.as_class(parcels["final_class"].to_numpy())
    members = parcels.loc[(cls == final_class).fillna(False).to_numpy()]
    members = members.loc[members.geometry.notna() & ~members.geometry.is_empty]
    if members.empty:
        return _empty_zones(parcels.crs)
    labels = contiguous_labels(members.geometry.values, tolerance=tolerance)
    out = dissolve_labels(members, labels, samples)
    out.insert(0, "zone_id", [f"{ZONE_PREFIX[final_class]}{i:03d}" for i in range(1, len(out) + 1)])
    out.insert(1, "final_class", pd.array([final_class] * len(out), dtype="Int8"))
    out = out.drop(columns=["min_parcel_id", "label"]).reset_index(drop=True)
    out["zone_gap_m"] = float(tolerance)
    return out[ZONE_COLUMNS + ["zone_gap_m", "geometry"]]


def dissolve_labels(members: gpd.GeoDataFrame, labels: np.ndarray,
                    samples: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """One row per label of ``members`` (parcels, metric CRS): ``label``, ``township``,
    ``other_townships``, ``area_mu``, ``area_hm2``, ``n_parcels``, ``driving_elements``,
    ``parcel_ids``, ``min_parcel_id``, ``n_samples``, geometry (union of the parcels);
    ordered by area descending, then smallest parcel id."""
    frame = pd.DataFrame({"label": labels, "parcel_id": members["parcel_id"].astype(str).to_numpy(),
                          "township": townships_of(members).to_numpy(),
                          "area_mu": parcel_area_mu(members).to_numpy(),
                          "driver": _driver_text(members)})
    zones = _zone_table(frame)
    zones["n_samples"] = _samples_per_label(members, labels, samples, len(zones))
    geoms = _union_by_label(members.geometry.values, labels, len(zones))
    out = gpd.GeoDataFrame(zones, geometry=geoms, crs=members.crs)
    return out.sort_values(["area_mu", "min_parcel_id"], ascending=[False, True], kind="stable")


def strict_control_zones(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame | None,
    *,
    tolerance: float = ZONE_GAP_M,
) -> gpd.GeoDataFrame:
    """Candidate 特定农产品严格管控区域: contiguous class-3 parcels dissolved into zones.

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer, metric CRS (e.g. EPSG:4545).
    samples
        Soil samples; usable samples inside each zone are counted.
    tolerance
        Zone gap (metres): class-3 parcels closer than this belong to one zone.

    Returns
    -------
    geopandas.GeoDataFrame
        ``zone_id`` (``SC001``…, by area descending then smallest parcel id),
        ``township``, ``other_townships``, ``area_mu``, ``area_hm2``, ``n_parcels``,
        ``n_samples``, ``driving_elements``, ``parcel_ids``, ``zone_gap_m``, geometry
        (metric CRS).

    Examples
    --------
    >>> zones = strict_control_zones(parcels, samples)  # doctest: +SKIP
    >>> zones[["zone_id", "area_mu", "n_samples"]]      # doctest: +SKIP
    """
    require_metric(parcels)
    zones = class_zones(parcels, samples, final_class=C.STRICT_CONTROL, tolerance=tolerance)
    log.info("%d strict-control zone candidate(s), %.1f 亩", len(zones), zones["area_mu"].sum())
    return zones.drop(columns=["final_class"])


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise InputError(f"parcels layer lacks column(s) {', '.join(missing)}",
                         column=missing[0],
                         fix="pass the 'parcels' layer written by `farmland classify`")


def _driver_text(parcels: pd.DataFrame) -> np.ndarray:
    if "driving_element" not in parcels:
        return np.full(len(parcels), "", dtype=object)
    d = parcels["driving_element"].astype(object)
    return d.where(d.notna(), "").astype(str).to_numpy()


def _zone_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-label area, parcel list, township majority and drivers (group-wise, no per-zone
    Python callbacks: province data hold thousands of zones)."""
    g = frame.groupby("label", sort=True)
    labels = g.size().index
    by_town = frame.groupby(["label", "township"])["area_mu"].sum().reset_index()
    by_town = by_town.sort_values(["label", "area_mu", "township"], ascending=[True, False, True])
    main = by_town.groupby("label")["township"].first()
    rest = by_town[by_town.groupby("label").cumcount() > 0].sort_values(["label", "township"])
    others = rest.groupby("label")["township"].agg(",".join).reindex(labels, fill_value="")
    parcel_ids = _joined_by_label(frame.sort_values(["label", "parcel_id"]), "parcel_id")
    zones = pd.DataFrame({
        "label": labels,
        "township": main.to_numpy(),
        "other_townships": others.to_numpy(),
        "area_mu": g["area_mu"].sum().round(4).to_numpy(),
        "n_parcels": g.size().to_numpy(),
        "driving_elements": _drivers_by_label(frame).reindex(labels, fill_value="").to_numpy(),
        "parcel_ids": parcel_ids,
        "min_parcel_id": g["parcel_id"].min().to_numpy(),
    })
    zones["area_hm2"] = (zones["area_mu"] / 15).round(6)
    return zones[["label", "township", "other_townships", "area_mu", "area_hm2", "n_parcels",
                  "driving_elements", "parcel_ids", "min_parcel_id"]]


def _joined_by_label(frame: pd.DataFrame, column: str) -> list[str]:
    """``column`` joined with commas per label, for a frame sorted by ``label`` (labels in
    ascending order): plain Python lists, not a groupby aggregation, which called
    ``",".join`` on an Arrow string array per zone (a quarter of the zones' time)."""
    labels = frame["label"].to_numpy()
    values = frame[column].tolist()
    cuts = [0, *(np.flatnonzero(labels[1:] != labels[:-1]) + 1).tolist(), len(values)]
    return [",".join(values[a:b]) for a, b in itertools.pairwise(cuts)]


def _drivers_by_label(frame: pd.DataFrame) -> pd.Series:
    """Distinct driving elements per label, in the standard's element order, then others."""
    frame = frame.reset_index(drop=True)
    parts = (frame["driver"].astype(str).str.replace(";", ",").str.split(",")
             .explode().str.strip().str.lower())
    pairs = pd.DataFrame({"label": frame["label"].to_numpy()[parts.index.to_numpy()],
                          "el": parts.to_numpy()})
    pairs = pairs[pairs["el"].astype(bool)].drop_duplicates()
    known = {e: i for i, e in enumerate(CLASS_ELEMENTS)}
    pairs["rank"] = pairs["el"].map(known).fillna(len(known)).astype(int)
    pairs = pairs.sort_values(["label", "rank", "el"])
    return pairs.groupby("label")["el"].agg(",".join)


def _samples_per_label(members: gpd.GeoDataFrame, labels: np.ndarray,
                       samples: gpd.GeoDataFrame | None, n_zones: int) -> np.ndarray:
    """Number of distinct usable samples inside (or on the edge of) each zone."""
    pts = usable_samples(samples)
    if pts.empty:
        return np.zeros(n_zones, dtype=np.int64)
    pts = same_crs(pts, members, "samples")
    tree = shapely.STRtree(members.geometry.values)
    s_idx, p_idx = tree.query(pts.geometry.values, predicate="intersects")
    pairs = np.unique(np.column_stack([s_idx, labels[p_idx]]), axis=0)
    return np.bincount(pairs[:, 1], minlength=n_zones) if len(pairs) else np.zeros(n_zones, int)


def _union_by_label(geoms: np.ndarray, labels: np.ndarray, n_zones: int) -> np.ndarray:
    """Union of the polygons of each label. When the polygons form a valid coverage (no
    overlaps, shared edges match — true of land-survey parcels) the much cheaper
    coverage union is used; otherwise the general overlay union."""
    union = (shapely.coverage_union_all if bool(shapely.coverage_is_valid(geoms))
             else shapely.union_all)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_zones + 1))
    out = np.empty(n_zones, dtype=object)
    for k in range(n_zones):
        part = geoms[order[bounds[k]:bounds[k + 1]]]
        out[k] = part[0] if len(part) == 1 else union(part)
    return out


def _empty_zones(crs) -> gpd.GeoDataFrame:
    cols = {"zone_id": pd.Series(dtype=str), "final_class": pd.Series(dtype="Int8"),
            "township": pd.Series(dtype=str), "other_townships": pd.Series(dtype=str),
            "area_mu": pd.Series(dtype=float), "area_hm2": pd.Series(dtype=float),
            "n_parcels": pd.Series(dtype="int64"), "driving_elements": pd.Series(dtype=str),
            "parcel_ids": pd.Series(dtype=str), "n_samples": pd.Series(dtype="int64"),
            "zone_gap_m": pd.Series(dtype=float)}
    out = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return out[ZONE_COLUMNS + ["zone_gap_m", "geometry"]]


# ----------------------------------------------------------------------- grid cells
def farmland_cells(parcels: gpd.GeoDataFrame, cell_size: float) -> pd.DataFrame:
    """Split parcels over grid cells aligned to multiples of ``cell_size``.

    Returns
    -------
    pandas.DataFrame
        One row per (parcel, cell) with farmland in it: ``pos`` (parcel position),
        ``ix``, ``iy`` (cell column/row: ``floor(x / cell_size)``) and ``frac`` (share
        of the parcel's geometry area inside the cell).
    """
    geoms = parcels.geometry.values
    ok = ~(shapely.is_empty(geoms) | shapely.is_missing(geoms))
    b = shapely.bounds(geoms[ok])
    lo = np.floor(b[:, :2] / cell_size).astype(np.int64)
    hi = np.floor(b[:, 2:] / cell_size).astype(np.int64)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    counts = nx * ny
    rep = np.repeat(np.arange(len(b)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ix, iy = lo[rep, 0] + k % nx[rep], lo[rep, 1] + k // nx[rep]
    frac = np.ones(len(rep))
    multi = counts[rep] > 1
    if multi.any():
        g = geoms[ok][rep[multi]]
        boxes = shapely.box(ix[multi] * cell_size, iy[multi] * cell_size,
                            (ix[multi] + 1) * cell_size, (iy[multi] + 1) * cell_size)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac[multi] = shapely.area(shapely.intersection(g, boxes)) / shapely.area(g)
    pos = np.flatnonzero(ok)[rep]
    keep = frac > 1e-12
    return pd.DataFrame({"pos": pos[keep], "ix": ix[keep], "iy": iy[keep], "frac": frac[keep]})


def sample_cells(samples: gpd.GeoDataFrame, cell_size: float) -> set[tuple[int, int]]:
    """Grid cells (ix, iy) holding at least one sample (a point on a line goes east/north)."""
    if samples.empty:
        return set()
    xy = shapely.get_coordinates(samples.geometry.values)
    idx = np.floor(xy / cell_size).astype(np.int64)
    return set(map(tuple, idx.tolist()))
