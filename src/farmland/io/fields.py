"""Field conversions of :mod:`farmland.io.readers`: land-use codes, areas, measures, metals.

See ``docs/decisions.md`` for the rules (legacy land-use codes, the ``K``
suffix, rotation flags, measure splitting, metal names).
"""

from __future__ import annotations

import functools
import logging
import re

import numpy as np
import pandas as pd

from farmland.errors import first_rows
from farmland.io.columns import (
    aliases,
    measure_type_list,
    normalise_name,
    normalise_value,
    value_lookup,
)
from farmland.io.reading import (
    blank_cells,
    na_column,
    report_unknown_values,
    vocabulary_values,
)
from farmland.io.values import Problems, id_strings, parse_plain_numbers
from farmland.standards import CLASS_ELEMENTS, FLAG_ELEMENTS, ORGANIC_ITEMS, landuse_from_dlbm

log = logging.getLogger("farmland.io.readers")

_METAL_SPLIT = re.compile(r"[\s、,，;；/+＋]+")


_DECIMAL_CODE = re.compile(r"^(\d{3,4})\.0+$")


def dlbm_codes(raw: pd.Series, ids: pd.Series | None = None, file: str = "") -> pd.Series:
    """Land-use codes as 4-character text: 101 → "0101", "0101.0" → "0101", "0201K" →
    "0201", "011" → "0101" (second-survey code).

    Codes decide which GB 15618 column applies, so every repair is logged with the
    parcel ids it touched (``ids``, aligned with ``raw``).
    """
    legacy = aliases()["dlbm_legacy"]
    numeric = pd.api.types.is_numeric_dtype(raw.dtype)

    def one(text: object) -> object:
        if text is None or pd.isna(text):
            return None
        code = str(text).strip().upper().removesuffix("K")
        decimal = _DECIMAL_CODE.match(code)
        code = decimal.group(1) if decimal else code
        if not numeric and code in legacy:
            return legacy[code]
        return code.zfill(4) if code.isdigit() and len(code) < 4 else code
    codes = id_strings(raw)
    mapping = {v: one(v) for v in pd.unique(codes.dropna())}
    ids = ids if ids is not None else pd.Series(raw.index.astype(str), index=raw.index)
    where = f"{file}: " if file else ""
    legacy_used = {v for v in mapping if not numeric and str(v).strip() in legacy}
    repaired = {v for v, c in mapping.items() if c != v and v not in legacy_used
                and str(v).strip().upper().removesuffix("K") != c}
    if repaired:
        hit = codes.isin(repaired)
        log.warning("%sland-use codes %s lost their form (a number column or an Excel export); "
                    "read as %s for %d parcel(s): %s", where, sorted(repaired),
                    sorted({mapping[v] for v in repaired}), int(hit.sum()),
                    first_rows(ids[hit]))
    if legacy_used:
        hit = codes.isin(legacy_used)
        log.warning("%sthree-digit land-use codes %s read as second-survey (GB/T 21010-2007) "
                    "codes and converted to %s for %d parcel(s): %s", where, sorted(legacy_used),
                    [mapping[v] for v in sorted(legacy_used)], int(hit.sum()),
                    first_rows(ids[hit]))
    return codes.map(mapping).astype("str")


def parcel_landuse(frame: pd.DataFrame, src: dict[str, str], dlbm: pd.Series,
                   file: str, ids: pd.Series | None = None) -> pd.Series:
    """``landuse`` of parcels: explicit land-use column, else from ``dlbm``; rotation flag wins.

    Parcels left without a land use (blank or non-farmland code) are classified on the
    stricter GB 15618 column: they are warned about by parcel id.
    """
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
    landuse = landuse.fillna("unknown").astype("str")
    if "dlbm" in src or "landuse" in src:
        _warn_unknown_landuse(landuse, dlbm, ids, file)
    return landuse


def _warn_unknown_landuse(landuse: pd.Series, dlbm: pd.Series, ids: pd.Series | None,
                          file: str) -> None:
    unknown = (landuse == "unknown").to_numpy()
    if not unknown.any():
        return
    ids = ids if ids is not None else pd.Series(landuse.index.astype(str), index=landuse.index)
    blank = unknown & dlbm.isna().to_numpy()
    other = unknown & ~blank
    if blank.any():
        log.warning("%s: %d parcel(s) have a blank land-use code (DLBM): %s; they are "
                    "classified on the stricter paddy/other column — fill in DLBM",
                    file, int(blank.sum()), first_rows(ids[blank]))
    if other.any():
        codes = sorted({str(c) for c in dlbm[other]})
        log.warning("%s: %d parcel(s) have land-use codes that are not farmland codes "
                    "(01xx/02xx) %s: %s; they are classified on the stricter paddy/other "
                    "column — correct the code or map a land-use column",
                    file, int(other.sum()), codes[:10], first_rows(ids[other]))


def net_area(frame: pd.DataFrame, src: dict[str, str], rows: pd.Series, problems: Problems,
             file: str) -> np.ndarray:
    """``net_area_m2``: TBDLMJ, else TBMJ − KCMJ, else NaN (m²)."""
    if "net_area_m2" in src:
        return area_column(frame, src["net_area_m2"], rows, problems)
    if "_tbmj" in src and "_kcmj" in src:
        log.info("%s: net area = %s - %s", file, src["_tbmj"], src["_kcmj"])
        return (area_column(frame, src["_tbmj"], rows, problems)
                - area_column(frame, src["_kcmj"], rows, problems))
    names = aliases()["columns"]["parcels"]
    looked_for = (f"{'/'.join(names['net_area_m2'])}, or {'/'.join(names['_tbmj'])} minus "
                  f"{'/'.join(names['_kcmj'])}")
    if "_tbmj" in src or "_kcmj" in src:
        have, lacking = ("_tbmj", "_kcmj") if "_tbmj" in src else ("_kcmj", "_tbmj")
        log.warning("%s: no net area column: the file has '%s' but no %s column to go with "
                    "it, so the area of each polygon (geometry area) is used as its area, not "
                    "'%s' (looked for %s) — map the net area column (图斑地类面积) in a mapping "
                    "file if the file has one", file, src[have], names[lacking][0],
                    src[have], looked_for)
    else:   # no area column at all: not a land-survey table, said once in the log
        log.info("%s: no net area column (looked for %s): the area of each polygon "
                    "(geometry area) is used as its area — map the net area column "
                    "(图斑地类面积) in a mapping file if the file has one", file, looked_for)
    return np.full(len(frame), np.nan)


def area_column(frame: pd.DataFrame, column: str, rows: pd.Series,
                problems: Problems) -> np.ndarray:
    """An area column (m²): non-numeric, infinite and negative values are problems."""
    values, bad, censored = parse_plain_numbers(frame[column])
    problems.add_non_numeric(bad | censored, rows, column, frame[column], "non_numeric_area")
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


#: separators between several measures written in one cell
_MEASURE_SPLIT = re.compile(r"\s*[、,，;；+＋/]\s*")


def split_measures(cell: object, extra: dict[str, str] | None = None) -> list[str]:
    """The measures written in one ledger cell ("淹水+石灰" → two measures), keeping names
    that contain a separator themselves (``VIP+n``) in one piece."""
    if cell is None or (not isinstance(cell, str) and pd.isna(cell)):
        return []
    text = str(cell).strip()
    compound = _compound_names(tuple(sorted(extra or {})))
    kept: list[str] = []
    for name in compound:
        pattern = re.compile(re.escape(name), re.IGNORECASE)
        while (found := pattern.search(text)) is not None:
            text = f"{text[:found.start()]}\x00{len(kept)}\x00{text[found.end():]}"
            kept.append(found.group(0))
    parts = [p for p in _MEASURE_SPLIT.split(text) if p]
    return [re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], p) for p in parts]


@functools.cache
def _compound_names(extra: tuple[str, ...]) -> tuple[str, ...]:
    words = [w for c, ws in aliases()["values"]["measure_type"].items() for w in [c, *ws]]
    names = {w for w in [*words, *extra] if _MEASURE_SPLIT.search(w)}
    return tuple(sorted(names, key=len, reverse=True))


def measure_types(out: pd.DataFrame, src: dict[str, str], problems: Problems,
                  extra: dict[str, str] | None = None) -> pd.DataFrame:
    """Canonical measure types; the class derived from the type where not given.

    ``extra`` maps a county's own measure names to canonical types (the
    ``[measure_types]`` table of a mapping file).
    """
    lookup = dict(value_lookup("measure_type"))
    lookup.update({normalise_value(k): v for k, v in (extra or {}).items()})
    of_type = aliases()["measure_class_of_type"]
    canonical = out["measure_type"].map(lambda v: lookup.get(normalise_value(v))
                                        if isinstance(v, str) else None)
    derived = canonical.map(of_type)
    given = out["measure_class"]
    unknown = canonical.isna() & (given.isna() | blank_cells(out["measure_type"]))
    problems.add_mask("unknown_value", unknown.to_numpy(), out["_row"], src["measure_type"],
                      out["measure_type"],
                      " of measure type without a measure class; accepted types: "
                      + measure_type_list() + '; or name yours in a mapping file '
                      '([measure_types] "你们的措施名" = "lime")')
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
