"""Contaminated-land clusters: contiguous class-2/3 land and the soil samples in it.

A cluster is a group of class-2 and class-3 parcels (final class) whose members lie within
the zone gap of one another (30 m by default, the same tolerance as the zones of
:mod:`farmland.sampling.zones`: ditches and field roads do not split contaminated land).
Each cluster carries the evidence an analyst needs before asking where it came from:

- area by class, parcels, townships;
- the soil samples inside it (within the zone gap of a member parcel) and, for the
  elements that drive its classes, the median and 90th percentile of the single-factor
  index Pᵢ = Cᵢ / screening value at the sample's pH and land use;
- its element signature: the median concentration of each element in the cluster over
  the median of the samples outside every cluster (the local background), the
  enrichment factor EF. A cluster with fewer than ``min_samples`` samples inside takes
  its signature from its ``min_samples`` nearest samples, and says so (``signature_basis``).

Everything is group-wise (no per-cluster Python loops over parcels), so a province with
thousands of clusters stays fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland import classes as C
from farmland.crs import require_metric, same_crs
from farmland.sampling.zones import ZONE_GAP_M, contiguous_labels, dissolve_labels, usable_samples

__all__ = ["SIGNATURE_ELEMENTS", "Clusters", "contaminated_clusters"]

log = logging.getLogger(__name__)

#: elements of the signature (the eight metals of GB 15618 with screening values)
SIGNATURE_ELEMENTS = ("cd", "hg", "as", "pb", "cr", "cu", "ni", "zn")
#: a driving element covering at least this share of a cluster's area is "dominant"
DOMINANT_SHARE = 0.2


@dataclass
class Clusters:
    """Contaminated-land clusters and their samples.

    Attributes
    ----------
    clusters
        One row per cluster (see :func:`contaminated_clusters`), metric CRS.
    sample_cluster
        ``cluster_id`` of each usable sample (index = sample_id), empty string outside.
    background
        Median concentration (mg/kg) of each element over samples outside all clusters.
    parcels
        Member parcels: ``parcel_id``, ``cluster_id``, ``area_mu``, geometry.
    """

    clusters: gpd.GeoDataFrame
    sample_cluster: pd.Series
    background: pd.Series
    parcels: gpd.GeoDataFrame


def contaminated_clusters(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
                          gap: float = ZONE_GAP_M, min_samples: int = 3) -> Clusters:
    """Group contiguous class-2/3 parcels into clusters and describe each.

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (``parcel_id``, ``final_class``, ``area_mu``,
        ``township``, ``driving_element``), metric CRS.
    samples
        Classification ``samples`` layer (``sample_id``, ``ph``, element columns, ``pi_<el>``,
        ``usable``), reprojected to the parcels' CRS when needed.
    gap
        Zone gap (metres): parcels closer than this belong to one cluster; a sample within
        it of a member parcel belongs to the cluster.
    min_samples
        Fewest samples a cluster's signature is computed from.

    Returns
    -------
    Clusters
        ``clusters`` columns: ``cluster_id`` (``CL001`` … by area descending),
        ``township``, ``other_townships``, ``area_mu``, ``area_class2_mu``,
        ``area_class3_mu``, ``n_parcels``, ``n_samples``, ``dominant_elements``,
        ``pi_median_<el>`` / ``pi_p90_<el>`` for each dominant element, ``ph_median``,
        ``conc_<el>`` (median mg/kg), ``ef_<el>`` (enrichment factor), ``signature_basis``,
        ``sample_ids``, ``parcel_ids``, ``zone_gap_m``, geometry.
    """
    require_metric(parcels)
    cls = C.as_class(parcels["final_class"].to_numpy())
    members = parcels.loc[(cls >= C.SAFE_UTILISATION).fillna(False).to_numpy()]
    members = members.loc[members.geometry.notna() & ~members.geometry.is_empty]
    pts = same_crs(usable_samples(samples), parcels, "samples").reset_index(drop=True)
    elements = [e for e in SIGNATURE_ELEMENTS if e in pts]
    if members.empty:
        return _empty(parcels.crs, pts, elements)
    labels = contiguous_labels(members.geometry.values, tolerance=gap)
    table = dissolve_labels(members, labels, pts).reset_index(drop=True)
    ids = np.array([f"CL{i:03d}" for i in range(1, len(table) + 1)], dtype=object)
    id_of_label = pd.Series(ids, index=table["label"].to_numpy())
    area3 = _class_area(members, labels, C.STRICT_CONTROL).reindex(table["label"], fill_value=0)
    table.insert(0, "cluster_id", ids)
    table.insert(5, "area_class3_mu", area3.round(4).to_numpy())
    table.insert(5, "area_class2_mu", (table["area_mu"] - table["area_class3_mu"]).round(4))
    member_label = _sample_labels(pts, members, labels, gap)
    sample_cluster = pd.Series(
        np.where(member_label >= 0, id_of_label.reindex(member_label).fillna("").to_numpy(), ""),
        index=pts["sample_id"].astype(str).to_numpy(), name="cluster_id")
    background = pts.loc[member_label < 0, elements].median()
    table = _with_evidence(table, members, labels, pts, sample_cluster, elements, background,
                           min_samples)
    table["zone_gap_m"] = float(gap)
    log.info("%d contaminated-land cluster(s), %.1f 亩 (class 2/3, zone gap %.0f m)",
             len(table), table["area_mu"].sum(), gap)
    member = gpd.GeoDataFrame({"parcel_id": members["parcel_id"].astype(str).to_numpy(),
                               "cluster_id": id_of_label.reindex(labels).to_numpy(),
                               "area_mu": C.parcel_area_mu(members).to_numpy()},
                              geometry=members.geometry.to_numpy(), crs=members.crs)
    return Clusters(table.drop(columns=["label", "min_parcel_id"]), sample_cluster, background,
                    member)


def _class_area(members, labels, klass) -> pd.Series:
    cls = C.as_class(members["final_class"].to_numpy())
    area = C.parcel_area_mu(members).to_numpy() * (cls == klass).fillna(False).to_numpy()
    return pd.Series(area).groupby(labels).sum()


def _sample_labels(pts, members, labels, gap) -> np.ndarray:
    """Cluster label of each sample: that of the nearest member parcel within ``gap``."""
    out = np.full(len(pts), -1, dtype=np.int64)
    if pts.empty:
        return out
    tree = shapely.STRtree(members.geometry.values)
    s_idx, p_idx = tree.query_nearest(pts.geometry.values, max_distance=gap, all_matches=False)
    out[s_idx] = labels[p_idx]
    return out


def _with_evidence(table, members, labels, pts, sample_cluster, elements, background,
                   min_samples) -> gpd.GeoDataFrame:
    """Add dominant elements, Pᵢ statistics, pH, concentrations and enrichment factors."""
    table["dominant_elements"] = _dominant(members, labels).reindex(table["label"],
                                                                    fill_value="").to_numpy()
    cid = sample_cluster.to_numpy()
    table["n_samples"] = pd.Series(cid[cid != ""]).value_counts().reindex(
        table["cluster_id"], fill_value=0).to_numpy()
    table["sample_ids"] = (pd.Series(sample_cluster.index[cid != ""], dtype=str)
                           .groupby(cid[cid != ""]).agg(",".join)
                           .reindex(table["cluster_id"], fill_value="").to_numpy())
    basis = _signature_samples(table, pts, cid, min_samples)
    conc = pts.iloc[basis["sample"].to_numpy()].assign(cluster_id=basis["cluster_id"].to_numpy())
    g = conc.groupby("cluster_id", sort=False)
    med = g[elements + ["ph"]].median().reindex(table["cluster_id"])
    table["ph_median"] = med["ph"].round(2).to_numpy()
    for el in _dominant_set(table):
        col = f"pi_{el}"
        if col in conc:
            table[f"pi_median_{el}"] = g[col].median().reindex(table["cluster_id"]).round(3).to_numpy()
            table[f"pi_p90_{el}"] = g[col].quantile(0.9).reindex(table["cluster_id"]).round(3).to_numpy()
    for el in elements:
        table[f"conc_{el}"] = med[el].round(4).to_numpy()
        ratio = med[el].to_numpy() / float(background[el]) if background[el] > 0 else np.nan
        table[f"ef_{el}"] = np.round(ratio, 3)
    inside = table["n_samples"].to_numpy() >= min_samples
    table["signature_basis"] = np.where(
        inside, "samples inside", f"{min_samples} nearest samples (too few inside)")
    return table


def _dominant(members, labels) -> pd.Series:
    """Driving elements covering at least :data:`DOMINANT_SHARE` of a cluster's area."""
    drv = members["driving_element"].astype(object).where(members["driving_element"].notna(), "")
    frame = pd.DataFrame({"label": labels, "el": drv.astype(str).str.split(r"[,;]").to_numpy(),
                          "area": C.parcel_area_mu(members).to_numpy()}).explode("el")
    frame["el"] = frame["el"].str.strip().str.lower()
    frame = frame[frame["el"].astype(bool)]
    share = frame.groupby(["label", "el"])["area"].sum() / frame.groupby("label")["area"].sum()
    share = share[share >= DOMINANT_SHARE].reset_index(name="share")
    share = share.sort_values(["label", "share", "el"], ascending=[True, False, True])
    return share.groupby("label")["el"].agg(",".join)


def _dominant_set(table) -> list[str]:
    found = {e for text in table["dominant_elements"] for e in str(text).split(",") if e}
    return [e for e in SIGNATURE_ELEMENTS if e in found] + sorted(found - set(SIGNATURE_ELEMENTS))


def _signature_samples(table, pts, cid, min_samples) -> pd.DataFrame:
    """(cluster_id, sample row) pairs the signature is computed from: the samples inside,
    or the ``min_samples`` nearest to the cluster when fewer lie inside."""
    rows = [pd.DataFrame({"cluster_id": cid[cid != ""], "sample": np.flatnonzero(cid != "")})]
    few = table.loc[table["n_samples"] < min_samples]
    if len(few) and len(pts):
        xy = shapely.get_coordinates(pts.geometry.values)
        centre = shapely.get_coordinates(shapely.point_on_surface(few.geometry.values))
        k = min(min_samples, len(pts))
        _, near = cKDTree(xy).query(centre, k=k)
        near = np.asarray(near).reshape(len(few), k)
        rows = [rows[0][~np.isin(rows[0]["cluster_id"], few["cluster_id"])],
                pd.DataFrame({"cluster_id": np.repeat(few["cluster_id"].to_numpy(), k),
                              "sample": near.ravel()})]
    return pd.concat(rows, ignore_index=True)


def _empty(crs, pts, elements) -> Clusters:
    table = gpd.GeoDataFrame({"cluster_id": pd.Series(dtype=str)},
                             geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    sample_cluster = pd.Series("", index=pts["sample_id"].astype(str).to_numpy() if len(pts)
                               else [], name="cluster_id", dtype=object)
    member = gpd.GeoDataFrame({"parcel_id": pd.Series(dtype=str),
                               "cluster_id": pd.Series(dtype=str),
                               "area_mu": pd.Series(dtype=float)},
                              geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return Clusters(table, sample_cluster, pts[elements].median() if len(pts) else pd.Series(),
                    member)
