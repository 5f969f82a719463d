"""Does the top-ranked candidate of each cluster name the cause that was planted there?

A truth-known county (the demo's ``truth/source_areas.gpkg``) gives, for each planted
cause, the area where it adds Cd (an enterprise plume ``E01`` …, the irrigation district
``IRR`` and its enterprise, the karst area ``KARST``). Each cluster is assigned the cause
covering most of it; clusters that no cause covers by at least ``min_cover`` are left out
(background noise made class 2). A cluster is right when its rank-1 candidate names that
cause: the enterprise itself for a plume, ``<enterprise>~irrigation`` for the irrigation
district of that enterprise, ``geogenic`` for karst.

The check reports, per cause, its clusters, their area, the area share ranked right and
whether its largest cluster is ranked right (the issue's "done when": each planted
cluster's true cause ranks first).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["candidate_cause", "source_truth_check"]


def candidate_cause(candidate_id: str, irrigation: dict[str, str]) -> str:
    """The truth cause id a candidate id stands for (``E01~irrigation`` → ``IRR`` when the
    truth's irrigation district ``IRR`` belongs to E01)."""
    cid = str(candidate_id)
    if cid == "geogenic":
        return "KARST"
    if cid.endswith("~irrigation"):
        return irrigation.get(cid.split("~")[0], cid)
    return cid


def source_truth_check(clusters: gpd.GeoDataFrame, candidates: pd.DataFrame,
                       areas: gpd.GeoDataFrame, causes: pd.DataFrame, *,
                       min_cover: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the ranking against planted causes.

    Parameters
    ----------
    clusters
        ``clusters`` of :class:`farmland.sources.clusters.Clusters` (``cluster_id``,
        ``area_mu``, polygons).
    candidates
        :func:`farmland.sources.candidates.rank_candidates` output.
    areas
        Truth polygons: ``cause_id`` and geometry.
    causes
        Truth table: ``cause_id``, ``cause_type`` and ``enterprise_id`` (the enterprise an
        irrigation district belongs to).

    Returns
    -------
    (per_cluster, per_cause)
        ``per_cluster``: ``cluster_id``, ``area_mu``, ``cause`` (covering most), ``cover``,
        ``top_candidate``, ``right``. ``per_cause``: ``cause_id``, ``n_clusters``,
        ``area_mu``, ``right_area_share``, ``largest_cluster``, ``largest_right``.
    """
    areas = areas.to_crs(clusters.crs)
    cover = np.column_stack([
        shapely.area(shapely.intersection(clusters.geometry.values, g))
        for g in areas.geometry.values]) / clusters.geometry.area.to_numpy()[:, None]
    best = cover.argmax(axis=1)
    irrigation = {str(r.enterprise_id): str(r.cause_id) for r in causes.itertuples()
                  if r.cause_type == "irrigation"}
    top = candidates[candidates["rank"] == 1].set_index("cluster_id")["candidate_id"]
    per = pd.DataFrame({
        "cluster_id": clusters["cluster_id"].to_numpy(),
        "area_mu": clusters["area_mu"].to_numpy(),
        "cause": areas["cause_id"].to_numpy()[best],
        "cover": cover[np.arange(len(best)), best].round(3),
    })
    per["top_candidate"] = per["cluster_id"].map(top).fillna("")
    per["right"] = [candidate_cause(t, irrigation) == c
                    for t, c in zip(per["top_candidate"], per["cause"], strict=True)]
    per = per[per["cover"] >= min_cover].reset_index(drop=True)
    rows = []
    for cause in causes["cause_id"]:
        sub = per[per["cause"] == cause].sort_values("area_mu", ascending=False)
        area = float(sub["area_mu"].sum())
        rows.append({"cause_id": cause, "n_clusters": len(sub), "area_mu": round(area, 1),
                     "right_area_share": round(float(sub.loc[sub["right"], "area_mu"].sum())
                                               / area, 4) if area else np.nan,
                     "largest_cluster": sub["cluster_id"].iloc[0] if len(sub) else "",
                     "largest_right": bool(sub["right"].iloc[0]) if len(sub) else False})
    return per, pd.DataFrame(rows)
