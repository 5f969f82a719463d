"""Crop (edible product) samples: GB 2762 grades and the crop adjustment of classes.

Grade per element (domain.md §3.4): value ≤ limit → 1, ≤ 2 × limit → 2, above → 3;
the sample grade is the worst element. Arsenic: the rice limits are for inorganic
As while labs usually report total As; total As at or below the inorganic limit is
compliant, above it the sample is graded against the inorganic limit (conservative)
and flagged ``as_total_above_inorganic_limit`` for a speciation test.

Adjustment unit: the parcel, or a parcel column named in the rules (e.g. village).
Defaults: class 2 → 1 when the unit has ≥ 3 crop samples and none exceeds; class
3 → 2 when ≥ 65 % are grade 1 and none is grade 3; class 1 is never raised unless
the rules say so, but crop exceedances on class-1 land are flagged.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.errors import StandardError
from farmland.rules import Rules

log = logging.getLogger(__name__)

CROP_ELEMENTS = ("cd", "pb", "hg", "as", "cr")
#: crop samples farther than this from every parcel are not assigned to one (m)
ASSIGN_TOLERANCE_M = 30.0


def grade_crops(crops: gpd.GeoDataFrame, *, standard) -> gpd.GeoDataFrame:
    """GB 2762 grade of every crop sample.

    Parameters
    ----------
    crops
        Canonical crop samples (``sample_id``, ``crop``, element columns in mg/kg).
    standard
        The loaded standard (``crop_limit``, ``crop_as_form``).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``grade_<el>`` (Int8, <NA> when not measured or no limit),
        ``crop_grade`` (worst element), ``exceeds`` (grade ≥ 2), ``crop_flags``.
        A sample whose crop has no GB 2762 category in the tables, or with no measured
        element that has a limit for its crop, stays ungraded (<NA>); each such crop is
        named with its sample count in a logged WARNING.
    """
    out = crops.copy()
    grades = []
    flags = pd.Series("", index=out.index, dtype=object)
    crop = np.array(["" if _missing(c) else str(c) for c in out["crop"]], dtype=object)
    for el in CROP_ELEMENTS:
        if el not in out:
            continue
        value = pd.to_numeric(out[el], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        limit = np.array([_limit(standard, c, el) for c in crop], dtype=float)
        with np.errstate(invalid="ignore"):
            grade = np.where(value <= limit, 1, np.where(value <= 2 * limit, 2, 3)).astype(float)
        grade[np.isnan(value) | np.isnan(limit)] = np.nan
        if el == "as":
            inorganic = np.array([standard.crop_as_form(c) == "inorganic"
                                  if _known(standard, c) else False for c in crop])
            flags = flags.where(~(inorganic & (grade >= 2)), "as_total_above_inorganic_limit")
        out[f"grade_{el}"] = pd.array(np.where(np.isnan(grade), pd.NA, grade), dtype="Int8")
        grades.append(grade)
    worst = np.fmax.reduce(np.vstack(grades), axis=0) if grades else np.full(len(out), np.nan)
    out["crop_grade"] = pd.array(np.where(np.isnan(worst), pd.NA, worst), dtype="Int8")
    out["exceeds"] = out["crop_grade"].fillna(0).astype(int) >= 2
    out["crop_flags"] = flags
    _warn_ungraded(crop, out["crop_grade"].isna().to_numpy(), standard,
                   [el for el in CROP_ELEMENTS if el in out])
    return out


def _warn_ungraded(crop: np.ndarray, ungraded: np.ndarray, standard,
                   measured: list[str]) -> None:
    """One WARNING per cause, naming each crop with its number of ungraded samples."""
    if not ungraded.any():
        return
    names = pd.Series(crop[ungraded])
    known = names.map(lambda c: _known(standard, c)).to_numpy(dtype=bool)
    if (~known).any():
        categories = ", ".join(getattr(standard, "crop_as_forms", {}))
        log.warning(
            "crop samples: %s not graded: no GB 2762 category; name each crop as one of %s "
            "(or a Chinese name listed under [values.crop] in farmland/io/aliases.toml). A GB "
            "2762 category outside this list needs a row in crop_limits.csv and an entry in "
            "farmland.standards.vocabulary.CROPS", _counts(names[~known]), categories)
    if known.any():
        detail = "; ".join(
            f"{c}: {', '.join(_limited(standard, c)) or 'none'}"
            for c in dict.fromkeys(names[known]))
        log.warning(
            "crop samples: %s not graded: no element with a GB 2762 limit for the crop was "
            "measured (limits for %s; element columns given: %s)", _counts(names[known]),
            detail, ", ".join(measured) or "none")


def _counts(names: pd.Series) -> str:
    """``"3 samples of 'xxx', 1 sample of 'yyy' are"`` (most frequent first)."""
    counts = sorted(names.value_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{n} sample{'s' if n != 1 else ''} of {repr(c) if c else '(no crop name)'}"
                     for c, n in counts)
    return f"{text} {'is' if len(counts) == 1 and counts[0][1] == 1 else 'are'}"


def _limited(standard, crop: str) -> list[str]:
    return [el for el in CROP_ELEMENTS if not np.isnan(_limit(standard, crop, el))]


def _missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _known(standard, crop: str) -> bool:
    try:
        standard.crop_as_form(crop)
    except (KeyError, ValueError, StandardError):
        return False
    return True


def _limit(standard, crop: str, element: str) -> float:
    try:
        value = standard.crop_limit(crop, element)
    except (KeyError, ValueError, StandardError):
        return np.nan
    return np.nan if value is None else float(value)


def assign_crops(crops: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, *, unit: str) -> pd.DataFrame:
    """Parcel and adjustment unit of each crop sample.

    A sample inside a parcel belongs to it; one outside every parcel but within
    :data:`ASSIGN_TOLERANCE_M` (GPS error at a field edge) to the nearest parcel;
    others to none (logged). ``unit`` is ``"parcel"`` or a parcel column.
    """
    if unit != "parcel" and unit not in parcels:
        from farmland.errors import InputError
        raise InputError("crop adjustment unit column not found in parcels", column=unit,
                         fix="set [crops] unit in the rules file to 'parcel' or an existing "
                             "parcel column (e.g. village)")
    joined = gpd.sjoin_nearest(crops[["geometry"]], parcels[["parcel_id", "geometry"]],
                               how="left", max_distance=ASSIGN_TOLERANCE_M)
    joined = joined.sort_values("parcel_id").loc[~joined.index.duplicated(keep="first")]
    pid = joined["parcel_id"].reindex(crops.index)
    lost = int(pid.isna().sum())
    if lost:
        log.warning("%d crop sample(s) lie more than %.0f m from every parcel and adjust no "
                    "class (first: %s)", lost, ASSIGN_TOLERANCE_M,
                    ", ".join(crops.loc[pid.isna(), "sample_id"].astype(str)[:5]))
    if unit == "parcel":
        unit_values = pid
    else:
        unit_values = pid.map(parcels.drop_duplicates("parcel_id").set_index("parcel_id")[unit])
    return pd.DataFrame({"parcel_id": pid.astype(object), "unit": unit_values.astype(object)},
                        index=crops.index)


def unit_statistics(graded: pd.DataFrame) -> pd.DataFrame:
    """Per adjustment unit: graded samples, exceedances, share of grade 1, any grade 3, and
    the number of distinct years with samples (all of them compliant or not)."""
    g = graded.dropna(subset=["unit"])
    g = g[g["crop_grade"].notna()]
    grade = g["crop_grade"].astype(int)
    years = (pd.to_numeric(g["year"], errors="coerce") if "year" in g
             else pd.Series(np.nan, index=g.index)).fillna(-1)  # no year: one unknown year
    stats = pd.DataFrame({
        "n": grade.groupby(g["unit"]).size(),
        "n_exceed": (grade >= 2).groupby(g["unit"]).sum(),
        "share_grade1": (grade == 1).groupby(g["unit"]).mean(),
        "any_grade3": (grade == 3).groupby(g["unit"]).any(),
        "n_years": years.groupby(g["unit"]).nunique(),
    })
    stats.attrs["years_in_data"] = int(years.nunique())
    return stats


#: each crop adjustment step: the ``[crops]`` switch that allows it and the setting
#: with the samples it needs
STEP_SETTINGS = {"2->1": ("allow_2_to_1", "min_samples_lower"),
                 "3->2": ("allow_3_to_2", "min_samples_lower"),
                 "1->2": ("raise_class1", "min_samples_raise")}


def step_blocks(stats: pd.DataFrame, cfg: dict, step: str, *, years_in_data: int) -> np.ndarray:
    """The ``[crops]`` rule that stops crop adjustment ``step`` for each row of ``stats``
    (:func:`unit_statistics` columns; a unit without samples may be NaN), "" where
    none does. The one statement of the rules: :func:`adjust_classes` applies a step
    where nothing blocks it, and ``farmland diff`` names what blocked it.

    - every step: its switch off (``not_allowed``), fewer samples than it needs
      (``few_samples``);
    - ``1->2``: no sample exceeds (``no_exceedance``);
    - ``2->1``: a sample exceeds (``exceedance``), or compliant samples in fewer than
      ``min_compliant_years`` years when the crop data hold more than one year (``years``);
    - ``3->2``: a sample of grade 3 (``grade3``), or a grade-1 share under
      ``min_share_grade1_for_3_to_2`` (``share_grade1``).
    """
    allow, need = STEP_SETTINGS[step]
    n = stats["n"].fillna(0).to_numpy(dtype=int)
    n_exceed = stats["n_exceed"].fillna(0).to_numpy(dtype=int)
    checks = [("not_allowed", np.full(len(n), not cfg[allow])),
              ("few_samples", n < cfg[need])]
    if step == "1->2":
        checks.append(("no_exceedance", n_exceed == 0))
    elif step == "2->1":
        n_years = (stats["n_years"].fillna(0).to_numpy(dtype=int) if "n_years" in stats
                   else np.ones(len(n), dtype=int))
        years_needed = cfg["min_compliant_years"] if years_in_data > 1 else 1
        checks += [("exceedance", n_exceed > 0), ("years", n_years < years_needed)]
    else:
        grade3 = stats["any_grade3"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        share1 = stats["share_grade1"].fillna(0).to_numpy(dtype=float)
        checks += [("grade3", grade3),
                   ("share_grade1", share1 < cfg["min_share_grade1_for_3_to_2"] - 1e-12)]
    return np.select([c for _, c in checks], [name for name, _ in checks], "")


def adjust_classes(soil_class: pd.Series, unit_of_parcel: pd.Series, stats: pd.DataFrame,
                   *, rules: Rules) -> pd.DataFrame:
    """Apply the crop adjustment rules parcel by parcel (docs/decisions.md, crop rules).

    Raising and lowering have separate settings, because the evidence they need differs:

    - **raise 1 → 2** (``raise_class1``, default on) on ``min_samples_raise`` samples
      (default 1) with any exceedance: one over-limit harvest is a fact;
    - **lower 2 → 1** (``allow_2_to_1``) needs ``min_samples_lower`` samples (default 3),
      none exceeding, in at least ``min_compliant_years`` different years (default 2)
      when the crop data hold more than one year; with one year of data, one year;
    - **lower 3 → 2** (``allow_3_to_2``) needs ``min_samples_lower`` samples, none of
      grade 3, and a grade-1 share of at least ``min_share_grade1_for_3_to_2`` (default
      1.0: none exceeding). At 1.0 a parcel lowered to class 2 is one whose safe use the
      rate can count; a lower share makes class-2 parcels that can never count (logged).

    Parameters
    ----------
    soil_class
        Soil class per parcel (Int8, <NA> unclassified), indexed like the parcels.
    unit_of_parcel
        Adjustment unit of each parcel (same index).
    stats
        :func:`unit_statistics` output.
    rules
        Rule profile (section ``crops``).

    Returns
    -------
    pandas.DataFrame
        ``final_class``, ``crop_rule`` (``crops:2->1`` …, or ""), ``n_crops``,
        ``crop_exceedance`` (bool).
    """
    cfg = rules["crops"]
    st = stats.reindex(unit_of_parcel.to_numpy())
    n = st["n"].fillna(0).to_numpy(dtype=int)
    n_exceed = st["n_exceed"].fillna(0).to_numpy(dtype=int)
    soil = soil_class.fillna(0).to_numpy(dtype=int)
    years_in_data = stats.attrs.get("years_in_data", 1)
    down21 = (soil == 2) & (step_blocks(st, cfg, "2->1", years_in_data=years_in_data) == "")
    down32 = (soil == 3) & (step_blocks(st, cfg, "3->2", years_in_data=years_in_data) == "")
    up12 = (soil == 1) & (step_blocks(st, cfg, "1->2", years_in_data=years_in_data) == "")
    if cfg["min_share_grade1_for_3_to_2"] < 1 and (down32 & (n_exceed > 0)).any():
        log.warning("%d parcel(s) lowered 3 -> 2 carry exceeding crop samples "
                    "(min_share_grade1_for_3_to_2 < 1): their safe use cannot count in the "
                    "rate this year", int((down32 & (n_exceed > 0)).sum()))
    final = soil.copy()
    final[down21] = 1
    final[down32] = 2
    final[up12] = 2
    rule = np.select([down21, down32, up12], ["crops:2->1", "crops:3->2", "crops:1->2"], "")
    return pd.DataFrame({
        "final_class": pd.array(np.where(final == 0, pd.NA, final), dtype="Int8"),
        "crop_rule": rule, "n_crops": n, "crop_exceedance": n_exceed > 0,
    }, index=soil_class.index)
