"""Parcels into the three classes, with the reason for each (domain.md §3).

Order of the rules, each recorded in the ``rule`` column:

1. ``points:strict_override`` / ``points:majority`` — parcels holding usable soil
   samples: any class-3 point makes the parcel class 3; otherwise the most frequent
   point class, ties to the stricter. With evaluation units (``units=``,
   :mod:`farmland.classify.units`) the rule takes the samples of the whole unit and
   every parcel of the unit gets the unit's class. With ``[points] rule = "evidence"``
   (shipped) the majority is re-judged after rule 2: the own values weighed against the
   kriged neighbourhood, ``points:evidence`` where that changes the class
   (:mod:`farmland.classify.point_evidence`).
2. ``interpolated:area_majority`` — parcels without samples but within the distance
   limit of one: the class covering the largest share of the parcel on the
   interpolated surfaces (ties to the stricter); ``share_1..3`` kept.
3. ``unclassified:too_far`` / ``unclassified:no_usable_samples`` — class <NA>,
   never counted as class 1.
4. Crop adjustment (``;crops:2->1``, ``;crops:3->2``) gives ``final_class``.
5. Quality checks add ``qa_flags``; they never change a class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from farmland import classes as C
from farmland.classify.crops import adjust_classes, assign_crops, grade_crops, unit_statistics
from farmland.classify.interpolated import interpolated_classes
from farmland.classify.point_evidence import apply_point_evidence
from farmland.classify.reach import farther_than
from farmland.classify.risk import CellRule
from farmland.classify.samples import classify_samples
from farmland.classify.unit_tables import class_counts, joined_per_unit
from farmland.classify.units import UnitsArg, evaluation_units
from farmland.geostats.surfaces import SurfaceModels, fit_surface_models, interpolation_inputs
from farmland.rules import Rules, load_rules
from farmland.standards import landuse_from_dlbm, load_standard

log = logging.getLogger(__name__)


def classify_parcels(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    *,
    crops: gpd.GeoDataFrame | None = None,
    rules: Rules | None = None,
    interpolator: str | Callable[[str], object] | None = None,
    standard=None,
    units: UnitsArg = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """Classify every parcel and say why.

    Parameters
    ----------
    parcels
        Canonical parcels (docs/schema.md) in a metric CRS.
    samples
        Canonical soil samples in the same CRS, raw or already passed through
        :func:`farmland.classify.samples.classify_samples`.
    crops
        Canonical crop samples (optional) for the crop adjustment.
    rules
        Rule profile; default the shipped county practice.
    interpolator
        ``"kriging"`` (default from the rules), ``"idw"``, fitted
        :class:`~farmland.geostats.surfaces.SurfaceModels`, or any factory
        ``variable -> estimator`` with ``fit``/``predict`` (verde style).
    standard
        Loaded standard; default GB 15618-2018 / GB 2762 as shipped.
    units
        Evaluation units (评价单元) of the point rules, the QA shares and the crop
        adjustment: ``None``/``"parcel"`` (each parcel alone), ``"village"`` (village ×
        land use), ``"township"`` (township × land use), a units file or frame, or unit
        ids per parcel (see :func:`farmland.classify.units.evaluation_units`). The crop
        adjustment follows them unless the rules name their own ``[crops] unit`` column.

    Returns
    -------
    parcels, samples, crops
        New frames in the classification output schema (docs/schema.md): the
        classified parcels, the classified samples and the graded crops (or None).
        With units other than the parcel, the parcels carry ``unit_id``.
    """
    std = standard or load_standard()
    rules = rules or load_rules()
    if parcels.crs is None or not parcels.crs.is_projected:
        raise ValueError("parcels must be in a projected (metric) CRS: read them with "
                         "farmland.read_parcels, which derives the CGCS2000 GK zone")
    parcels = with_landuse(parcels)
    if "point_class" not in samples:
        samples = classify_samples(samples, parcels=parcels, standard=std, rules=rules)
    out = soil_classes(parcels, samples, rules=rules, interpolator=interpolator, standard=std,
                       units=units)
    out, graded = finish_classes(out, samples, crops=crops, rules=rules, standard=std)
    return out, samples, graded


def soil_classes(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *, rules: Rules,
                 interpolator, standard, units: UnitsArg = None) -> gpd.GeoDataFrame:
    """Rules 1–3 (points, distance, interpolation): the soil class of every parcel before
    the crop adjustment, ``qa_flags`` still lists (:func:`finish_classes` completes them).

    ``parcels`` with land use, ``samples`` classified (:func:`classify_samples`). The
    incremental re-classification (:mod:`farmland.runs.incremental`) runs this on the
    parcels a change can reach and :func:`finish_classes` on all of them.
    """
    out = base_columns(parcels)
    unit_ids = evaluation_units(parcels, units)
    if unit_ids is not None:
        out["unit_id"] = unit_ids.to_numpy()
    usable = samples[samples["usable"]]
    _apply_point_rule(out, usable, rules)
    _apply_distance_rule(out, usable, rules)
    models = _apply_interpolation(out, usable, standard, rules, interpolator)
    apply_point_evidence(out, usable, standard, rules, models)
    return out


def with_landuse(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``parcels`` with ``landuse`` derived from ``dlbm`` when the frame has codes but no
    land use (a frame built by hand rather than read by :func:`farmland.read_parcels`)."""
    if "landuse" in parcels or "dlbm" not in parcels:
        return parcels
    codes = parcels["dlbm"]
    landuse = codes.map({c: landuse_from_dlbm(c) for c in pd.unique(codes.dropna())})
    log.info("parcels have no 'landuse' column: derived it from 'dlbm' (三调 DLBM codes)")
    return parcels.assign(landuse=landuse.fillna("unknown").astype(str))


def parcel_columns(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The columns of the output taken from the parcels alone: ids, names, land use, areas
    and the geometry."""
    keep = ["parcel_id", "township", "township_code", "village", "dlbm", "landuse"]
    out = gpd.GeoDataFrame({c: parcels.get(c, None) for c in keep},
                           geometry=parcels.geometry.values, crs=parcels.crs, index=parcels.index)
    out["landuse"] = out["landuse"].fillna("unknown")
    out["area_m2"] = np.round(out.geometry.area, 2)
    net = (pd.to_numeric(parcels["net_area_m2"], errors="coerce") if "net_area_m2" in parcels
           else pd.Series(np.nan, index=parcels.index))
    area = net.where(net.notna(), out["area_m2"]).astype(float)
    out["area_mu"] = np.round(area * C.MU_PER_M2, 4)
    out["area_hm2"] = np.round(area * C.HM2_PER_M2, 6)
    return out


def base_columns(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """:func:`parcel_columns` and the soil-level columns at their defaults (no class)."""
    out = parcel_columns(parcels)
    out["n_samples"] = 0
    out["soil_class"] = pd.array([pd.NA] * len(out), dtype="Int8")
    out["rule"] = ""
    out["driving_element"] = None
    for col in ("share_1", "share_2", "share_3", "p_class_1", "p_class_2", "p_class_3",
                "class_confidence", "p_calibrated_1", "p_calibrated_2", "p_calibrated_3"):
        out[col] = np.nan
    out["sample_ids"] = ""
    out["qa_flags"] = [[] for _ in range(len(out))]
    return out


def _apply_point_rule(out: gpd.GeoDataFrame, usable: pd.DataFrame, rules: Rules) -> None:
    """Rule 1: parcels (or evaluation units, ``out["unit_id"]``) holding usable soil
    samples; every parcel of a unit gets the unit's class, count, samples and flags."""
    inside, key_of = _by_unit(out, usable.dropna(subset=["parcel_id"]))
    # only the units of these parcels: every statistic below is per unit, and a subset of
    # the parcels (the incremental run's) then costs its own samples, not the province's
    inside = inside[inside["_unit"].isin(key_of.to_numpy()).to_numpy()]
    if inside.empty:
        return
    pc = inside["point_class"].astype(int)
    counts = class_counts(inside["_unit"], pc)
    strict = rules.get("points", "strict_override") & (counts[3] > 0)
    # ties to the stricter: argmax over classes scanned from 3 down
    majority = 3 - np.argmax(counts[[3, 2, 1]].to_numpy(), axis=1)
    cls = np.where(strict, 3, majority)
    stats = pd.DataFrame({"cls": cls, "rule": np.where(strict, "points:strict_override",
                                                       "points:majority"),
                          "n": counts.sum(axis=1).to_numpy()}, index=counts.index)
    own = inside.assign(pc=pc.to_numpy()).merge(stats[["cls"]], left_on="_unit",
                                                right_index=True)
    own_share = (own["pc"] == own["cls"]).groupby(own["_unit"]).mean()
    drivers = _most_frequent(own[own["pc"] == own["cls"]].dropna(subset=["driving_element"]),
                             "driving_element")
    by_id = inside.sort_values("sample_id")
    ids = joined_per_unit(by_id["_unit"], by_id["sample_id"].astype(str))
    has_2 = (pc == 2).groupby(inside["_unit"]).any()
    pos = key_of.isin(stats.index).to_numpy()
    key = key_of[pos]
    out.loc[pos, "soil_class"] = stats["cls"].reindex(key).to_numpy()
    out.loc[pos, "rule"] = stats["rule"].reindex(key).to_numpy()
    out.loc[pos, "n_samples"] = stats["n"].reindex(key).to_numpy()
    out.loc[pos, "driving_element"] = drivers.reindex(key).to_numpy()
    out.loc[pos, "sample_ids"] = ids.reindex(key).to_numpy()
    _qa_points(out, pos, key, stats, own_share, has_2, rules)


def _by_unit(out: gpd.GeoDataFrame, inside: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The samples with ``_unit``, the evaluation unit of their parcel (the parcel id when
    each parcel is its own unit), and the unit of every parcel."""
    if "unit_id" not in out:
        return inside.assign(_unit=inside["parcel_id"]), out["parcel_id"]
    first = out.drop_duplicates("parcel_id")
    unit = inside["parcel_id"].map(pd.Series(first["unit_id"].to_numpy(),
                                             index=first["parcel_id"].to_numpy()))
    return inside.assign(_unit=unit.to_numpy()).dropna(subset=["_unit"]), out["unit_id"]


def _most_frequent(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per unit (``_unit``) the most frequent value of ``column``; ties to the
    alphabetically first."""
    counts = frame.groupby(["_unit", column]).size().rename("n").reset_index()
    counts = counts.sort_values(["_unit", "n", column], ascending=[True, False, True])
    first = counts.drop_duplicates("_unit")
    return pd.Series(first[column].to_numpy(dtype=object), index=first["_unit"].to_numpy(),
                     name=column)


def _qa_points(out, pos, key, stats, own_share, has_2, rules: Rules) -> None:
    cls = stats["cls"].reindex(key).to_numpy()
    share = own_share.reindex(key).to_numpy()
    n = stats["n"].reindex(key).to_numpy()
    flags = np.empty(len(key), dtype=object)
    for i, (c, s, k, two) in enumerate(zip(cls, share, n, has_2.reindex(key).to_numpy())):
        f = []
        if c == 2 and s < rules.get("qa", "min_own_class_share_2"):
            f.append("own_class_points_below_80pct")
        if c == 3 and s < rules.get("qa", "min_own_class_share_3"):
            f.append("own_class_points_below_50pct")
        if c == 1 and two:
            f.append("class1_with_class2_point")
        if k == 1:
            f.append("single_point_unit")
        flags[i] = f
    idx = np.flatnonzero(pos)
    for i, f in zip(idx, flags):
        out.iat[i, out.columns.get_loc("qa_flags")].extend(f)


def _apply_distance_rule(out: gpd.GeoDataFrame, usable: pd.DataFrame, rules: Rules) -> None:
    """Rule 3: parcels without samples and too far from any usable sample."""
    todo = out["rule"].eq("").to_numpy()
    if not todo.any():
        return
    if usable.empty:
        out.loc[todo, "rule"] = "unclassified:no_usable_samples"
        return
    limit = rules.get("interpolation", "max_distance_m")
    far = np.flatnonzero(todo)[farther_than(out.geometry.values[todo], usable.geometry.values,
                                            limit)]
    out.iloc[far, out.columns.get_loc("rule")] = "unclassified:too_far"
    if len(far):
        log.info("%d parcel(s) are more than %.0f m from every usable soil sample: "
                 "unclassified and flagged for sampling", len(far), limit)


def _apply_interpolation(out, usable, std, rules: Rules, interpolator):
    """Rule 2 for parcels without samples; class probabilities for all within reach.
    Returns the ``variable -> estimator`` factory used (None when nothing was
    interpolated)."""
    reach = ~out["rule"].str.startswith("unclassified").to_numpy()
    if not reach.any():
        return
    builtin = interpolator is None or isinstance(interpolator, (str, SurfaceModels))
    if builtin and len(usable) < 2:  # the built-in interpolators need two samples
        todo = out["rule"].eq("").to_numpy()
        out.loc[todo, "rule"] = "unclassified:too_few_samples"
        log.warning("only %d usable soil sample(s): parcels without a sample of their own "
                    "are left unclassified (interpolation needs at least 2)", len(usable))
        return
    if interpolator is None or isinstance(interpolator, str):
        factory = fit_surface_models(usable, rules,
                                     interpolator or rules.get("interpolation", "method"))
    else:
        factory = interpolator
    xy, values = interpolation_inputs(usable)
    res = interpolated_classes(out.geometry.values[reach], out["landuse"].to_numpy()[reach], xy,
                               values, standard=std, make_estimator=factory,
                               cell_size=rules.get("interpolation", "cell_size_m"),
                               rule=CellRule.from_rules(rules["interpolation"]),
                               point_below_cells=rules["interpolation"].get("point_below_cells",
                                                                            0))
    rows = np.flatnonzero(reach)
    for col in ("p_class_1", "p_class_2", "p_class_3", "class_confidence",
                "p_calibrated_1", "p_calibrated_2", "p_calibrated_3"):
        out.iloc[rows, out.columns.get_loc(col)] = res[col].to_numpy()
    no_pts = out["rule"].to_numpy()[rows] == ""
    tgt = rows[no_pts]
    cls = res["interp_class"].to_numpy()[no_pts]
    out.iloc[tgt, out.columns.get_loc("soil_class")] = np.where(cls > 0, cls, pd.NA)
    out.iloc[tgt, out.columns.get_loc("rule")] = np.where(
        cls > 0, "interpolated:area_majority", "unclassified:no_estimate")
    out.iloc[tgt, out.columns.get_loc("driving_element")] = res["interp_driver"].to_numpy()[no_pts]
    for c in (1, 2, 3):
        out.iloc[tgt, out.columns.get_loc(f"share_{c}")] = res[f"share_{c}"].to_numpy()[no_pts]
    _evidence(out, tgt, usable, xy, rules.get("interpolation", "evidence_samples"))
    out.attrs["interpolator"] = (factory.describe() if isinstance(factory, SurfaceModels)
                                 else type(factory).__name__)
    return factory


def _evidence(out, rows: np.ndarray, usable: pd.DataFrame, xy: np.ndarray, k: int) -> None:
    """List the nearest usable samples as the evidence of interpolated parcels."""
    if not len(rows):
        return
    pts = shapely.get_coordinates(shapely.point_on_surface(out.geometry.values[rows]))
    k = min(k, len(xy))
    _, nn = cKDTree(xy).query(pts, k=k, workers=-1)
    nn = nn.reshape(len(rows), k)
    ids = usable["sample_id"].astype(str).to_numpy()
    nearest = zip(*(ids[nn[:, j]].tolist() for j in range(k)), strict=True)
    out.iloc[rows, out.columns.get_loc("sample_ids")] = [",".join(r) for r in nearest]


def crop_adjustment(out: gpd.GeoDataFrame, crops: gpd.GeoDataFrame | None, *, rules: Rules,
                    standard) -> tuple[pd.DataFrame, gpd.GeoDataFrame | None]:
    """Rule 4 for every parcel of ``out`` (``parcel_id``, ``soil_class``, geometry and the
    unit columns): :func:`~farmland.classify.crops.adjust_classes`' frame (``final_class``,
    ``crop_rule``, ``n_crops``, ``crop_exceedance``, indexed like ``out``) and the graded
    crops (None without crops). Crop samples are assigned among all parcels of ``out``."""
    if crops is None or len(crops) == 0:
        return pd.DataFrame({"final_class": out["soil_class"].copy(), "crop_rule": "",
                             "n_crops": 0, "crop_exceedance": False}, index=out.index), None
    graded = grade_crops(crops, standard=standard)
    unit = rules.get("crops", "unit")
    if unit == "parcel" and "unit_id" in out:  # the evaluation unit, unless the rules name one
        unit = "unit_id"
    graded[["parcel_id", "unit"]] = assign_crops(graded, out, unit=unit)
    stats = unit_statistics(graded)
    unit_of_parcel = out["parcel_id"] if unit == "parcel" else out[unit]
    return adjust_classes(out["soil_class"], unit_of_parcel, stats, rules=rules), graded


def apply_crop_adjustment(out: gpd.GeoDataFrame, adjusted: pd.DataFrame) -> None:
    """Write the rows of :func:`crop_adjustment` (same index as ``out``) into ``out``:
    ``final_class``, the crop rule appended to ``rule``, ``n_crops``, ``crop_exceedance``
    and the ``crop_exceedance_on_class1`` flag."""
    out["final_class"] = adjusted["final_class"]
    changed = adjusted["crop_rule"] != ""
    if changed.any():
        out.loc[changed, "rule"] = (out.loc[changed, "rule"] + ";"
                                    + adjusted.loc[changed, "crop_rule"])
    out["n_crops"] = adjusted["n_crops"]
    out["crop_exceedance"] = adjusted["crop_exceedance"]
    flag = (out["final_class"] == 1).fillna(False) & out["crop_exceedance"]
    for i in np.flatnonzero(flag.to_numpy()):
        out.iat[i, out.columns.get_loc("qa_flags")].append("crop_exceedance_on_class1")


def finish_classes(out: gpd.GeoDataFrame, samples: pd.DataFrame, *,
                   crops: gpd.GeoDataFrame | None, rules: Rules, standard
                   ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """Rules 4–5 on the soil classes of :func:`soil_classes`: the crop adjustment into
    ``final_class``, the remaining QA flags, labels and the output column order. Returns
    the classified parcels and the graded crops (or None)."""
    adjusted, graded = crop_adjustment(out, crops, rules=rules, standard=standard)
    apply_crop_adjustment(out, adjusted)
    out = finish_rows(out, samples)
    counts = out["final_class"].value_counts(dropna=False).to_dict()
    log.info("classified %d parcels: %s", len(out),
             ", ".join(f"{C.label_en(k)} {v}" for k, v in sorted(counts.items(), key=str)))
    return out, graded


def unusable_parcels(samples: pd.DataFrame) -> set:
    """Ids of the parcels holding an unusable sample (flagged ``unusable_samples_inside``)."""
    return set(samples.loc[~samples["usable"].astype(bool)].dropna(subset=["parcel_id"])[
        "parcel_id"])


def suspect_parcels(samples: pd.DataFrame) -> set:
    """Ids of the parcels holding a sample with a suspect value the outlier screen kept for
    its own parcel (``--outliers flag``: ``<element>_suspect``), flagged
    ``suspect_value_inside``: such a parcel's class may rest on a typo (镉 45 for 0.45)."""
    cols = [c for c in samples.columns if str(c).endswith("_suspect")]
    if not cols or "parcel_id" not in samples:
        return set()
    hit = samples[cols].fillna(False).astype(bool).any(axis=1).to_numpy()
    return set(samples.loc[hit, "parcel_id"].dropna())


#: QA flags rule 5 adds from the samples inside a parcel, each with the parcels it marks
SAMPLE_FLAGS = (("unusable_samples_inside", unusable_parcels),
                ("suspect_value_inside", suspect_parcels))


def finish_rows(out: gpd.GeoDataFrame, samples: pd.DataFrame) -> gpd.GeoDataFrame:
    """Rule 5's rest, row by row: labels, the flags of the samples inside (unusable, suspect
    value), flag lists to text and the output column order."""
    for flag, parcels_of in SAMPLE_FLAGS:
        for i in np.flatnonzero(out["parcel_id"].isin(parcels_of(samples)).to_numpy()):
            out.iat[i, out.columns.get_loc("qa_flags")].append(flag)
    code, final = pd.factorize(out["final_class"], use_na_sentinel=False)  # NA a value too
    out["class_label_zh"] = np.array([C.label_zh(c) for c in final], dtype=object)[code].tolist()
    out["class_label_en"] = np.array([C.label_en(c) for c in final], dtype=object)[code].tolist()
    out["qa_flags"] = [";".join(f) for f in out["qa_flags"]]
    # one missing marker (None), whichever pandas set-item path left NaN or None behind
    driver = out["driving_element"].astype(object)
    out["driving_element"] = driver.where(driver.notna(), None)
    return out[output_order("unit_id" in out)]


#: the parcel columns a classification computes, in their output order
CLASS_COLUMNS = ("n_samples", "soil_class", "final_class", "class_label_zh", "class_label_en",
                 "rule", "driving_element", "share_1", "share_2", "share_3", "p_class_1",
                 "p_class_2", "p_class_3", "class_confidence", "p_calibrated_1",
                 "p_calibrated_2", "p_calibrated_3", "sample_ids", "n_crops",
                 "crop_exceedance", "qa_flags")


def output_order(units: bool) -> list[str]:
    """The columns of the classified parcels in their order (``unit_id`` with units)."""
    return ["parcel_id", "township", "township_code", "village", "dlbm", "landuse",
            *(["unit_id"] if units else []), "area_m2", "area_mu", "area_hm2", *CLASS_COLUMNS,
            "geometry"]
