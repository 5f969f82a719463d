"""The inputs of the rate, checked and put in canonical form: parcels, the measures
ledger and the crop samples of the accounting year."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from farmland.classes import as_class
from farmland.errors import InputError, first_rows
from farmland.io.values import parse_boolean
from farmland.vocabulary import UNKNOWN_TOWNSHIP

log = logging.getLogger("farmland.rate.accounting")

SAFE_USE = "safe_use"
STRICT_CONTROL = "strict_control"
MEASURE_CLASSES = (SAFE_USE, STRICT_CONTROL)
#: crops whose exceedance on controlled class-3 land contradicts the control (GB 2762 food)
FOOD_CROPS = frozenset({"rice", "milled_rice", "wheat", "maize"})


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what} lack the column(s) {', '.join(missing)}", column=missing[0],
                         value=list(df.columns),
                         fix="read the file with farmland.io.readers so its columns are canonical "
                             "(docs/schema.md)")


def parcel_ids(values: pd.Series) -> pd.Series:
    """Parcel ids as text (NA stays NA) so ``'12'`` and ``12`` match.

    Surrounding blanks are the reader's job (farmland.io.readers strips ids); stripping here
    again would cost seconds on a million parcels with the Python-backed ``str`` dtype.
    """
    return values if values.dtype == "str" else values.astype("str")


def parcel_frame(parcels: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """``parcel_id, township, <levels>, final_class, area_mu`` checked, on a fresh index."""
    require_columns(parcels, ("parcel_id", "final_class", "area_mu", *levels), "parcels")
    try:
        cls = as_class(parcels["final_class"].to_numpy()).array
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), column="final_class", fix="use 1, 2, 3 or empty") from exc
    out = pd.DataFrame({"parcel_id": parcel_ids(parcels["parcel_id"]).to_numpy()})
    for col in dict.fromkeys(["township", *levels]):
        src = parcels[col] if col in parcels.columns else pd.Series(UNKNOWN_TOWNSHIP,
                                                                  index=parcels.index)
        out[col] = src.astype("str").fillna(UNKNOWN_TOWNSHIP).to_numpy()
    out["final_class"] = cls
    out["area_mu"] = pd.to_numeric(parcels["area_mu"], errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    dup = out["parcel_id"].duplicated(keep=False)
    if dup.any():
        ids = out.loc[dup, "parcel_id"].unique()
        raise InputError("parcel ids must be unique (a parcel counts once)", column="parcel_id",
                         row=first_rows(ids), fix="remove or renumber the duplicated parcels")
    bad = (out["area_mu"].isna() | (out["area_mu"] < 0)) & out["final_class"].notna()
    if bad.any():
        raise InputError("classified parcels need a non-negative area_mu", column="area_mu",
                         row=first_rows(out.loc[bad, "parcel_id"]),
                         value=out.loc[bad, "area_mu"].iloc[0],
                         fix="recompute the areas (farmland classify writes area_mu)")
    return out


def measure_frame(measures: pd.DataFrame | None) -> pd.DataFrame:
    """``parcel_id, measure_type, measure_class, year`` checked; index of the input kept."""
    if measures is None:
        measures = pd.DataFrame(columns=["parcel_id", "measure_type", "measure_class", "year"])
    require_columns(measures, ("parcel_id", "measure_class", "year"), "measures")
    mtype = measures["measure_type"] if "measure_type" in measures.columns else ""
    m = pd.DataFrame({"parcel_id": parcel_ids(measures["parcel_id"]),
                      "measure_type": pd.Series(mtype, index=measures.index).astype("str")
                      .str.strip(),
                      "measure_class": measures["measure_class"].astype("str").str.strip()
                      .str.lower(),
                      "year": pd.to_numeric(measures["year"], errors="coerce").round()
                      .astype("Int64")}, index=measures.index)
    bad = ~m["measure_class"].isin(MEASURE_CLASSES)
    if bad.any():
        raise InputError("measure_class must be 'safe_use' or 'strict_control'",
                         column="measure_class", row=m.index[bad][0],
                         value=measures.loc[bad, "measure_class"].iloc[0],
                         more=int(bad.sum()) - 1,
                         fix="fix the class or leave it empty so farmland.io.readers derives it "
                             "from measure_type")
    return m


def crop_frame(crops: pd.DataFrame | None, year: int | None) -> pd.DataFrame:
    """Crop samples of ``year``: ``parcel_id, exceeds`` (boolean; <NA> = no usable result)."""
    if crops is None:
        log.info("no crop samples given: class-2 parcels with a measure are 'unverified'")
        return pd.DataFrame({"parcel_id": pd.Series([], dtype="str"),
                             "exceeds": pd.Series([], dtype="boolean"),
                             "food": pd.Series([], dtype=bool)})
    require_columns(crops, ("parcel_id", "year", "exceeds"), "crop samples")
    years = pd.to_numeric(crops["year"], errors="coerce")
    if years.isna().any():
        log.warning("%d crop sample(s) carry no year and verify no measure",
                    int(years.isna().sum()))
    in_year = (years == year).fillna(False)
    c = crops.loc[in_year.to_numpy(bool)]
    food = (c["crop"].astype("str").isin(FOOD_CROPS).to_numpy(bool) if "crop" in c.columns
            else np.ones(len(c), dtype=bool))
    return pd.DataFrame({"parcel_id": parcel_ids(c["parcel_id"]).to_numpy(),
                         "exceeds": parse_boolean(c["exceeds"]).to_numpy(),
                         "food": food})


def select_year(m: pd.DataFrame, year: int | None, crops: pd.DataFrame | None) -> int | None:
    """The accounting year: given, else the latest in the measures, else in the crops."""
    undated = int(m["year"].isna().sum())
    if undated:
        log.warning("%d measure(s) carry no year and are not counted (rows %s)", undated,
                    first_rows(m.index[m["year"].isna()]))
    if year is not None:
        present = sorted(int(y) for y in m["year"].dropna().unique())
        if present and int(year) not in present:
            log.warning("the measures ledger holds no measure for %d (its years: %s): no "
                        "parcel counts as treated or controlled in %d; check the year "
                        "(--year)", int(year), ", ".join(map(str, present)), int(year))
        return int(year)
    if m["year"].notna().any():
        year = int(m["year"].max())
        log.info("no year given: using %d, the latest year in the measures", year)
        return year
    log.warning("no dated measures: nothing counts as achieved or controlled")
    crop_years = (pd.to_numeric(crops["year"], errors="coerce").dropna()
                  if crops is not None and "year" in crops.columns else pd.Series([]))
    if len(crop_years):
        year = int(crop_years.max())
        log.info("no year given and no dated measures: using %d, the latest crop year", year)
        return year
    return None


def unknown_mask(m: pd.DataFrame) -> np.ndarray:
    """Measures (all years) whose parcel id is not a parcel; logged, never dropped silently."""
    unknown = ((m["pos"] < 0) | m["parcel_id"].isna()).to_numpy(bool)
    if unknown.any():
        log.warning("%d measure(s) name parcel ids not in the parcels and are not counted "
                    "(first: %s); see unknown_measures", int(unknown.sum()),
                    first_rows(m.loc[unknown, "parcel_id"].fillna("<empty>").unique()))
    return unknown
