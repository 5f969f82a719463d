"""Incremental re-classification (类别动态调整, issue 19 item 2).

A dynamic adjustment adds a few hundred 加密 samples or a batch of crop results to a
county or province that has been classified before. A soil sample can only change the
parcels whose kriging neighbourhood (the ``k`` nearest samples of each cell) holds it,
so a run of the same job that reuses every variogram of the previous run recomputes
rules 1–3 (points, distance, interpolation) for those parcels only and takes every
other parcel's soil class, reason, shares and probabilities from the previous run's
``classification.gpkg``. The sample-level work (reading, screening, point classes,
cross-validation, the leave-one-out rule) and the crop adjustment and QA flags of every
parcel (cheap, and the crop rules depend on the crop data as a whole) are done in full.
The result is the full run's, parcel for parcel (tests/test_incremental.py).

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

from farmland.classify.parcels import base_columns, finish_classes, soil_classes, with_landuse
from farmland.classify.point_evidence import extra_neighbours
from farmland.classify.units import evaluation_units
from farmland.geostats.surfaces import VARIABLES, SurfaceModels, interpolation_values
from farmland.rules import Rules
from farmland.runs.folder import classification_path, output_folder, read_manifest
from farmland.runs.workspace import Workspace

__all__ = ["Previous", "affected_parcels", "changed_samples", "previous_for", "reclassify"]

log = logging.getLogger(__name__)

#: soil-level columns a parcel keeps from the previous run when no change reaches it
SOIL_COLUMNS = ("n_samples", "soil_class", "rule", "driving_element", "share_1", "share_2",
                "share_3", "p_class_1", "p_class_2", "p_class_3", "class_confidence",
                "p_calibrated_1", "p_calibrated_2", "p_calibrated_3",
                "sample_ids", "qa_flags")
#: columns the crop adjustment and the finish compute (compared for the patched file)
FINISH_COLUMNS = ("final_class", "class_label_zh", "class_label_en", "n_crops",
                  "crop_exceedance")
#: QA flags the crop adjustment and the finish add (recomputed for every parcel)
FINISH_FLAGS = frozenset({"crop_exceedance_on_class1", "unusable_samples_inside"})
#: manifest entries that must match for a run to be the base of an incremental one
SAME_INPUTS = ("parcels", "townships", "mapping", "units")
#: parcel columns taken from the parcels input alone (the same job: the same values)
BASE_COLUMNS = ("parcel_id", "township", "township_code", "village", "dlbm", "landuse",
                "area_m2", "area_mu", "area_hm2", "unit_id")
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
                     k: int, k_evidence: int) -> np.ndarray:
    """Boolean mask of the parcels a change can reach (module docstring)."""
    n = len(geoms)
    if len(changed_xy) == 0 or n == 0:
        return np.zeros(n, dtype=bool)
    bounds = shapely.bounds(geoms)
    centre = (bounds[:, :2] + bounds[:, 2:]) / 2
    half = 0.5 * np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    near, _ = cKDTree(changed_xy).query(centre, k=1, workers=-1)
    slack = near - 2 * half  # a changed sample reaches the parcel if r_k >= slack
    todo = slack > 0
    hit = ~todo
    for mask, kk in _neighbour_groups(unchanged, k, k_evidence):
        rows = np.flatnonzero(todo & ~hit)
        if not len(rows):
            break
        xy = np.unique(unchanged.loc[mask, ["x", "y"]].to_numpy(), axis=0)
        if len(xy) < kk:  # fewer unchanged samples than a neighbourhood: all reachable
            hit[rows] = True
            break
        tree = cKDTree(xy)
        rows = rows[slack[rows] <= _kth_distance_bound(tree, kk, centre[rows])]
        dist, _ = tree.query(centre[rows], k=[kk], workers=-1)
        hit[rows] |= dist[:, 0] * (1 + 1e-9) >= slack[rows]
    return hit


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


def _neighbour_groups(unchanged: pd.DataFrame, k: int, k_evidence: int):
    """(sample mask, neighbour count): one per distinct set of samples a variable is
    interpolated from (k), and the usable samples (evidence list, distance rule)."""
    seen: set[bytes] = set()
    usable = unchanged["usable"].to_numpy(bool)
    yield usable, max(int(k_evidence), 1)
    for v in VARIABLES:
        if v not in unchanged:
            continue
        mask = np.isfinite(unchanged[v].to_numpy(float))
        key = np.packbits(mask).tobytes()
        if key not in seen:
            seen.add(key)
            yield mask, int(k)


# --------------------------------------------------------------------------- the run


def reclassify(previous: Previous, parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
               crops: gpd.GeoDataFrame | None, rules: Rules, surfaces: SurfaceModels,
               standard, units=None
               ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, dict[str, Any], Patch] | None:
    """Classify ``parcels`` from ``previous`` and the parcels the changed samples reach.

    ``samples`` are this run's classified samples. Returns the classified parcels, the
    graded crops, the manifest record and how to write the classification file from the
    previous one (:class:`Patch`), or ``None`` when the previous run's parcels are not
    these parcels in this order (the caller then runs in full).
    """
    parcels = with_landuse(parcels)
    kept, raw = _previous_parcels(previous.path, parcels)
    if kept is None:
        log.info("full classification: the parcels of %s are not these parcels in this "
                 "order", previous.run_id)
        return None
    old = pyogrio.read_dataframe(previous.path, layer="samples")
    moved, unchanged, counts = changed_samples(sample_keys(old), sample_keys(samples))
    geoms = parcels.geometry.values
    unit_ids = evaluation_units(parcels, units)
    extra = extra_neighbours(samples, rules) if unit_ids is None else 0  # units: county rule
    reach = affected_parcels(geoms, moved, unchanged, k=surfaces.k + extra,
                             k_evidence=rules.get("interpolation", "evidence_samples"))
    out = base_columns(parcels)
    if unit_ids is not None:
        out["unit_id"] = unit_ids.to_numpy()
        reach |= out["unit_id"].isin(set(out.loc[reach, "unit_id"])).to_numpy()
    rows = np.flatnonzero(reach)
    sub = (soil_classes(parcels.iloc[rows], samples, rules=rules, interpolator=surfaces,
                        standard=standard, units=unit_ids) if len(rows) else None)
    for col in SOIL_COLUMNS:
        how = ({"dtype": float, "na_value": np.nan} if col == "soil_class" else
               {"dtype": out[col].dtype if out[col].dtype.kind in "fi" else object})
        values = kept[col].to_numpy(copy=True, **how)
        if sub is not None:
            values[rows] = sub[col].to_numpy(**how)
        out[col] = pd.array(values, dtype="Int8") if col == "soil_class" else \
            pd.Series(values, index=out.index).astype(out[col].dtype)
    out.attrs["interpolator"] = surfaces.describe()
    out, graded = finish_classes(out, samples, crops=crops, rules=rules, standard=standard)
    patch = Patch(previous.path, _differing_rows(out, raw))
    record = {"from": previous.run_id, "samples": counts, "parcels_recomputed": len(rows),
              "parcels_kept": len(out) - len(rows)}
    log.info("incremental: %d added, %d removed, %d changed sample(s) since %s reach %d of "
             "%d parcels; the other %d keep their soil class from %s", counts["added"],
             counts["removed"], counts["changed"], previous.run_id, len(rows), len(out),
             len(out) - len(rows), previous.run_id)
    return out, graded, record, patch


def _previous_parcels(path: Path, parcels: gpd.GeoDataFrame
                      ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The previous run's soil-level parcel columns (rule and QA flags without what the crop
    adjustment and the finish add), aligned with ``parcels``, and its computed columns as
    stored; ``(None, None)`` if not the same parcels in the same order."""
    try:
        fields = set(pyogrio.read_info(path, layer="parcels")["fields"])
        columns = [c for c in ("parcel_id", *SOIL_COLUMNS, *FINISH_COLUMNS) if c in fields]
        kept = pyogrio.read_dataframe(path, layer="parcels", read_geometry=False,
                                      columns=columns, use_arrow=True)
    except Exception as exc:  # noqa: BLE001 - unreadable: the run is full, not failed
        log.info("the previous classification %s cannot be read (%s)", path, exc)
        return None, None
    ids = parcels["parcel_id"].astype(str).to_numpy()
    if len(kept) != len(ids) or not np.array_equal(kept["parcel_id"].astype(str).to_numpy(),
                                                    ids) or set(SOIL_COLUMNS) - fields:
        return None, None
    raw = kept.drop(columns="parcel_id").copy()
    kept["rule"] = kept["rule"].astype(str).str.split(";", n=1).str[0]
    kept["qa_flags"] = [[f for f in text.split(";") if f not in FINISH_FLAGS]
                        if isinstance(text, str) and text else []
                        for text in kept["qa_flags"].to_numpy(object)]
    driver = kept["driving_element"].astype(object)
    kept["driving_element"] = driver.where(driver.notna(), None)
    kept["sample_ids"] = kept["sample_ids"].astype(object).where(kept["sample_ids"].notna(), "")
    return kept, raw


@dataclass(frozen=True)
class Patch:
    """How this run's ``classification.gpkg`` can be written from the previous run's: copy
    ``path`` and rewrite the parcel ``rows`` (positions) whose computed columns differ, or
    every row when ``rows`` is ``None`` (:mod:`farmland.runs.gpkg_patch`)."""

    path: Path
    rows: np.ndarray | None


def _differing_rows(out: pd.DataFrame, raw: pd.DataFrame) -> np.ndarray | None:
    """Positions of the parcels whose computed columns differ from the previous run's as
    stored (``None``: a computed column the previous file lacks; compare all)."""
    computed = [c for c in out.columns if c not in BASE_COLUMNS and c != out.geometry.name]
    if set(computed) != set(raw.columns):
        return None
    differs = np.zeros(len(out), dtype=bool)
    for col in computed:
        new, old = out[col], raw[col]
        if new.dtype.kind in "biuf":  # numpy and nullable (Int8, boolean) numbers alike
            a = pd.to_numeric(new, errors="coerce").to_numpy(float, na_value=np.nan)
            b = pd.to_numeric(old, errors="coerce").to_numpy(float, na_value=np.nan)
            differs |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
        else:
            a, b = new.astype(object), old.astype(object)
            both_na = (a.isna() & b.isna()).to_numpy(bool)
            differs |= ~((a.to_numpy() == b.to_numpy()) | both_na)
    return np.flatnonzero(differs)
