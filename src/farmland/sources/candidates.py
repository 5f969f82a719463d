"""Candidate sources for each contaminated-land cluster, ranked by a simple, written rule.

Three kinds of candidate are weighed for every cluster:

``enterprise``
    A listed enterprise (重点企业) within ``search_m`` of the cluster, as a near-field source
    (stack and fugitive deposition, runoff, direct discharge onto adjoining fields).
``irrigation``
    The same enterprise reaching the cluster through water: the cluster lies along the
    river or canal network downstream of its outfall.
``geogenic``
    The parent material: carbonate (karst) rocks weather into high-pH soils that keep Cd
    high without the Pb, Zn and As that a smelter or a mine brings along.

Every candidate's score lies in [0, 1] and is built only from evidence columns that are
written out beside it:

- ``near_field_share`` = area-weighted mean over the cluster's parcels of
  exp(−d / ``near_field_m``), d the distance from the enterprise to the parcel;
- ``signature_cosine`` = cosine between the cluster's excess vector
  (max(0, ln EFₑ) over the eight metals, EF = the cluster's median over the median of the
  samples outside every cluster on the same lithology: karst soils are naturally richer
  in Cd, Hg, Ni and Zn, and that is not an enterprise's signature)
  and the enterprise's characteristic metals (1 for each listed metal, else 0);
- ``signature_factor`` (evidence beside the score, when PMF ran) = the same cosine for
  what the PMF factors raised in the cluster add (:mod:`.factors`); a check of the
  signature by a second method, not a term of the score;
- ``signature_coverage`` = the share of the cluster's excess carried by metals the
  enterprise emits. Water moves Cd far further than Pb or Zn, which bind to sediment near
  the outfall, so the irrigation candidate is not penalised for missing Pb;
- ``downstream``, ``network_distance_m`` (along the network from the outfall to where
  it first comes within ``river_buffer_m`` of the cluster), ``river`` (the line there),
  ``along_share`` (share of the cluster's area within ``river_buffer_m`` of the network
  below the outfall);
- ``downwind_share`` / ``downwind_ratio`` from the wind rose (:mod:`.wind`);
- ``karst_share`` (area on karst in the geology layer), ``high_ph_share`` (share of the
  cluster's samples with pH > 7.5) and ``co_enrichment`` (the largest of Pb, Zn and As in
  the cluster over the samples outside clusters on the same lithology).

Scores (weights renormalised over the evidence layers that were given):

- enterprise = signature_cosine × (0.60 near_field_share + 0.25 hydro_near + 0.15 wind),
  hydro_near = 1 when the cluster lies along the network within ``near_network_m``
  below the outfall, wind = min(1, downwind_ratio / 2);
- irrigation = signature_coverage × (1 − near_field_share) × along_share
  × exp(−network_distance / ``irrigation_decay_m``), only for downstream clusters: the
  nearest outfall upstream explains a cluster better than one further up the same river;
- geogenic = [Cd is a dominant element] × (1 − clip(ln co_enrichment / ln 4, 0, 1))
  × (0.5 karst_share + 0.5 high_ph_share) (high_ph_share alone without geology).

Candidates are ranked by score within each cluster (ties: enterprise before irrigation
before geogenic, then id). The rank is evidence for an investigation, not a verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.crs import same_crs
from farmland.sources.clusters import SIGNATURE_ELEMENTS, Clusters
from farmland.sources.network import FlowNetwork
from farmland.sources.wind import bearing_deg, downwind_share

__all__ = ["CANDIDATE_COLUMNS", "EvidenceLayers", "RankingRule", "flow_network", "outfall_xy",
           "rank_candidates"]

log = logging.getLogger(__name__)

CANDIDATE_COLUMNS = [
    "cluster_id", "rank", "candidate_id", "candidate_type", "name", "industry", "metals",
    "score", "distance_m", "bearing_deg", "near_field_share", "downwind_share",
    "downwind_ratio", "downstream", "network_distance_m", "river", "along_share",
    "signature_cosine", "signature_coverage", "signature_factor", "karst_share",
    "high_ph_share",
    "co_enrichment", "evidence"]
#: the co-enriched metals that mark an anthropogenic (smelter, mine) rather than geogenic Cd
CO_METALS = ("pb", "zn", "as")
HIGH_PH = 7.5
#: Pb/Zn/As this many times their lithology background count as full co-enrichment (smelter
#: and mine fields run several-fold to tenfold above background; geogenic Cd carries none)
FULL_CO = 4.0
_TYPE_ORDER = {"enterprise": 0, "irrigation": 1, "geogenic": 2}


@dataclass(frozen=True)
class RankingRule:
    """Distances and weights of the ranking rule (metres)."""

    near_field_m: float = 1_500.0
    search_m: float = 15_000.0
    river_buffer_m: float = 500.0
    near_network_m: float = 5_000.0
    irrigation_decay_m: float = 10_000.0
    max_outfall_offset_m: float = 2_000.0
    weights: dict[str, float] = field(default_factory=lambda: {
        "near_field": 0.60, "hydro": 0.25, "wind": 0.15})


@dataclass
class EvidenceLayers:
    """The layers candidates are weighed with; all but ``enterprises`` optional.

    ``enterprises``: ``source_id``, ``name``, ``industry``, ``metals`` (comma list), points;
    ``rivers``: lines, vertex order = flow; ``geology``: polygons with a boolean ``karst``;
    ``wind``: ``direction_deg``, ``frequency``; ``outfalls``: ``source_id`` and points (else
    each enterprise discharges at the network node nearest to it).
    """

    enterprises: gpd.GeoDataFrame
    rivers: gpd.GeoDataFrame | None = None
    geology: gpd.GeoDataFrame | None = None
    wind: pd.DataFrame | None = None
    outfalls: gpd.GeoDataFrame | None = None


def rank_candidates(found: Clusters, samples: gpd.GeoDataFrame, layers: EvidenceLayers,
                    *, rule: RankingRule | None = None,
                    factor_excess: pd.DataFrame | None = None,
                    network: FlowNetwork | None = None) -> pd.DataFrame:
    """Rank the candidate sources of every cluster.

    Parameters
    ----------
    found
        Output of :func:`farmland.sources.clusters.contaminated_clusters`.
    samples
        The soil samples the clusters were built from (``sample_id``, ``ph``, metals).
    layers
        Enterprises and the optional rivers, geology and wind rose, in any CRS (brought
        to the clusters' metric CRS).
    rule
        Distances and weights; the documented defaults when None.
    factor_excess
        Per cluster (index) and element, what the PMF factors raised in the cluster add
        (:attr:`farmland.sources.factors.FactorSummary.cluster_excess`): gives
        ``signature_factor``, the cosine of that vector with the enterprise's metals.
    network
        The network of ``layers.rivers`` when already built (:func:`flow_network`).

    Returns
    -------
    pandas.DataFrame
        :data:`CANDIDATE_COLUMNS`, one row per (cluster, candidate) with a positive
        score or the geogenic candidate, ordered by cluster then rank.
    """
    rule = rule or RankingRule()
    table = found.clusters
    if table.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    crs = table.crs
    ent = same_crs(layers.enterprises, table, "enterprises").reset_index(drop=True)
    geo = _geogenic_evidence(found, samples, layers, crs)
    excess = _excess(table, geo)
    network = network or flow_network(layers, crs)
    rows = [_enterprise_rows(found, ent, layers, network, rule, excess,
                             _factor_excess(table, factor_excess))]
    rows.append(_geogenic_rows(table, geo))
    out = pd.concat([r for r in rows if len(r)], ignore_index=True)
    for col in CANDIDATE_COLUMNS:
        if col not in out:
            out[col] = np.nan
    out["type_order"] = out["candidate_type"].map(_TYPE_ORDER)
    out = out.sort_values(["cluster_id", "score", "type_order", "candidate_id"],
                          ascending=[True, False, True, True], kind="stable")
    out["rank"] = out.groupby("cluster_id").cumcount() + 1
    out["evidence"] = [_evidence_text(r) for r in out.itertuples(index=False)]
    return out[CANDIDATE_COLUMNS].reset_index(drop=True)


def flow_network(layers: EvidenceLayers, crs) -> FlowNetwork | None:
    """The directed network of ``layers.rivers`` in ``crs`` (None without rivers)."""
    if layers.rivers is None or not len(layers.rivers):
        return None
    return FlowNetwork(layers.rivers.to_crs(crs))


# ----------------------------------------------------------------------- enterprises
def _enterprise_rows(found: Clusters, ent: gpd.GeoDataFrame, layers: EvidenceLayers,
                     network: FlowNetwork | None, rule: RankingRule,
                     excess: np.ndarray, f_excess: np.ndarray | None) -> pd.DataFrame:
    table, members = found.clusters, found.parcels
    if ent.empty:
        return pd.DataFrame()
    c_idx, e_idx = shapely.STRtree(ent.geometry.values).query(
        table.geometry.values, predicate="dwithin", distance=rule.search_m)
    if not len(c_idx):
        return pd.DataFrame()
    pairs = pd.DataFrame({"c": c_idx, "e": e_idx})
    emits = _emission_matrix(ent)
    pairs["distance_m"] = shapely.distance(table.geometry.values[c_idx], ent.geometry.values[e_idx])
    rep = shapely.point_on_surface(table.geometry.values)
    exy, rxy = shapely.get_coordinates(ent.geometry.values), shapely.get_coordinates(rep)
    pairs["bearing_deg"] = bearing_deg(*exy[e_idx].T, *rxy[c_idx].T)
    pairs["near_field_share"] = _near_field(members, table, ent, pairs, rule.near_field_m)
    pairs["signature_cosine"], pairs["signature_coverage"] = _signature(excess, emits, pairs)
    pairs["signature_factor"] = (_signature(f_excess, emits, pairs)[0] if f_excess is not None
                                 else np.nan)
    pairs[["downwind_share", "downwind_ratio"]] = _wind(table, layers.wind, pairs, rxy, exy)
    hydro = _hydro(found, ent, layers, network, pairs, rule)
    pairs = pairs.join(hydro)
    ids = table["cluster_id"].to_numpy()
    pairs["cluster_id"] = ids[pairs["c"]]
    for col in ("source_id", "name", "industry", "metals"):
        pairs[col] = ent[col].astype(object).to_numpy()[pairs["e"]] if col in ent else ""
    near = _enterprise_score(pairs, network is not None, layers.wind is not None, rule)
    irr = _irrigation_score(pairs, rule)
    return pd.concat([near, irr], ignore_index=True)


def _excess(table: pd.DataFrame, geo: pd.DataFrame) -> np.ndarray:
    """max(0, ln EF) per cluster and signature element (0 where unknown), EF = the
    cluster's median over the median of the samples outside clusters on its lithology."""
    conc = table.reindex(columns=[f"conc_{e}" for e in SIGNATURE_ELEMENTS]).to_numpy(float)
    bg = geo.reindex(columns=[f"bg_{e}" for e in SIGNATURE_ELEMENTS]).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log(conc / bg)
    return np.nan_to_num(np.maximum(x, 0.0), nan=0.0)


def _factor_excess(table: pd.DataFrame, factor_excess: pd.DataFrame | None
                   ) -> np.ndarray | None:
    """The PMF excess vector per cluster in :data:`SIGNATURE_ELEMENTS` order (0 where absent)."""
    if factor_excess is None or factor_excess.empty:
        return None
    frame = factor_excess.reindex(index=table["cluster_id"], columns=list(SIGNATURE_ELEMENTS))
    return np.nan_to_num(frame.to_numpy(float), nan=0.0)


def _emission_matrix(ent: pd.DataFrame) -> np.ndarray:
    metals = ent["metals"].astype(object).where(ent["metals"].notna(), "") if "metals" in ent \
        else pd.Series([""] * len(ent))
    sets = [{m.strip().lower() for m in str(t).split(",")} for t in metals]
    return np.array([[e in s for e in SIGNATURE_ELEMENTS] for s in sets], dtype=float)


def _signature(excess, emits, pairs) -> tuple[np.ndarray, np.ndarray]:
    x, m = excess[pairs["c"].to_numpy()], emits[pairs["e"].to_numpy()]
    dot = (x * m).sum(axis=1)
    norm = np.linalg.norm(x, axis=1) * np.linalg.norm(m, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(norm > 0, dot / norm, 0.0)
        coverage = np.where(x.sum(axis=1) > 0, dot / x.sum(axis=1), 0.0)
    return cosine.round(4), coverage.round(4)


def _near_field(members, table, ent, pairs, length) -> np.ndarray:
    """Area-weighted mean of exp(−d/length) over each pair's cluster parcels."""
    order = np.argsort(members["cluster_id"].to_numpy(), kind="stable")
    cid = members["cluster_id"].to_numpy()[order]
    pts = shapely.get_coordinates(shapely.point_on_surface(members.geometry.values[order]))
    area = members["area_mu"].to_numpy(float)[order]
    start = np.searchsorted(cid, table["cluster_id"].to_numpy(), side="left")
    stop = np.searchsorted(cid, table["cluster_id"].to_numpy(), side="right")
    exy = shapely.get_coordinates(ent.geometry.values)
    out = np.empty(len(pairs))
    for k, (c, e) in enumerate(zip(pairs["c"], pairs["e"], strict=True)):
        sl = slice(start[c], stop[c])
        d = np.hypot(*(pts[sl] - exy[e]).T)
        out[k] = np.average(np.exp(-d / length), weights=area[sl]) if area[sl].sum() > 0 else 0
    return out.round(4)


def _wind(table, wind, pairs, rxy, exy) -> pd.DataFrame:
    if wind is None or not len(wind):
        return pd.DataFrame({"downwind_share": np.nan, "downwind_ratio": np.nan},
                            index=pairs.index)
    radius = np.sqrt(table.geometry.area.to_numpy() / np.pi)
    vals = []
    for c, e, b in zip(pairs["c"], pairs["e"], pairs["bearing_deg"], strict=True):
        d = float(np.hypot(*(rxy[c] - exy[e])))
        half = np.degrees(np.arctan2(radius[c], max(d, 1.0)))
        vals.append(downwind_share(wind, b, half))
    return pd.DataFrame(np.round(vals, 4), columns=["downwind_share", "downwind_ratio"],
                        index=pairs.index)


def _hydro(found, ent, layers, network, pairs, rule) -> pd.DataFrame:
    """Downstream position of each cluster below each enterprise's outfall."""
    out = pd.DataFrame({"downstream": False, "network_distance_m": np.nan, "river": "",
                        "along_share": 0.0}, index=pairs.index)
    if network is None:
        out["downstream"] = pd.NA
        return out
    members = found.parcels
    table = found.clusters
    area = members.groupby("cluster_id")["area_mu"].sum()
    g_idx, node_idx = network.nodes_near(table.geometry.values, rule.river_buffer_m)
    p_idx, p_node = network.nodes_near(members.geometry.values, rule.river_buffer_m)
    outfall = outfall_xy(ent, layers, table.crs)
    for e in np.unique(pairs["e"]):
        reach = network.reach(*outfall[e], max_offset=rule.max_outfall_offset_m)
        if reach is None:
            continue
        dist = reach.distance
        near = pd.DataFrame({"c": g_idx, "d": dist[node_idx], "node": node_idx})
        near = near[np.isfinite(near["d"])].sort_values(["c", "d"])
        first = near.groupby("c").first()
        wet = np.zeros(len(members), dtype=bool)
        wet[p_idx[np.isfinite(dist[p_node])]] = True
        wet_area = members.loc[wet].groupby("cluster_id")["area_mu"].sum()
        for k in pairs.index[pairs["e"] == e]:
            c = pairs.at[k, "c"]
            if c not in first.index:
                continue
            cid = table["cluster_id"].iat[c]
            out.loc[k, ["downstream", "network_distance_m", "river", "along_share"]] = [
                True, round(float(first.at[c, "d"]), 1),
                network.line_name(int(first.at[c, "node"])),
                round(float(wet_area.get(cid, 0.0) / area[cid]), 4)]
    return out


def outfall_xy(ent: gpd.GeoDataFrame, layers: EvidenceLayers, crs) -> np.ndarray:
    """Where each enterprise of ``ent`` discharges (x, y in ``crs``): its point in
    ``layers.outfalls`` when listed there, else its own location."""
    xy = shapely.get_coordinates(ent.to_crs(crs).geometry.values).copy()
    if layers.outfalls is not None and len(layers.outfalls):
        of = layers.outfalls.to_crs(crs)
        where = dict(zip(of["source_id"].astype(str), shapely.get_coordinates(of.geometry.values)
                         .tolist(), strict=True))
        for k, sid in enumerate(ent["source_id"].astype(str)):
            if sid in where:
                xy[k] = where[sid]
    return xy


def _enterprise_score(pairs, has_network, has_wind, rule) -> pd.DataFrame:
    w = rule.weights
    terms = [(w["near_field"], pairs["near_field_share"].to_numpy(float))]
    if has_network:
        hydro = (pairs["downstream"].fillna(False).astype(bool)
                 & (pairs["network_distance_m"].fillna(np.inf) <= rule.near_network_m))
        terms.append((w["hydro"], hydro.to_numpy(float)))
    if has_wind:
        terms.append((w["wind"], np.minimum(1.0, pairs["downwind_ratio"].to_numpy(float) / 2)))
    mix = sum(wt * v for wt, v in terms) / sum(wt for wt, _ in terms)
    out = pairs.assign(candidate_type="enterprise", candidate_id=pairs["source_id"].astype(str),
                       score=(pairs["signature_cosine"].to_numpy() * mix).round(4))
    return out[out["score"] > 0]


def _irrigation_score(pairs, rule) -> pd.DataFrame:
    down = pairs["downstream"].fillna(False).astype(bool).to_numpy()
    p = pairs.loc[down]
    if p.empty:
        return pd.DataFrame()
    decay = np.exp(-p["network_distance_m"].to_numpy(float) / rule.irrigation_decay_m)
    score = (p["signature_coverage"].to_numpy() * (1 - p["near_field_share"].to_numpy())
             * p["along_share"].to_numpy(float) * decay)
    out = p.assign(candidate_type="irrigation",
                   candidate_id=p["source_id"].astype(str) + "~irrigation",
                   score=np.round(score, 4))
    return out[out["score"] > 0]


# ----------------------------------------------------------------------- geogenic
def _geogenic_evidence(found: Clusters, samples, layers: EvidenceLayers, crs) -> pd.DataFrame:
    """Per cluster (index = cluster_id): ``karst_share``, ``high_ph_share``, ``karst``
    (the lithology its background is taken from), ``bg_<el>`` (median of the samples
    outside clusters on that lithology), ``co_enrichment`` and ``cd_dominant``."""
    table = found.clusters
    pts = samples.set_index(samples["sample_id"].astype(str))
    cid = found.sample_cluster.reindex(pts.index).fillna("").to_numpy()
    out = pd.DataFrame(index=table["cluster_id"])
    ph = pts["ph"].to_numpy(float)
    inside = pd.DataFrame({"c": cid, "high": ph > HIGH_PH})[cid != ""]
    out["high_ph_share"] = inside.groupby("c")["high"].mean().reindex(out.index).round(4)
    if layers.geology is not None and len(layers.geology):
        geology = layers.geology.to_crs(crs)
        karst = shapely.union_all(geology.loc[geology["karst"].astype(bool)].geometry.values)
        area = table.geometry.area.to_numpy()
        on = shapely.area(shapely.intersection(table.geometry.values, karst))
        out["karst_share"] = np.where(area > 0, on / area, 0.0).round(4)
        karst_pts = shapely.intersects(pts.geometry.values, karst)
        out["karst"] = out["karst_share"].to_numpy() >= 0.5
    else:  # without geology, calcareous (pH > 7.5) soils stand in for karst
        out["karst_share"] = np.nan
        karst_pts = ph > HIGH_PH
        out["karst"] = out["high_ph_share"].fillna(0).to_numpy() >= 0.5
    elements = [e for e in SIGNATURE_ELEMENTS if e in pts]
    outside = cid == ""
    bg = {True: pts.loc[outside & karst_pts, elements].median(),
          False: pts.loc[outside & ~karst_pts, elements].median()}
    for el in elements:
        out[f"bg_{el}"] = np.where(out["karst"], bg[True][el], bg[False][el])
    out["co_enrichment"] = _co_enrichment(table, out)
    out["cd_dominant"] = ["cd" in str(t).split(",") for t in table["dominant_elements"]]
    return out


def _co_enrichment(table, geo) -> np.ndarray:
    """Largest of Pb, Zn, As: the cluster's median over its lithology's background."""
    cols = [m for m in CO_METALS if f"conc_{m}" in table and f"bg_{m}" in geo]
    if not cols:
        return np.full(len(table), np.nan)
    ratios = np.vstack([table[f"conc_{m}"].to_numpy(float) / geo[f"bg_{m}"].to_numpy(float)
                        for m in cols]).T
    with np.errstate(all="ignore"):
        worst = np.where(np.isnan(ratios).all(axis=1), np.nan,
                         np.nanmax(np.where(np.isnan(ratios), -np.inf, ratios), axis=1))
    return np.round(worst, 3)


def _geogenic_rows(table, geo: pd.DataFrame) -> pd.DataFrame:
    karst = geo["karst_share"]
    setting = (0.5 * karst.fillna(0) + 0.5 * geo["high_ph_share"].fillna(0)
               if karst.notna().any() else geo["high_ph_share"].fillna(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        co = np.clip(np.log(geo["co_enrichment"].to_numpy(float)) / np.log(FULL_CO), 0.0, 1.0)
    co = np.nan_to_num(co, nan=1.0)
    score = geo["cd_dominant"].to_numpy(float) * (1.0 - co) * setting.to_numpy()
    return pd.DataFrame({
        "cluster_id": geo.index.to_numpy(), "candidate_type": "geogenic",
        "candidate_id": "geogenic", "name": "地质高背景（岩溶） geogenic (karst parent material)",
        "industry": "", "metals": "cd", "score": np.round(score, 4),
        "karst_share": karst.to_numpy(), "high_ph_share": geo["high_ph_share"].to_numpy(),
        "co_enrichment": geo["co_enrichment"].to_numpy()})


def _evidence_text(r) -> str:
    """One bilingual line of the figures behind a candidate's score."""
    if r.candidate_type == "geogenic":
        return (f"岩溶面积占比 karst {_pct(r.karst_share)}; pH>7.5 样点 {_pct(r.high_ph_share)}; "
                f"Pb/Zn/As 富集 co-enrichment ×{r.co_enrichment:.2f}")
    parts = [f"距离 {r.distance_m:,.0f} m, 方位 bearing {r.bearing_deg:.0f}°",
             f"近场 near field {_pct(r.near_field_share)}",
             f"特征元素 signature cos {r.signature_cosine:.2f} / cover {r.signature_coverage:.2f}"
             + (f" / PMF {r.signature_factor:.2f}" if pd.notna(r.signature_factor) else "")]
    if r.downstream is True:
        parts.append(f"下游 downstream {r.network_distance_m:,.0f} m ({r.river}), "
                     f"沿河 along {_pct(r.along_share)}")
    if pd.notna(r.downwind_ratio):
        parts.append(f"下风向 downwind {_pct(r.downwind_share)} (×{r.downwind_ratio:.1f})")
    return "; ".join(parts)


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * float(v):.0f} %"
