"""Incremental re-classification (类别动态调整, issue 19 item 2).

A dynamic adjustment adds a few hundred 加密 samples or a batch of crop results to a
county or province that has been classified before. A soil sample can only change the
parcels whose kriging neighbourhood (the ``k`` nearest samples of each cell) holds it,
so a run of the same job that reuses every variogram of the previous run recomputes
rules 1–3 (points, distance, interpolation) for those parcels only and takes every
other parcel's soil class, reason, shares and probabilities from the previous run's
``classification.gpkg``. The sample-level work (reading, screening, point classes,
cross-validation, the leave-one-out rule) is done in full, and so is the crop adjustment
itself (vectorised; its crop samples are assigned among all parcels and the rule counts
the years in all crop data). Rules 4–5 row by row (the crop rule appended to ``rule``,
QA flags, labels) run only for the recomputed parcels and those whose crop adjustment
(final class, crop count, exceedance) or unusable-sample flag differs from the previous
run's: any other parcel's output row is a function of its kept soil row and these, so
it is the previous run's row as stored. The result is the full run's, parcel for parcel,
in memory and in the files (tests/test_incremental.py, tests/test_incremental_rows.py).

Which parcels a change can reach. A sample is *changed* when it is new, gone, or
differs in its id, position, usability, point class, parcel or any interpolated value
(after the outlier screen); ``U`` are the unchanged ones. A cell ``x`` of a parcel with
bounding-box centre ``c`` and half-diagonal ``h`` keeps its estimate when its ``k``
nearest samples are unchanged in the old and the new set, i.e. both are its ``k``
nearest in ``U``. A changed sample ``s`` among them is within the ``k``-th neighbour
distance of ``x`` in ``U``, ``r_k(x) <= r_k(c) + h``, and ``|s - c| <= |s - x| + h``;
so the parcel is recomputed when some changed sample lies within ``r_k(c; U) + 2h`` of
``c``, with ``r_k`` taken per group of variables measured at the same samples (``k`` plus
the most samples one parcel holds under the point-evidence rule, whose kriging leaves a
parcel's own samples out, :func:`~farmland.classify.point_evidence.extra_neighbours`) and for
the evidence samples and the distance rule (``k = 1 … evidence_samples``) over all
usable samples. Whole evaluation units are recomputed when one of their parcels is.

When it applies (else the run is full, and the log says why): a workspace run with the
same parcels, townships, mapping, units file, rules, standard, interpolator, outlier
mode and software version (SHA-256 and manifest entries), whose variograms this run
reuses for every variable (:mod:`farmland.runs.variograms`), and whose
``classification.gpkg`` is still in its folder with the same parcels in the same order.
``farmland classify --full`` turns it off.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from scipy.spatial import cKDTree

from farmland.classify.parcels import (
    CLASS_COLUMNS,
    SAMPLE_FLAGS,
    apply_crop_adjustment,
    base_columns,
    crop_adjustment,
    finish_rows,
    output_order,
    parcel_columns,
    soil_classes,
    with_landuse,
)
from farmland.classify.point_evidence import extra_neighbours
from farmland.classify.units import evaluation_units
from farmland.geostats.anisotropy import kriging_space
from farmland.geostats.kriging import unique_locations
from farmland.geostats.surfaces import VARIABLES, SurfaceModels, interpolation_values
from farmland.geostats.variogram import VariogramModel
from farmland.io import read_cache
from farmland.rules import Rules
from farmland.runs.folder import classification_path, output_folder, read_manifest
from farmland.runs.workspace import Workspace
from farmland.runs.workspace_tables import PARCEL_COLUMNS, differing_rows

__all__ = ["Previous", "affected_parcels", "changed_samples", "previous_for", "reclassify"]

log = logging.getLogger(__name__)

#: soil-level columns a parcel keeps from the previous run when no change reaches it
SOIL_COLUMNS = ("n_samples", "soil_class", "rule", "driving_element", "share_1", "share_2",
                "share_3", "p_class_1", "p_class_2", "p_class_3", "class_confidence",
                "p_calibrated_1", "p_calibrated_2", "p_calibrated_3",
                "sample_ids", "qa_flags")
#: QA flags the crop adjustment and the finish add (recomputed for every parcel)
FINISH_FLAGS = frozenset({"crop_exceedance_on_class1", "unusable_samples_inside",
                          "suspect_value_inside"})
#: manifest entries that must match for a run to be the base of an incremental one
SAME_INPUTS = ("parcels", "townships", "mapping", "units")
SAME_PARAMETERS = ("crs", "input_crs", "interpolator", "units")


@dataclass(frozen=True)
class Previous:
    """The run an incremental run starts from."""

    run_id: str
    path: Path  # its classification.gpkg


def previous_for(identity: dict[str, Any], variograms: dict[str, Any],
                 workspace: str | Path | None) -> Previous | None:
    """The run this one can be computed incrementally from, or ``None`` (logged why).

    ``identity`` is this run's manifest without samples, crops and counts
    (:func:`farmland.runs.pipeline.run_identity`); ``variograms`` the refit rule's record.
    """
    run_id = variograms.get("previous_run")
    if workspace is None or not run_id:
        return None
    actions = {v: d.get("action") for v, d in (variograms.get("variables") or {}).items()}
    if not actions or any(a != "reused" for a in actions.values()):
        refit = sorted(v for v, a in actions.items() if a != "reused")
        log.info("full classification: the variograms of %s are not reused for %s",
                 run_id, ", ".join(refit) or "any variable")
        return None
    runs = Workspace(workspace).runs()
    hit = runs.loc[runs["run_id"] == run_id, "manifest"]
    if hit.empty:
        return None
    manifest = json.loads(hit.iloc[0])
    reason = _differs(manifest, identity)

    folder = output_folder(run_id, workspace)
    path = None if folder is None else classification_path(folder)
    if reason is None and (path is None or not path.is_file()):
        reason = f"its classification is not at {path or '(no folder recorded)'}"
    elif reason is None and read_manifest(path).get("created") != manifest.get("created"):
        reason = f"its folder {folder} holds another run's outputs now"
    if reason is not None:
        log.info("full classification: %s %s", run_id, reason)
        return None
    return Previous(str(run_id), path)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why the run of manifest ``old`` is not the same job as ``new`` (None: it is)."""
    for kind in SAME_INPUTS:
        a = [i.get("sha256") for i in (old.get("inputs") or {}).get(kind) or []]
        b = [i.get("sha256") for i in (new.get("inputs") or {}).get(kind) or []]
        if a != b:
            return f"had other {kind} input"
    if (old.get("rules") or {}).get("sha256") != new["rules"]["sha256"]:
        return "used other rules"
    if (old.get("standard") or {}).get("fingerprint") != new["standard"].get("fingerprint"):
        return "used another version of the standard"
    for key in SAME_PARAMETERS:
        if (old.get("parameters") or {}).get(key) != new["parameters"].get(key):
            return f"had another {key}"
    if (old.get("outliers") or {}).get("mode") != new["outliers"]["mode"]:
        return "screened outliers in another mode"
    if (old.get("software") or {}).get("version") != new["software"]["version"]:
        return "was made by another farmland version"
    return None


# --------------------------------------------------------------------------- changes


def sample_keys(samples: pd.DataFrame) -> pd.DataFrame:
    """What of a classified sample the parcel rules use, one comparable row per sample:
    id, position, usability, point class, parcel, driving element, interpolated values."""
    xy = shapely.get_coordinates(samples.geometry.values)
    usable = samples["usable"].astype(bool).to_numpy()
    keys = {"sample_id": samples["sample_id"].astype(str).to_numpy(),
            "x": xy[:, 0], "y": xy[:, 1], "usable": usable,
            "point_class": pd.to_numeric(samples["point_class"], errors="coerce"
                                         ).to_numpy(float, na_value=np.nan),
            "parcel_id": _text(samples.get("parcel_id")),
            "driving_element": _text(samples.get("driving_element"))}
    for v in VARIABLES:
        if v in samples:
            keys[v] = np.where(usable, interpolation_values(samples, v), np.nan)
    return pd.DataFrame(keys)


def _text(column: pd.Series | None) -> np.ndarray | None:
    if column is None:
        return None
    return column.astype(object).where(column.notna(), "").astype(str).to_numpy()


def changed_samples(old: pd.DataFrame, new: pd.DataFrame
                    ) -> tuple[np.ndarray, pd.DataFrame, dict[str, int]]:
    """Coordinates of the changed samples (old and new positions), the unchanged samples'
    keys, and counts ``added``, ``removed``, ``changed``.

    ``old`` and ``new`` are :func:`sample_keys` frames.
    """
    cols = [c for c in new.columns if c in old.columns]
    if set(cols) != set(new.columns) | set(old.columns):  # a variable came or went
        return np.vstack([old[["x", "y"]].to_numpy(), new[["x", "y"]].to_numpy()]), \
            new.iloc[:0], {"added": len(new), "removed": len(old), "changed": 0}
    h_old = pd.util.hash_pandas_object(old[cols], index=False).to_numpy()
    h_new = pd.util.hash_pandas_object(new[cols], index=False).to_numpy()
    same_new = np.isin(h_new, h_old)
    same_old = np.isin(h_old, h_new)
    ids_old, ids_new = set(old["sample_id"]), set(new["sample_id"])
    counts = {"added": len(ids_new - ids_old), "removed": len(ids_old - ids_new)}
    counts["changed"] = int((~same_new).sum()) - counts["added"]
    moved = np.vstack([old.loc[~same_old, ["x", "y"]].to_numpy(),
                       new.loc[~same_new, ["x", "y"]].to_numpy()])
    return moved, new.loc[same_new], counts


def affected_parcels(geoms: np.ndarray, changed_xy: np.ndarray, unchanged: pd.DataFrame, *,
                     k: int, k_evidence: int,
                     spaces: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """Boolean mask of the parcels a change can reach (module docstring).

    ``spaces``: variable → (ratio, azimuth) of its anisotropic variogram; its neighbours
    are searched in that kriging space (:mod:`farmland.geostats.anisotropy`), so its
    group's reach is computed there, with the parcels, the changes and the samples
    mapped into it (a linear map: a parcel's cells stay inside its mapped polygon).
    """
    groups = list(_neighbour_groups(unchanged, k, k_evidence, spaces or {}))
    hit = np.zeros(len(geoms), dtype=bool)
    for space in dict.fromkeys(g[2] for g in groups):
        mine = [(mask, kk) for mask, kk, sp in groups if sp == space]
        if space == (1.0, 0.0):
            hit |= _reach(geoms, changed_xy, unchanged, mine, _metres)
        else:
            hit |= _reach(shapely.transform(geoms, lambda c, s=space: kriging_space(c, *s)),
                          kriging_space(changed_xy, *space), unchanged, mine,
                          lambda xy, s=space: kriging_space(xy, *s))
    return hit


def _metres(xy: np.ndarray) -> np.ndarray:
    return xy


def _reach(geoms: np.ndarray, changed_xy: np.ndarray, unchanged: pd.DataFrame,
           groups: list[tuple[np.ndarray, int]], space) -> np.ndarray:
    """:func:`affected_parcels` for the ``groups`` of one space (``geoms`` and
    ``changed_xy`` in it; ``space`` maps the unchanged samples' metres into it).

    A parcel is reached when ``r_k(c) * (1 + 1e-9) >= slack`` (``slack``: its distance to
    the nearest changed sample less ``2h``) in some neighbour group. The samples in every
    group (``common``) are a subset of each, so their distance to the largest ``k`` of all
    groups bounds every group's ``r_k`` from above: one grid bound and one exact search
    over ``common`` clear the parcels no group reaches. Where no sample outside
    ``common`` is nearer than that distance, the groups of the largest ``k`` have it too
    and reach the parcel; each group's exact search runs only for the parcels left (none
    for a group whose locations are ``common``'s)."""
    n = len(geoms)
    if len(changed_xy) == 0 or n == 0:
        return np.zeros(n, dtype=bool)
    bounds = shapely.bounds(geoms)
    centre = (bounds[:, :2] + bounds[:, 2:]) / 2
    half = 0.5 * np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    near, _ = cKDTree(changed_xy).query(centre, k=1, workers=-1)
    slack = near - 2 * half  # a changed sample reaches the parcel if r_k >= slack
    hit = slack <= 0
    k_max = max(kk for _, kk in groups)
    in_all = np.logical_and.reduce([mask for mask, _ in groups])
    common = space(_locations(unchanged, in_all))
    rows = np.flatnonzero(~hit)
    if len(common) >= k_max:  # else every group is searched for every row
        tree = cKDTree(common)
        rows = rows[slack[rows] <= _kth_distance_bound(tree, k_max, centre[rows])]
        dist = tree.query(centre[rows], k=[k_max], workers=-1)[0][:, 0] * (1 + 1e-9)
        rows, dist = rows[dist >= slack[rows]], dist[dist >= slack[rows]]
        # no sample outside common within that distance: a group of the largest k has
        # common's r_k there, so reaches the parcel
        extra = space(_locations(unchanged,
                                 np.logical_or.reduce([m for m, _ in groups]) & ~in_all))
        alone = (cKDTree(extra).query(centre[rows], k=1, workers=-1)[0] > dist
                 if len(extra) else np.ones(len(rows), dtype=bool))
        hit[rows[alone]] = True
        rows = rows[~alone]
    for mask, kk in groups:
        rows = rows[~hit[rows]]
        if not len(rows):
            break
        xy = space(_locations(unchanged, mask))
        if len(xy) < kk:  # fewer unchanged samples than a neighbourhood: all reachable
            hit[rows] = True
            break
        if kk == k_max and np.array_equal(xy, common):  # its search was common's
            hit[rows] = True
            continue
        dist, _ = cKDTree(xy).query(centre[rows], k=[kk], workers=-1)
        hit[rows] |= dist[:, 0] * (1 + 1e-9) >= slack[rows]
    return hit


def _locations(unchanged: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """The distinct locations of the ``mask`` samples, sorted by x, then y."""
    return unique_locations(unchanged.loc[mask, ["x", "y"]].to_numpy())[0]


def _kth_distance_bound(tree: cKDTree, k: int, points: np.ndarray) -> np.ndarray:
    """An upper bound of the distance from each point to its k-th nearest sample, from a
    coarse grid (about one node per 4 samples): r_k(p) <= |p - g| + r_k(g) for the grid
    node g nearest p. Points farther from every change than this bound need no exact
    search (most of a province)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    step = max(float(np.sqrt(max(np.prod(hi - lo), 1.0) / max(tree.n / 4, 1))), 1.0)
    shape = np.floor((hi - lo) / step).astype(int) + 1
    gx, gy = np.meshgrid(lo[0] + step * np.arange(shape[0]), lo[1] + step * np.arange(shape[1]),
                         indexing="ij")
    nodes = np.column_stack([gx.ravel(), gy.ravel()])
    node_r = tree.query(nodes, k=[k], workers=-1)[0][:, 0]
    cell = np.clip(np.rint((points - lo) / step).astype(int), 0, shape - 1)
    index = cell[:, 0] * shape[1] + cell[:, 1]
    return (np.hypot(*(points - nodes[index]).T) + node_r[index]) * (1 + 1e-9)


def _neighbour_groups(unchanged: pd.DataFrame, k: int, k_evidence: int,
                      spaces: dict[str, tuple[float, float]]):
    """(sample mask, neighbour count, space): one per distinct set of samples a variable is
    interpolated from (k) in its kriging space ((ratio, azimuth); (1, 0): metres), then the
    usable samples (evidence list, distance rule; metres)."""
    seen: set[tuple] = set()
    for v in VARIABLES:
        if v not in unchanged:
            continue
        mask = np.isfinite(unchanged[v].to_numpy(float))
        space = tuple(float(x) for x in spaces.get(v, (1.0, 0.0)))
        key = (np.packbits(mask).tobytes(), space)
        if key not in seen:
            seen.add(key)
            yield mask, int(k), space
    yield unchanged["usable"].to_numpy(bool), max(int(k_evidence), 1), (1.0, 0.0)


# --------------------------------------------------------------------------- the run


def reclassify(previous: Previous, parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
               crops: gpd.GeoDataFrame | None, rules: Rules, surfaces: SurfaceModels,
               standard, units=None
               ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, dict[str, Any], Patch] | None:
    """Classify ``parcels`` from ``previous`` and the parcels the changed samples reach.

    ``samples`` are this run's classified samples. Every parcel starts as the previous
    run's output row; rules 1–3 run for the parcels a change reaches, and rules 4–5 (crop
    adjustment, QA flags, labels: row by row) for those and for the parcels whose crop
    adjustment or unusable-sample flag differs from the previous run's (the crop
    adjustment itself, a vectorised step whose crop samples are assigned among all
    parcels, runs for every parcel). Returns the classified parcels, the graded crops, the
    manifest record and how to write the classification file and the workspace rows from
    the previous run's (:class:`Patch`), or ``None`` when the previous run's parcels are
    not these parcels in this order (the caller then runs in full).
    """
    parcels = with_landuse(parcels)
    stored = _previous_columns(previous.path, parcels)
    if stored is None:
        log.info("full classification: the parcels of %s are not these parcels in this "
                 "order", previous.run_id)
        return None
    old = read_cache.read_dataframe(previous.path, layer="samples")  # as the refit rule
    moved, unchanged, counts = changed_samples(sample_keys(old), sample_keys(samples))
    unit_ids = evaluation_units(parcels, units)
    extra = extra_neighbours(samples, rules) if unit_ids is None else 0  # units: county rule
    spaces = {v: (m.ratio, m.azimuth) for v, m in surfaces.models.items()
              if isinstance(m, VariogramModel) and m.ratio != 1.0}
    reach = affected_parcels(parcels.geometry.values, moved, unchanged, k=surfaces.k + extra,
                             k_evidence=rules.get("interpolation", "evidence_samples"),
                             spaces=spaces)
    if unit_ids is not None:
        ids = pd.Series(unit_ids.to_numpy())
        reach |= ids.isin(set(ids[reach])).to_numpy()
    rows = np.flatnonzero(reach)
    sub = (soil_classes(parcels.iloc[rows], samples, rules=rules, interpolator=surfaces,
                        standard=standard, units=unit_ids) if len(rows) else None)
    out = _as_previous(parcels, stored, unit_ids)
    soil = out["soil_class"].array.copy()
    if sub is not None:
        soil[rows] = sub["soil_class"].array
    adjusted, graded = crop_adjustment(out.assign(soil_class=soil), crops, rules=rules,
                                       standard=standard)
    redo = np.flatnonzero(reach | _finish_changes(out, adjusted, samples))
    new = _soil_rows(parcels.iloc[redo], out.iloc[redo], sub, np.searchsorted(rows, redo),
                     reach[redo])
    apply_crop_adjustment(new, adjusted.iloc[redo].set_axis(new.index))
    new = finish_rows(new, samples)
    columns = list(CLASS_COLUMNS)
    before = out.iloc[redo]
    patch = Patch(previous.path, redo[differing_rows(new, before, columns)], previous.run_id,
                  redo[differing_rows(new, before, [c for c in PARCEL_COLUMNS
                                                    if c in CLASS_COLUMNS])])
    for col in columns:
        values = out[col].array.copy()
        values[redo] = new[col].array
        out[col] = pd.Series(values, index=out.index, dtype=out[col].dtype)
    out.attrs["interpolator"] = surfaces.describe()
    record = {"from": previous.run_id, "samples": counts, "parcels_recomputed": len(rows),
              "parcels_kept": len(out) - len(rows)}
    log.info("incremental: %d added, %d removed, %d changed sample(s) since %s reach %d of "
             "%d parcels; the other %d keep their soil class from %s (crop adjustment and "
             "flags redone for %d)", counts["added"], counts["removed"], counts["changed"],
             previous.run_id, len(rows), len(out), len(out) - len(rows), previous.run_id,
             len(redo))
    return out, graded, record, patch


def _previous_columns(path: Path, parcels: gpd.GeoDataFrame) -> pd.DataFrame | None:
    """The previous run's computed parcel columns as stored (:data:`CLASS_COLUMNS`), or
    ``None`` if it does not have them all or not the same parcels in the same order."""
    try:
        fields = set(pyogrio.read_info(path, layer="parcels")["fields"])
        if set(CLASS_COLUMNS) - fields:
            return None
        stored = pyogrio.read_dataframe(path, layer="parcels", read_geometry=False,
                                        columns=["parcel_id", *CLASS_COLUMNS], use_arrow=True)
    except Exception as exc:  # noqa: BLE001 - unreadable: the run is full, not failed
        log.info("the previous classification %s cannot be read (%s)", path, exc)
        return None
    if len(stored) != len(parcels):
        return None
    # compared as Arrow strings where both are (a missing id equals nothing)
    same = stored["parcel_id"].astype(str).array == parcels["parcel_id"].astype(str).array
    return stored if bool(pd.Series(same).fillna(False).all()) else None


def _as_previous(parcels: gpd.GeoDataFrame, stored: pd.DataFrame, unit_ids
                 ) -> gpd.GeoDataFrame:
    """Every parcel as the previous run classified it: the parcels' own columns and the
    stored computed ones, in a full run's columns, order and types."""
    out = parcel_columns(parcels)
    if unit_ids is not None:
        out["unit_id"] = unit_ids.to_numpy()
    for col in CLASS_COLUMNS:
        values = stored[col]
        if col in ("soil_class", "final_class"):
            values = pd.array(values.to_numpy(float, na_value=np.nan), dtype="Int8")
        elif col == "driving_element":
            values = values.astype(object).where(values.notna(), None).to_numpy()
        elif col in ("n_samples", "n_crops"):
            values = values.to_numpy("int64")
        elif col == "crop_exceedance":
            values = values.to_numpy(bool)
        elif col.startswith(("share_", "p_", "class_confidence")):
            values = values.to_numpy(float, na_value=np.nan)
        else:  # text
            values = pd.array(values.fillna("") if col == "sample_ids" else values, dtype="str")
        # a Series: an object array set as a column would become text
        out[col] = pd.Series(values, index=out.index,
                             dtype=object if col == "driving_element" else None)
    return out[output_order(unit_ids is not None)]


def _finish_changes(out: gpd.GeoDataFrame, adjusted: pd.DataFrame,
                    samples: pd.DataFrame) -> np.ndarray:
    """Parcels whose rules 4–5 may give another row than the previous run's although their
    soil class is kept: another crop adjustment (final class, crop count or exceedance;
    the crop rule follows from the soil and final class) or an unusable sample or a suspect
    value come or gone. A parcel with neither keeps its whole previous row."""
    differs = differing_rows(adjusted, out, ["final_class", "n_crops", "crop_exceedance"],
                             mask=True)
    flags = (";" + out["qa_flags"].astype(object).fillna("").astype(str) + ";")
    for flag, parcels_of in SAMPLE_FLAGS:
        had = flags.str.contains(f";{flag};", regex=False).to_numpy(bool)
        differs = differs | (had != out["parcel_id"].isin(parcels_of(samples)).to_numpy())
    return differs


def _soil_rows(parcels: gpd.GeoDataFrame, previous: gpd.GeoDataFrame, sub, at: np.ndarray,
               reached: np.ndarray) -> gpd.GeoDataFrame:
    """Rules 1–3's frame (:func:`~farmland.classify.parcels.soil_classes`) of ``parcels``:
    the ``reached`` ones' from ``sub`` (row ``at``), the others' from their ``previous``
    output rows without what rules 4–5 add."""
    out = base_columns(parcels)
    if "unit_id" in previous:
        out["unit_id"] = previous["unit_id"].to_numpy()
    kept = previous.copy()
    kept["rule"] = kept["rule"].astype(str).str.split(";", n=1).str[0]
    kept["qa_flags"] = [[f for f in text.split(";") if f not in FINISH_FLAGS] if text else []
                        for text in kept["qa_flags"].astype(str).to_numpy(object)]
    for col in SOIL_COLUMNS:
        how = ({"dtype": float, "na_value": np.nan} if col == "soil_class" else
               {"dtype": out[col].dtype if out[col].dtype.kind in "fi" else object})
        values = kept[col].to_numpy(copy=True, **how)
        if sub is not None and reached.any():
            values[reached] = sub[col].to_numpy(**how)[at[reached]]
        out[col] = pd.array(values, dtype="Int8") if col == "soil_class" else \
            pd.Series(values, index=out.index).astype(out[col].dtype)
    return out


@dataclass(frozen=True)
class Patch:
    """How this run's outputs can be written from the previous run's (``run_id``): its
    ``classification.gpkg`` at ``path`` copied with the parcel ``rows`` (positions) whose
    computed columns differ rewritten, or every row when ``rows`` is ``None``
    (:mod:`farmland.runs.gpkg_patch`); in a workspace, the parcels stored as differences
    from that run are ``workspace_rows``, the rows whose kept columns differ
    (:meth:`farmland.runs.workspace.Workspace.add_run`)."""

    path: Path
    rows: np.ndarray | None
    run_id: str = ""
    workspace_rows: np.ndarray | None = None
