"""Confirmation samples: where to sample water, sediment, deposition and soil to test the
top-ranked candidate source of each cluster.

What is proposed depends on the candidate that ranks first:

``irrigation``
    Irrigation water and sediment (灌溉水+底泥) on the network path from the outfall
    down past the cluster: 100 m below the outfall, every ``spacing_m`` along the path
    (at most ``max_path_points``), and at the farthest network node beside the cluster.
    Cd falling along the path, and high in sediment, confirms the route.
``enterprise``
    A topsoil transect (表层土壤样带) from the enterprise through the cluster: at
    ``transect_m`` distances along the bearing, each moved to the nearest farmland
    parcel within ``snap_m`` (points with no farmland there are dropped). A near-field
    source shows a decline with distance. With a wind rose and a downwind ratio of at
    least 1.5, a deposition collector (大气沉降) is proposed at the cluster.
``geogenic``
    A soil profile (土壤剖面, 0–20/20–40/40–60/60–100 cm, and the parent material) in the
    cluster's largest parcel: geogenic Cd stays high with depth, deposited Cd does not.

Clusters smaller than ``min_area_mu`` or whose best score is below ``min_score`` get no
points. Every point carries the cluster, the candidate and a bilingual reason.

One place is sampled once: points of the same mode closer than ``same_place_m`` (1 m,
well inside a handheld GNSS's 3-5 m error, so the field team could not tell them apart)
are one point serving every cluster and candidate they were proposed for — e.g. the water
points below one outfall proposed for two clusters downstream of it. That point keeps the
place, parcel and township of the first, lists the clusters (``"CL001,CL002"``) and
candidates (each once) and joins the reasons (``" | "``); its priority is the most urgent.
Points of different modes at one place (a transect point and a deposition collector on
the same parcel) stay separate rows: they are different samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland.sources.candidates import EvidenceLayers, flow_network, outfall_xy
from farmland.sources.network import FlowNetwork
from farmland.vocabulary import CAUSE_TYPES

__all__ = ["ConfirmRule", "confirmation_samples", "merge_same_place"]

_MEDIUM = {
    "water": "灌溉水+底泥 irrigation water and sediment",
    "soil": "表层土壤样带 topsoil transect",
    "deposition": "大气沉降 atmospheric deposition",
    "profile": "土壤剖面+母质 soil profile and parent material",
}


@dataclass(frozen=True)
class ConfirmRule:
    """Spacing and limits of the confirmation samples (metres, 亩)."""

    spacing_m: float = 2_000.0
    max_path_points: int = 3
    transect_m: tuple[float, ...] = (250.0, 500.0, 1_000.0, 2_000.0, 4_000.0)
    snap_m: float = 150.0
    min_area_mu: float = 50.0
    min_score: float = 0.2
    same_place_m: float = 1.0


def confirmation_samples(found, candidates: pd.DataFrame, parcels: gpd.GeoDataFrame,
                         enterprises: gpd.GeoDataFrame, *, rivers: gpd.GeoDataFrame | None = None,
                         outfalls: gpd.GeoDataFrame | None = None,
                         network: FlowNetwork | None = None,
                         rule: ConfirmRule | None = None) -> gpd.GeoDataFrame:
    """Points to confirm the top-ranked candidate of each cluster.

    Parameters
    ----------
    found
        :class:`farmland.sources.clusters.Clusters`.
    candidates
        :func:`farmland.sources.candidates.rank_candidates` output.
    parcels
        All farmland parcels (``parcel_id``, ``township``), metric CRS: transect points
        are placed on farmland.
    enterprises
        Enterprises (``source_id``, points), any CRS.
    rivers
        The river and canal network (vertex order = flow), for water and sediment points.
    outfalls
        Outfalls (``source_id``, points): where an enterprise discharges, as in the ranking.
    network
        The network of ``rivers`` when already built (:func:`.candidates.flow_network`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``point_id`` (``C001`` …, consecutive), ``cluster_id`` and ``candidate_id``
        (comma-separated when one point serves several), ``medium``, ``mode``
        (``water``, ``soil``, ``deposition``, ``profile``), ``reason``, ``priority``
        (1 = largest cluster), ``parcel_id``, ``township``, ``x``, ``y``, ``lon``, ``lat``,
        point geometry in the parcels' CRS.
    """
    rule = rule or ConfirmRule()
    crs = parcels.crs
    table = found.clusters.set_index("cluster_id")
    top = candidates[candidates["rank"] == 1].set_index("cluster_id")
    ent = enterprises.to_crs(crs).set_index(enterprises["source_id"].astype(str))
    layers = EvidenceLayers(enterprises, rivers=rivers, outfalls=outfalls)
    network = network or flow_network(layers, crs)
    reaches = _Reaches(network, dict(zip(ent.index, outfall_xy(ent, layers, crs), strict=True)))
    tree = shapely.STRtree(parcels.geometry.values)
    rows: list[dict] = []
    ordered = table.sort_values("area_mu", ascending=False)
    for priority, (cid, cl) in enumerate(ordered.iterrows(), start=1):
        if cid not in top.index or cl["area_mu"] < rule.min_area_mu:
            continue
        cand = top.loc[cid]
        if cand["score"] < rule.min_score:
            continue
        for mode, xy, reason in _points_for(cid, cl, cand, ent, reaches, found, rule):
            rows.append({"cluster_id": cid, "candidate_id": cand["candidate_id"], "mode": mode,
                         "medium": _MEDIUM[mode], "reason": reason, "priority": priority,
                         "x": xy[0], "y": xy[1]})
    return _finish(rows, parcels, tree, crs, rule)


class _Reaches:
    """The network below each enterprise's outfall, searched once per enterprise."""

    def __init__(self, network: FlowNetwork | None, outfalls: dict[str, np.ndarray]):
        self.network, self.outfalls, self._done = network, outfalls, {}

    def below(self, sid: str):
        if sid not in self._done:
            self._done[sid] = self.network.reach(*self.outfalls[sid])
        return self._done[sid]


def _points_for(cid, cl, cand, ent, reaches, found, rule):
    kind, sid = cand["candidate_type"], str(cand["candidate_id"]).split("~")[0]
    if kind == "geogenic":
        members = found.parcels[found.parcels["cluster_id"] == cid]
        big = members.iloc[int(np.argmax(members["area_mu"].to_numpy()))]
        p = shapely.get_coordinates(shapely.point_on_surface(big.geometry))[0]
        yield "profile", p, (f"{cid} 地质成因核实：剖面镉随深度不减即为母质来源 / geogenic check: "
                             "Cd that stays high with depth comes from the parent material")
        return
    src = shapely.get_coordinates(ent.loc[sid].geometry)[0]
    target = shapely.get_coordinates(shapely.point_on_surface(cl.geometry))[0]
    if kind == "irrigation" and reaches.network is not None:
        yield from _water_points(cid, sid, cl, reaches, rule)
        return
    yield from _transect(cid, sid, src, target, rule)
    ratio = cand.get("downwind_ratio")
    if ratio is not None and pd.notna(ratio) and float(ratio) >= 1.5:
        yield "deposition", target, (f"{cid} 位于 {sid} 下风向（×{float(ratio):.1f}），布设降尘缸 / "
                                     f"downwind of {sid}: deposition collector")


def _water_points(cid, sid, cl, reaches: _Reaches, rule):
    """Water and sediment from just below the outfall down the path to the farthest
    network node beside the cluster, every ``spacing_m``: Cd should fall along the way."""
    network, reach = reaches.network, reaches.below(sid)
    if reach is None:
        return
    _, nodes = network.nodes_near(np.array([cl.geometry]), 500.0)
    nodes = nodes[np.isfinite(reach.distance[nodes])]
    if not len(nodes):
        return
    far = int(nodes[np.argmax(reach.distance[nodes])])
    path = reach.path_to(far)
    dist = reach.distance[path]
    marks = [min(100.0, dist[-1])]
    marks += list(np.arange(rule.spacing_m, dist[-1], rule.spacing_m)[:rule.max_path_points])
    marks.append(dist[-1])
    for m in marks:
        node = int(path[min(np.searchsorted(dist, m), len(path) - 1)])
        d = reach.distance[node]
        yield "water", network.xy[node], (
            f"{cid}：{sid} 排口下游 {d:,.0f} m（{network.line_name(node)}）采灌溉水和底泥 / "
            f"water and sediment {d:,.0f} m below {sid}'s outfall")


def _transect(cid, sid, src, target, rule):
    v = np.asarray(target, float) - src
    norm = float(np.hypot(*v))
    if norm == 0:
        v, norm = np.array([0.0, 1.0]), 1.0
    for d in rule.transect_m:
        yield "soil", src + v / norm * d, (
            f"{sid}→{cid} 样带 {d:,.0f} m：镉随距离下降即为近场来源 / transect {d:,.0f} m "
            f"from {sid}: Cd falling with distance marks a near-field source")


def _finish(rows, parcels, tree, crs, rule) -> gpd.GeoDataFrame:
    cols = ["point_id", "cluster_id", "candidate_id", "medium", "mode", "reason", "priority",
            "parcel_id", "township", "x", "y", "lon", "lat"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=gpd.GeoSeries([], crs=crs),
                                crs=crs)
    out = pd.DataFrame(rows)
    pts = shapely.points(out[["x", "y"]].to_numpy())
    on_land = out["mode"].isin(["soil", "profile", "deposition"]).to_numpy()
    p_idx, parcel = tree.query_nearest(pts, max_distance=rule.snap_m, all_matches=False)
    nearest = np.full(len(out), -1)
    nearest[p_idx] = parcel
    keep = ~on_land | (nearest >= 0)
    moved = on_land & (nearest >= 0)
    snapped = shapely.point_on_surface(parcels.geometry.values[nearest[moved]])
    xy = out[["x", "y"]].to_numpy(float).copy()
    xy[moved] = shapely.get_coordinates(snapped)
    out[["x", "y"]] = np.round(xy, 2)
    ids = parcels["parcel_id"].astype(str).to_numpy()
    towns = parcels["township"].astype(str).to_numpy() if "township" in parcels else None
    out["parcel_id"] = np.where(nearest >= 0, ids[np.maximum(nearest, 0)], "")
    out["township"] = (np.where(nearest >= 0, towns[np.maximum(nearest, 0)], "")
                       if towns is not None else "")
    out = merge_same_place(out.loc[keep].reset_index(drop=True), rule.same_place_m)
    geo = gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["x"], out["y"]), crs=crs)
    ll = geo.geometry.to_crs(4326)
    geo["lon"], geo["lat"] = ll.x.round(6), ll.y.round(6)
    geo.insert(0, "point_id", [f"C{i:03d}" for i in range(1, len(geo) + 1)])
    return geo[cols + ["geometry"]]


def _joined(values, sep: str) -> str:
    """Distinct texts in first-seen order, joined."""
    return sep.join(dict.fromkeys(str(v) for v in values if str(v)))


def merge_same_place(points: pd.DataFrame, tolerance_m: float) -> pd.DataFrame:
    """One row per place and mode: a point closer than ``tolerance_m`` to an earlier point
    of the same ``mode`` joins that point (the earlier one keeps its place, parcel and
    township). The merged row lists every ``cluster_id`` and ``candidate_id`` once
    (comma-separated), joins the distinct reasons with ``" | "`` and takes the smallest
    ``priority``. Rows keep the order of their first point; the index is reset."""
    if points.empty:
        return points.reset_index(drop=True)
    xy = points[["x", "y"]].to_numpy(float)
    modes = points["mode"].astype(str).to_numpy()
    owner = np.arange(len(points))
    for mode in dict.fromkeys(modes):   # pairs closer than the tolerance, per mode (KD-tree)
        rows_of = np.flatnonzero(modes == mode)
        pairs = cKDTree(xy[rows_of]).query_pairs(np.nextafter(tolerance_m, 0),
                                                 output_type="ndarray")
        for a, b in sorted(map(tuple, rows_of[pairs])):   # earlier points first
            if owner[a] == a and owner[b] == b:
                owner[b] = a
    rows = []
    groups = pd.Series(np.arange(len(points))).groupby(owner, sort=False)
    for first, members in groups:
        group = points.iloc[members.to_numpy()]
        row = group.iloc[0].to_dict()
        if len(group) > 1:
            row["cluster_id"] = _joined(group["cluster_id"], ",")
            row["candidate_id"] = _joined(group["candidate_id"], ",")
            row["reason"] = _joined(group["reason"], " | ")
            row["priority"] = group["priority"].min()
        rows.append(row)
    return pd.DataFrame(rows, columns=points.columns).reset_index(drop=True)


#: a cluster whose best candidate scores below this is "unexplained" (no confirmation
#: sample is proposed for it; the map's grey, ``farmland sources``' console line)
UNEXPLAINED_BELOW = ConfirmRule.min_score


def cause_keys(clusters: pd.DataFrame) -> list[str]:
    """The cause of each cluster, a key of :data:`farmland.vocabulary.CAUSE_TYPES`: its top
    candidate's type (``top_candidate_type``), ``"unexplained"`` when that is missing or
    unknown or the top score (``top_score``) is missing or below :data:`UNEXPLAINED_BELOW`."""
    n = len(clusters)
    kinds = clusters["top_candidate_type"] if "top_candidate_type" in clusters else [None] * n
    score = (pd.to_numeric(clusters["top_score"], errors="coerce").to_numpy(dtype=float)
             if "top_score" in clusters else np.full(n, np.nan))
    return [str(k).strip() if isinstance(k, str) and str(k).strip() in CAUSE_TYPES
            and s >= UNEXPLAINED_BELOW else "unexplained" for k, s in zip(kinds, score,
                                                                           strict=True)]
