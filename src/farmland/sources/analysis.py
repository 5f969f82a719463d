"""The whole ``farmland sources`` step: clusters, hot spots, factors, candidates, confirmation.

:func:`analyse_sources` runs the chain on a classification's parcels and samples and
returns a :class:`SourcesResult`; :func:`farmland.sources.export.write_sources` writes it.
Each part is a pure function of its own module:

1. :func:`farmland.sources.clusters.contaminated_clusters` — contiguous class-2/3 land;
2. :func:`farmland.sources.hotspots.local_hotspots` — Gi* and local Moran on the samples;
3. :func:`farmland.sources.pmf.pmf` and :func:`farmland.sources.apcs.apcs_mlr` — factors;
4. :func:`farmland.sources.candidates.rank_candidates` — evidence and the ranking;
5. :func:`farmland.sources.confirm.confirmation_samples` — where to confirm.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.sampling.zones import usable_samples
from farmland.sources.candidates import (
    EvidenceLayers,
    RankingRule,
    flow_network,
    rank_candidates,
)
from farmland.sources.clusters import Clusters, contaminated_clusters
from farmland.sources.confirm import (
    UNEXPLAINED_BELOW,
    ConfirmRule,
    cause_keys,
    confirmation_samples,
)
from farmland.sources.factors import FactorSummary, factor_analysis
from farmland.sources.hotspots import local_hotspots

__all__ = ["SourcesResult", "analyse_sources"]

log = logging.getLogger(__name__)


@dataclass
class SourcesResult:
    """Everything ``farmland sources`` writes."""

    clusters: Clusters
    hotspots: pd.DataFrame
    factors: FactorSummary | None
    candidates: pd.DataFrame
    confirm: gpd.GeoDataFrame
    links: gpd.GeoDataFrame
    sample_points: gpd.GeoSeries | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def cluster_table(self) -> gpd.GeoDataFrame:
        """The clusters with their top candidate (``top_*``) and factor shares."""
        table = self.clusters.clusters.copy()
        top = self.candidates[self.candidates["rank"] == 1].set_index("cluster_id")
        for col in ("candidate_id", "candidate_type", "name", "score", "evidence"):
            table[f"top_{col}"] = table["cluster_id"].map(top[col]) if len(top) else None
        second = self.candidates[self.candidates["rank"] == 2].set_index("cluster_id")["score"]
        table["top_margin"] = (table["top_score"] - table["cluster_id"].map(second).fillna(0)
                               ).round(4)
        if self.factors is not None:
            shares = self.factors.cluster_shares
            table = table.merge(shares, how="left", left_on="cluster_id", right_index=True)
        return table


def analyse_sources(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame,
                    layers: EvidenceLayers, *, gap: float = 30.0, seed: int = 0,
                    n_factors: int | None = None, permutations: int = 999,
                    rule: RankingRule | None = None,
                    confirm_rule: ConfirmRule | None = None) -> SourcesResult:
    """Run the source analysis of one classification.

    Parameters
    ----------
    parcels, samples
        The ``parcels`` and ``samples`` layers of ``classification.gpkg`` (metric CRS);
        only usable samples (``usable`` True, with a location) are evidence.
    layers
        Enterprises and the optional rivers, geology, wind rose and outfalls.
    gap
        Zone gap (metres) joining parcels into clusters.
    seed
        Seed of the permutation tests and the factor solver's random starts.
    n_factors
        Number of PMF factors; None chooses it from the diagnostics.
    permutations
        Conditional permutations of the hot-spot tests.
    """
    timings: dict[str, float] = {}
    samples = usable_samples(samples)  # a sample unusable for classes is no evidence here
    t = time.perf_counter()
    found = contaminated_clusters(parcels, samples, gap=gap)
    timings["clusters_s"] = time.perf_counter() - t
    t = time.perf_counter()
    hot = local_hotspots(samples, permutations=permutations, seed=seed)
    timings["hotspots_s"] = time.perf_counter() - t
    t = time.perf_counter()
    factors = factor_analysis(samples, found.sample_cluster, n_factors=n_factors, seed=seed)
    timings["factors_s"] = time.perf_counter() - t
    t = time.perf_counter()
    network = flow_network(layers, parcels.crs)  # one network for the ranking and the plan
    cands = rank_candidates(found, samples, layers, rule=rule, network=network,
                            factor_excess=None if factors is None else factors.cluster_excess)
    confirm = confirmation_samples(found, cands, parcels, layers.enterprises,
                                   rivers=layers.rivers, outfalls=layers.outfalls,
                                   network=network, rule=confirm_rule)
    links = candidate_links(found, cands, layers.enterprises)
    timings["candidates_s"] = time.perf_counter() - t
    points = gpd.GeoSeries(samples.geometry.to_numpy(), crs=samples.crs,
                           index=samples["sample_id"].astype(str).to_numpy())
    result = SourcesResult(found, hot, factors, cands, confirm, links, points)
    result.summary = _summary(result, layers, gap, seed, permutations, timings)
    return result


def candidate_links(found: Clusters, candidates: pd.DataFrame,
                    enterprises: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Lines from each enterprise candidate (and irrigation route) to its cluster."""
    crs = found.clusters.crs
    rows = candidates[candidates["candidate_type"] != "geogenic"]
    ent = enterprises.to_crs(crs).set_index(enterprises["source_id"].astype(str)).geometry
    rep = pd.Series(shapely.point_on_surface(found.clusters.geometry.values),
                    index=found.clusters["cluster_id"].to_numpy())
    sid = rows["candidate_id"].astype(str).str.split("~").str[0]
    start = ent.reindex(sid).to_numpy()
    end = rep.reindex(rows["cluster_id"]).to_numpy()
    ok = pd.notna(start) & pd.notna(end)
    lines = shapely.linestrings(np.stack([np.vstack([shapely.get_coordinates(a)[0],
                                                      shapely.get_coordinates(b)[0]])
                                          for a, b in zip(start[ok], end[ok], strict=True)])
                                ) if ok.any() else []
    cols = ["cluster_id", "candidate_id", "candidate_type", "rank", "score"]
    return gpd.GeoDataFrame(rows.loc[ok, cols].reset_index(drop=True), geometry=list(lines),
                            crs=crs)


def _summary(result: SourcesResult, layers, gap, seed, permutations, timings) -> dict:
    table = result.clusters.clusters
    top = result.candidates[result.candidates["rank"] == 1]
    by_type = (top.merge(table[["cluster_id", "area_mu"]], on="cluster_id")
               .groupby("candidate_type")["area_mu"].sum().round(4).to_dict())
    ranked = result.cluster_table()
    by_cause = (ranked["area_mu"].groupby(cause_keys(ranked)).sum().round(4).to_dict()
                if len(ranked) else {})
    return {
        "n_clusters": len(table), "area_mu": round(float(table["area_mu"].sum()), 4),
        "top_candidate_area_mu": by_type,
        # as the map's legend groups them: below the score that names a cause, "unexplained"
        "cause_area_mu": by_cause, "unexplained_below": UNEXPLAINED_BELOW,
        "n_confirmation_samples": len(result.confirm),
        "n_hotspot_samples": int((result.hotspots.get("hotspot", pd.Series(dtype=str)) == "hot")
                                 .sum()),
        "factors": None if result.factors is None else result.factors.summary,
        "zone_gap_m": float(gap), "seed": int(seed), "permutations": int(permutations),
        "layers": {"rivers": layers.rivers is not None, "geology": layers.geology is not None,
                   "wind": layers.wind is not None, "outfalls": layers.outfalls is not None},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
