"""Reading back what ``farmland sources`` wrote, for ``farmland map --causes`` and
``farmland report``.

- :func:`read_cause_layers`: the layers of ``sources.gpkg`` a map draws (``clusters``,
  ``candidate_links``, ``confirm``, ``hotspots``), with their geometry;
- :func:`read_cause_tables`: the tables a report shows — the clusters (``sources.gpkg``
  layer ``clusters``, else ``clusters.csv``), the ranked candidates (``candidates.csv``),
  the confirmation samples (``sources.gpkg`` layer ``confirm``) and the factor profiles
  (``factors.csv``, shown as written: its schema is not fixed yet).

A file that is not what ``farmland sources`` writes is refused in one line naming the
file and the missing layer or column (:class:`farmland.errors.InputError`). Ids stay text.

:func:`farmland.sources.confirm.cause_keys` (re-exported here) is the one rule, shared by
``farmland sources``' summary, the map and the report, that names a cluster's cause: the
type of its top candidate, or "unexplained" below
:data:`farmland.sources.confirm.UNEXPLAINED_BELOW`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from farmland.errors import InputError
from farmland.io.values import parse_boolean
from farmland.runs.folder import SOURCE_CANDIDATES, SOURCE_CLUSTERS, SOURCE_FACTORS, SOURCES_GPKG
from farmland.sources.confirm import UNEXPLAINED_BELOW, cause_keys

__all__ = ["CAUSE_LAYERS", "LAYER_COLUMNS", "UNEXPLAINED_BELOW", "SourceTables", "cause_keys",
           "read_cause_layers", "read_cause_tables", "sources_gpkg"]

log = logging.getLogger(__name__)

#: the layers of sources.gpkg a map draws, bottom to top
CAUSE_LAYERS = ("clusters", "candidate_links", "hotspots", "confirm")
#: columns each layer (or table) must have to be drawn or shown
LAYER_COLUMNS: dict[str, tuple[str, ...]] = {
    "clusters": ("cluster_id", "area_mu", "top_candidate_type", "top_score"),
    "candidate_links": ("cluster_id", "candidate_id", "rank"),
    "confirm": ("point_id", "cluster_id", "mode"),
    "hotspots": ("sample_id", "element", "hotspot"),
    "candidates": ("cluster_id", "rank", "candidate_id", "candidate_type", "score"),
}
#: layers 'farmland sources' writes only when they have rows (no significant hot spot: none)
OPTIONAL_LAYERS = frozenset({"hotspots"})
#: columns kept as text when a table is read from CSV
TEXT_COLUMNS = ("cluster_id", "candidate_id", "point_id", "parcel_id", "sample_id", "township",
                "other_townships", "parcel_ids", "sample_ids", "name", "river", "industry",
                "metals", "top_candidate_id", "dominant_elements", "driving_elements")
FIX = "give the sources.gpkg written by 'farmland sources', or its output folder"
NOT_SOURCES = "not the sources.gpkg of 'farmland sources'"


def sources_gpkg(path: str | os.PathLike[str]) -> Path:
    """``sources.gpkg`` of an output folder of ``farmland sources``, or ``path`` itself."""
    path = Path(path)
    return path / SOURCES_GPKG if path.is_dir() else path


def _layer_names(gpkg: Path) -> set[str]:
    try:
        return {str(name) for name, _ in pyogrio.list_layers(gpkg)}
    except (pyogrio.errors.DataSourceError, OSError):
        raise InputError(f"{NOT_SOURCES} (not a GeoPackage, or missing)", file=gpkg,
                         fix=FIX) from None


def check_columns(frame: pd.DataFrame, key: str, file: Path) -> pd.DataFrame:
    """Refuse, in one line, a layer or table without a column it is drawn from."""
    absent = [c for c in LAYER_COLUMNS[key] if c not in frame.columns]
    if absent:
        raise InputError(f"not the {key} of 'farmland sources' (no '{absent[0]}' column)",
                         file=file, column=absent[0],
                         value=", ".join(map(str, list(frame.columns)[:8])), fix=FIX)
    return frame


def read_cause_layers(path: str | os.PathLike[str], keys: tuple[str, ...] | list[str] | set[str]
                      ) -> dict[str, gpd.GeoDataFrame]:
    """The wanted layers of the ``sources.gpkg`` of ``farmland sources``.

    Parameters
    ----------
    path
        ``sources.gpkg``, or the output folder holding it.
    keys
        Layers wanted, among :data:`CAUSE_LAYERS` (others are ignored).

    Returns
    -------
    dict
        Layer → GeoDataFrame (its own CRS, the classification's metric CRS). A wanted
        ``hotspots`` layer that the file lacks is left out (``farmland sources`` writes it
        only when some sample is significant); it is logged.

    Raises
    ------
    InputError
        ``path`` is not a GeoPackage, has no ``clusters`` layer (it is then not a
        sources.gpkg), lacks another wanted layer, or a layer lacks a column of
        :data:`LAYER_COLUMNS`.
    """
    wanted = [k for k in CAUSE_LAYERS if k in set(keys)]
    if not wanted:
        return {}
    gpkg = sources_gpkg(path)
    names = _layer_names(gpkg)
    for key in ("clusters", *wanted):
        if key not in names and key not in OPTIONAL_LAYERS:
            raise InputError(f"{NOT_SOURCES} (no layer '{key}')", file=gpkg,
                             value=", ".join(sorted(names)[:8]), fix=FIX)
    frames = {}
    for key in wanted:
        if key not in names:
            log.info("%s has no %s layer (no significant result); not drawn", gpkg, key)
            continue
        frames[key] = check_columns(gpd.read_file(gpkg, layer=key), key, gpkg)
    return frames


@dataclass
class SourceTables:
    """The tables of one ``farmland sources`` output, as a report shows them."""

    clusters: pd.DataFrame
    candidates: pd.DataFrame | None
    #: one row per point and cluster (:func:`per_cluster`)
    confirm: pd.DataFrame | None
    factors: pd.DataFrame | None
    origin: Path


def read_cause_tables(path: str | os.PathLike[str], *, required: bool = True
                      ) -> SourceTables | None:
    """Clusters, candidates, confirmation samples and factors of ``farmland sources``.

    Parameters
    ----------
    path
        The output folder of ``farmland sources`` (for a report: the run folder), its
        ``sources.gpkg``, or its ``clusters.csv``.
    required
        Raise when there are no clusters; otherwise return ``None`` (a run folder without
        source outputs).

    Raises
    ------
    InputError
        No clusters where required, or a table that lacks a column it is shown from.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    gpkg = sources_gpkg(path)
    layers = _layer_names(gpkg) if gpkg.is_file() and gpkg.suffix.lower() == ".gpkg" else set()
    if gpkg.is_file() and gpkg.suffix.lower() == ".gpkg" and "clusters" not in layers:
        raise InputError(f"{NOT_SOURCES} (no layer 'clusters')", file=gpkg,
                         value=", ".join(sorted(layers)[:8]), fix=FIX)
    csv = path if path.is_file() and path.suffix.lower() == ".csv" else folder / SOURCE_CLUSTERS
    if "clusters" in layers:
        clusters, origin = _read_layer(gpkg, "clusters"), gpkg
    elif csv.is_file():
        clusters, origin = _read_csv(csv), csv
    elif required:
        raise InputError("no clusters of 'farmland sources' (sources.gpkg or clusters.csv)",
                         file=path, fix=FIX)
    else:
        return None
    check_columns(clusters, "clusters", origin)
    candidates = None
    if (folder / SOURCE_CANDIDATES).is_file():
        candidates = check_columns(_read_csv(folder / SOURCE_CANDIDATES), "candidates",
                                   folder / SOURCE_CANDIDATES)
    confirm = (per_cluster(check_columns(_read_layer(gpkg, "confirm"), "confirm", gpkg))
               if "confirm" in layers else None)
    factors = _read_csv(folder / SOURCE_FACTORS) if (folder / SOURCE_FACTORS).is_file() else None
    log.info("source clusters: %d from %s", len(clusters), origin)
    return SourceTables(clusters, candidates, confirm, factors, origin)


def per_cluster(confirm: pd.DataFrame) -> pd.DataFrame:
    """The confirmation samples with one row per point and cluster it serves: a point
    proposed for several clusters (``cluster_id`` "CL001,CL002", one place sampled once)
    is listed under each, so each cluster's sheet shows every point that tests it."""
    ids = confirm["cluster_id"].astype("string").str.split(",")
    out = confirm.assign(cluster_id=ids).explode("cluster_id", ignore_index=True)
    out["cluster_id"] = out["cluster_id"].str.strip()
    return out


def _read_layer(gpkg: Path, layer: str) -> pd.DataFrame:
    return pyogrio.read_dataframe(gpkg, layer=layer, read_geometry=False)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, encoding="utf-8-sig",
                            dtype={c: "str" for c in TEXT_COLUMNS}, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a table of 'farmland sources' ({type(exc).__name__})",
                         file=path, fix=FIX) from None
    if "downstream" in table:
        table["downstream"] = parse_boolean(table["downstream"]).array
    return table
