"""Write the outputs of ``farmland sources``, all or nothing.

Files (names in :data:`farmland.runs.folder.SOURCES_FILES`):

- ``sources.gpkg`` — layers ``clusters`` (with the top candidate), ``hotspots`` (samples
  with a significant Gi* or local-Moran result), ``factor_contributions`` (factor shares
  per sample), ``candidate_links`` (enterprise → cluster lines), ``confirm`` (the
  confirmation samples);
- ``clusters.csv``, ``candidates.csv``, ``factors.csv`` (profiles with bootstrap ranges
  and the APCS-MLR comparison), ``hotspots.csv``;
- ``confirm_samples.csv`` / ``.gpx`` / ``.kml`` / ``.gpkg`` for the field team, as the
  sampling plan is exported;
- ``sources.json`` — the summary, settings and timings.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from farmland.io.write import csv_writer, json_writer, write_gpkg_layers, write_outputs
from farmland.runs.folder import (
    CONFIRM_STEM,
    SOURCE_CANDIDATES,
    SOURCE_CLUSTERS,
    SOURCE_FACTORS,
    SOURCE_HOTSPOTS,
    SOURCES_FILES,
    SOURCES_GPKG,
    SOURCES_JSON,
)
from farmland.sampling.field_export import (
    gpx_tree,
    kml_tree,
    plan_table,
    write_xml,
)
from farmland.sources.analysis import SourcesResult

__all__ = ["write_sources"]

log = logging.getLogger(__name__)

_CONFIRM_TITLE = "污染成因核实采样 / source confirmation samples"


def write_sources(result: SourcesResult, output: str | os.PathLike[str], *,
                  overwrite: bool = False, extra: dict | None = None) -> Path:
    """Write every output of ``farmland sources`` into ``output`` (all or nothing).

    ``extra`` is merged into ``sources.json`` (input paths, the classification).
    """
    out = Path(output)
    table = result.cluster_table()
    plain = pd.DataFrame(table.drop(columns="geometry"))
    hot = result.hotspots
    sig = hot[(hot.get("hotspot", "ns") != "ns") | (hot.get("quadrant", "ns") != "ns")] \
        if len(hot) else hot
    layers = {"clusters": _with_factor_labels(table, result.factors),
              "candidate_links": result.links, "confirm": result.confirm}
    samples_xy = result.sample_points
    if len(sig) and samples_xy is not None:
        layers["hotspots"] = _with_points(sig, samples_xy)
    if result.factors is not None and samples_xy is not None:
        layers["factor_contributions"] = _with_points(result.factors.contributions, samples_xy)
    factors = result.factors.table if result.factors is not None else pd.DataFrame()
    confirm = result.confirm
    write_outputs(out, {
        SOURCES_GPKG: lambda p: write_gpkg_layers(p, layers),
        SOURCE_CLUSTERS: csv_writer(plain),
        SOURCE_CANDIDATES: csv_writer(result.candidates),
        SOURCE_FACTORS: csv_writer(factors),
        SOURCE_HOTSPOTS: csv_writer(hot),
        SOURCES_JSON: json_writer(result.summary | (extra or {})),
        f"{CONFIRM_STEM}.csv": csv_writer(plan_table(confirm)),
        f"{CONFIRM_STEM}.gpx": lambda p: write_xml(gpx_tree(confirm, title=_CONFIRM_TITLE), p),
        f"{CONFIRM_STEM}.kml": lambda p: write_xml(kml_tree(confirm, title=_CONFIRM_TITLE), p),
        f"{CONFIRM_STEM}.gpkg": lambda p: write_gpkg_layers(p, {"confirm": confirm}),
    }, overwrite=overwrite)
    log.info("wrote %s", ", ".join(SOURCES_FILES))
    return out


def _with_points(frame: pd.DataFrame, points: gpd.GeoSeries) -> gpd.GeoDataFrame:
    geom = points.reindex(frame["sample_id"].astype(str)).to_numpy()
    return gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=list(geom), crs=points.crs)


def _with_factor_labels(table: gpd.GeoDataFrame, factors) -> gpd.GeoDataFrame:
    """The clusters layer with ``factor_<F>_label`` (the PMF label of factor F, e.g. "Cd",
    "Cu-Ni-Cr-Zn") beside each ``factor_<F>_cd_share``, so a map can name the factors
    (clusters.csv keeps the shares only)."""
    if factors is None or "label" not in factors.table:
        return table
    pmf = factors.table
    if "method" in pmf:
        pmf = pmf[pmf["method"] == "PMF"]
    labels = pmf.dropna(subset=["label"]).drop_duplicates("factor").set_index("factor")["label"]
    extra = {f"factor_{f}_label": str(lab) for f, lab in labels.items()
             if f"factor_{f}_cd_share" in table}
    return table.assign(**extra) if extra else table
