"""Field conversions of :mod:`farmland.io`: land-use codes, areas, measures, metals.

See ``docs/decisions.md`` for the rules (legacy land-use codes, the ``K``
suffix, rotation flags, measure splitting, metal names).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from farmland.errors import first_rows
from farmland.io_columns import aliases, normalise_name, normalise_value, value_lookup
from farmland.io_common import (
    blank_cells,
    na_column,
    report_unknown_values,
    vocabulary_values,
)
from farmland.io_values import Problems, id_strings, parse_plain_numbers
from farmland.standards import CLASS_ELEMENTS, FLAG_ELEMENTS, ORGANIC_ITEMS, landuse_from_dlbm

log = logging.getLogger("farmland.io")

_METAL_SPLIT = re.compile(r"[\s、,，;；/+＋]+")


def dlbm_codes(raw: pd.Series) -> pd.Series:
    """Land-use codes as 4-character text: 101 → "0101", "0201K" → "0201", "011" → "0101"."""
    legacy = aliases()["dlbm_legacy"]
    numeric = pd.api.types.is_numeric_dtype(raw.dtype)
    def one(text: object) -> object:
        if text is None or pd.isna(text):
            return None
        code = str(text).strip().upper().removesuffix("K")
        if not numeric and code in legacy:
            return legacy[code]
        return code.zfill(4) if code.isdigit() and len(code) < 4 else code
    codes = id_strings(raw)
    mapping = {v: one(v) for v in pd.unique(codes.dropna())}
    padded = sorted(v for v, c in mapping.items() if str(v).isdigit() and len(str(v)) < 4
                    and c != v and not (not numeric and str(v).strip() in legacy))
    if padded:
        log.info("land-use codes %s lost their leading zero (a number column?); read as %s",
                 padded, [mapping[v] for v in padded])
    legacy_used = sorted(v for v in mapping if not numeric and str(v).strip() in legacy)
    if legacy_used:
        log.warning("three-digit land-use codes %s read as second-survey (GB/T 21010-2007) "
                    "codes and converted to %s", legacy_used, [mapping[v] for v in legacy_used])
    return codes.map(mapping).astype("str")


def parcel_landuse(frame: pd.DataFrame, src: dict[str, str], dlbm: pd.Series,
                   file: str) -> pd.Series:
    """``landuse`` of parcels: explicit land-use column, else from ``dlbm``; rotation flag wins."""
    landuse = dlbm.map({c: landuse_from_dlbm(c) for c in pd.unique(dlbm.dropna())}).astype(object)
    if "landuse" in src:
        explicit = vocabulary_values(frame[src["landuse"]], "landuse")
        landuse = explicit.where(explicit.notna(), landuse)
    elif "dlbm" not in src and "_rotation" not in src:
        log.warning("%s: no land-use code (DLBM) or land-use column; landuse is 'unknown' "
                    "for every parcel (the stricter paddy/other screening value cannot be "
                    "chosen): map a DLBM column", file)
    if "_rotation" in src:
        flag = frame[src["_rotation"]].map(normalise_value)
        yes = flag.isin({normalise_value(w) for w in aliases()["values"]["truthy"]["yes"]})
        landuse = landuse.where(~yes.to_numpy(), "rotation")
    return landuse.fillna("unknown").astype("str")


def net_area(frame: pd.DataFrame, src: dict[str, str], rows: pd.Series, problems: Problems,
             file: str) -> np.ndarray:
    """``net_area_m2``: TBDLMJ, else TBMJ − KCMJ, else NaN (m²)."""
    if "net_area_m2" in src:
        return area_column(frame, src["net_area_m2"], rows, problems)
    if "_tbmj" in src and "_kcmj" in src:
        log.info("%s: net area = %s - %s", file, src["_tbmj"], src["_kcmj"])
        return (area_column(frame, src["_tbmj"], rows, problems)
                - area_column(frame, src["_kcmj"], rows, problems))
    return np.full(len(frame), np.nan)


def area_column(frame: pd.DataFrame, column: str, rows: pd.Series,
                problems: Problems) -> np.ndarray:
    """An area column (m²): non-numeric, infinite and negative values are problems."""
    values, bad, censored = parse_plain_numbers(frame[column])
    problems.add_non_numeric(bad | censored, rows, column, frame[column])
    problems.add_mask("infinite", np.isinf(values), rows, column, frame[column])
    problems.add_mask("negative_area", values < 0, rows, column, frame[column])
    return values


def township_code_column(frame: pd.DataFrame, src: dict[str, str]) -> pd.Series:
    """``township_code``: XZQDM, else the first 9 digits of ZLDWDM, else NA."""
    if "township_code" in src:
        return id_strings(frame[src["township_code"]])
    if "_zldwdm" in src:
        return id_strings(frame[src["_zldwdm"]]).str.slice(0, 9)
    return na_column(frame)


def sample_landuse(raw: pd.Series, file: str, column: str) -> pd.Series:
    """Optional ``landuse`` of samples from words or codes (unrecognised → NA, warning)."""
    words = vocabulary_values(raw, "landuse")
    codes = dlbm_codes(raw).map(lambda c: None if pd.isna(c) else landuse_from_dlbm(c))
    codes = codes.where(codes != "unknown")
    out = words.where(words.notna(), codes)
    unknown = out.isna() & ~blank_cells(raw)
    if unknown.any():
        log.warning("%s: column '%s': unrecognised land use %s left empty (the parcel's "
                    "land use is used)", file, column, first_rows(pd.unique(raw[unknown])))
    return out.astype("str")


def measure_class_column(frame: pd.DataFrame, src: dict[str, str], rows: pd.Series,
                         problems: Problems) -> pd.Series:
    """``measure_class`` from the file (NA where blank or absent)."""
    if "measure_class" not in src:
        return pd.Series(None, index=frame.index, dtype=object)
    classes = vocabulary_values(frame[src["measure_class"]], "measure_class")
    report_unknown_values(frame[src["measure_class"]], classes, rows, src["measure_class"],
                    "measure_class", problems, blank_ok=True)
    return classes


def measure_types(out: pd.DataFrame, src: dict[str, str], problems: Problems) -> pd.DataFrame:
    """Canonical measure types; the class derived from the type where not given."""
    lookup = value_lookup("measure_type")
    of_type = aliases()["measure_class_of_type"]
    canonical = out["measure_type"].map(lambda v: lookup.get(normalise_value(v))
                                        if isinstance(v, str) else None)
    derived = canonical.map(of_type)
    given = out["measure_class"]
    unknown = canonical.isna() & (given.isna() | blank_cells(out["measure_type"]))
    accepted = ", ".join(sorted(set(value_lookup("measure_type").values())))
    problems.add_mask("unknown_value", unknown.to_numpy(), out["_row"], src["measure_type"],
                      out["measure_type"],
                      f" of measure type without a measure class; accepted types: {accepted}")
    disagree = given.notna() & derived.notna() & (given != derived)
    if disagree.any():
        log.warning("measure class given in the file differs from the class of the measure "
                    "type for %d row(s) (%s); the file's class is kept", int(disagree.sum()),
                    first_rows(out["_row"][disagree]))
    out = out.assign(measure_type=canonical.where(canonical.notna(), out["measure_type"]),
                     measure_class=given.where(given.notna(), derived))
    return out.astype({"measure_type": "str", "measure_class": "str"})


def metals_list(raw: pd.Series) -> pd.Series:
    """``metals`` as a comma list of element codes (other pollutants kept as written)."""
    lookup = {}
    for element, names in aliases()["columns"]["soil"].items():
        if element in (*CLASS_ELEMENTS, *FLAG_ELEMENTS, *ORGANIC_ITEMS):
            lookup.update({normalise_name(n): element for n in [element, *names]})
    def one(v: object) -> object:
        if v is None or pd.isna(v) or not str(v).strip():
            return None
        tokens = [t for t in _METAL_SPLIT.split(str(v).strip()) if t]
        return ",".join(dict.fromkeys(lookup.get(normalise_name(t), t) for t in tokens))
    return raw.map(one).astype("str")
