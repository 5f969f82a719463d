"""Soil points into classes (GB 15618-2018, domain.md §2).

:func:`classify_samples` gives every soil sample its pH band, a class per
class-driving element (Cd, Hg, As, Pb, Cr), the single-factor index Pᵢ = Cᵢ/Sᵢ,
screening flags for Cu/Ni/Zn/organics, the point class (worst of the five) and the
driving element. Samples that cannot be classified (no pH, a missing metal) are
kept, marked ``usable = False`` with the reason — never silently class 1.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.errors import InputError
from farmland.rules import Rules, load_rules
from farmland.standards import (
    CLASS_ELEMENTS,
    FLAG_ELEMENTS,
    ORGANIC_ITEMS,
    load_standard,
)

log = logging.getLogger(__name__)

#: pH used to look up each band when a sample has no pH and the rules say
#: "strictest_band" (any value inside the band works; these are mid-band).
_BAND_PH = (5.0, 6.0, 7.0, 8.0)


def classify_samples(
    samples: gpd.GeoDataFrame,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    standard=None,
    rules: Rules | None = None,
    placed: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Classify soil samples point by point.

    Parameters
    ----------
    samples
        Canonical soil samples (docs/schema.md): ``sample_id``, ``ph``, ``cd``, ``hg``,
        ``as``, ``pb``, ``cr`` (mg/kg), optional ``cu``, ``ni``, ``zn``, organics,
        ``<el>_censored`` and ``landuse``; points in a metric CRS.
    parcels
        Canonical parcels in the same CRS. Gives each sample its ``parcel_id`` and,
        where the sample carries no land use, the parcel's land use.
    standard
        A :class:`farmland.standards.Standard`; default GB 15618-2018 as shipped.
    rules
        Rule profile (:func:`farmland.rules.load_rules`); default county practice.
    placed
        ``parcel_id`` and ``landuse_used`` of these samples from an earlier call with the
        same ``parcels`` (same rows, points and land use; e.g. the leave-one-out rule's
        next pass, which changes values only): taken instead of looked up again. Ignored
        unless its index is the samples'.

    Returns
    -------
    geopandas.GeoDataFrame
        A new frame: the input columns plus ``parcel_id``, ``landuse_used``,
        ``ph_band`` (Int8, <NA> without pH), ``class_<el>`` and ``pi_<el>`` for the
        five class-driving elements, ``pi_<el>`` and ``exceeds_screening_<el>`` for
        Cu/Ni/Zn/organics present, ``point_class`` (Int8, <NA> when unusable),
        ``driving_element`` (None for class 1), ``usable``, ``unusable_reason``.
    """
    std = standard or load_standard()
    rules = rules or load_rules()
    require_numbers(samples, ("ph", *CLASS_ELEMENTS, *FLAG_ELEMENTS, *ORGANIC_ITEMS))
    out = samples.copy()
    if placed is not None and placed.index.equals(out.index):
        out["parcel_id"], out["landuse_used"] = placed["parcel_id"], placed["landuse_used"]
    else:
        out["parcel_id"] = _containing_parcel_ids(out, parcels)
        out["landuse_used"] = _landuse_used(out, parcels)
    ph = out["ph"].to_numpy(dtype=float, na_value=np.nan)
    bands = std.ph_bands(ph)
    out["ph_band"] = pd.array(np.where(bands < 0, pd.NA, bands), dtype="Int8")
    strictest = rules.get("points", "missing_ph") == "strictest_band"

    classes = np.zeros((len(out), len(CLASS_ELEMENTS)), dtype=np.int8)
    indices = np.full((len(out), len(CLASS_ELEMENTS)), np.nan)
    reasons: list[list[str]] = [[] for _ in range(len(out))]
    landuse = out["landuse_used"].to_numpy(dtype=object)
    for j, el in enumerate(CLASS_ELEMENTS):
        values, censored = _values(out, el)
        screen = _thresholds(std.screening_values, el, landuse, ph, strictest)
        interv = _thresholds(lambda e, _lu, p: std.intervention_values(e, p), el, landuse, ph,
                             strictest)
        cls = np.where(values <= screen, 1, np.where(values <= interv, 2, 3)).astype(np.int8)
        # a censored value with no number ("ND") is below detection: class 1 for that element
        nd = censored & np.isnan(values)
        cls[nd] = 1
        if nd.any():
            log.info("%d soil sample(s) report %s as not detected without a limit: counted as "
                     "below the screening value for %s", int(nd.sum()), el, el)
        cls[np.isnan(values) & ~censored] = 0
        cls[np.isnan(screen)] = 0
        classes[:, j] = cls
        indices[:, j] = values / screen
        out[f"class_{el}"] = pd.array(np.where(cls == 0, pd.NA, cls), dtype="Int8")
        out[f"pi_{el}"] = np.round(indices[:, j], 4)
        for i in np.flatnonzero(np.isnan(values) & ~censored):
            reasons[i].append(f"missing {el}")
    no_ph = np.isnan(ph) & (not strictest)
    for i in np.flatnonzero(no_ph):
        reasons[i].insert(0, "missing pH")

    flag_raise = _screening_flags(out, std, landuse, ph, strictest)
    _point_class(out, classes, indices, reasons, no_ph, rules, flag_raise)
    n_bad = int((~out["usable"]).sum())
    if n_bad:
        log.warning("%d of %d soil samples cannot be classified (first: %s); they are kept in "
                    "the samples layer with unusable_reason and not used for parcels",
                    n_bad, len(out), ", ".join(out.loc[~out["usable"], "sample_id"].astype(str)[:5]))
    return out


def require_numbers(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Refuse text in value columns instead of reading it as "missing".

    A frame built by hand may still hold ``ND``, ``<0.05`` or ``0,35``; those values are
    parsed by the readers (:func:`farmland.read_soil_samples` accepts a frame too).

    Raises
    ------
    InputError
        Naming the column, the first row with text and the value.
    """
    for col in columns:
        if col not in frame or not pd.api.types.is_object_dtype(frame[col].dtype):
            continue
        values = frame[col]
        text = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        if text.any():
            row = text.to_numpy().nonzero()[0][0]
            ident = frame["sample_id"].iloc[row] if "sample_id" in frame else row + 1
            raise InputError("value is text, not a number", file="(in-memory samples)",
                             row=ident, column=col, value=values.iloc[row],
                             fix="read the frame with farmland.read_soil_samples(frame) first: "
                                 "it parses ND, <DL and µg/kg values")


def _values(frame: pd.DataFrame, element: str) -> tuple[np.ndarray, np.ndarray]:
    """Concentrations (float, NaN when missing) and the below-detection mask."""
    if element in frame:
        values = pd.to_numeric(frame[element], errors="coerce").to_numpy(dtype=float,
                                                                         na_value=np.nan)
    else:
        values = np.full(len(frame), np.nan)
    col = f"{element}_censored"
    censored = (frame[col].fillna(False).to_numpy(dtype=bool) if col in frame
                else np.zeros(len(frame), dtype=bool))
    return values, censored


def _thresholds(lookup, element: str, landuse: np.ndarray, ph: np.ndarray,
                strictest: bool) -> np.ndarray:
    """Threshold per sample; without pH either NaN or (strictest_band) the lowest band value."""
    values = np.array(lookup(element, landuse, ph), dtype=float)   # a copy: written below
    if strictest:
        missing = np.isnan(ph)
        if missing.any():
            per_band = [np.asarray(lookup(element, landuse[missing], np.full(missing.sum(), b)))
                        for b in _BAND_PH]
            values[missing] = np.min(np.vstack(per_band), axis=0)
    return values


def _screening_flags(out: pd.DataFrame, std, landuse: np.ndarray, ph: np.ndarray,
                     strictest: bool) -> np.ndarray:
    """Add ``pi_`` and ``exceeds_screening_`` for Cu/Ni/Zn/organics; return 'any exceeds'."""
    any_exceeds = np.zeros(len(out), dtype=bool)
    for el in (*FLAG_ELEMENTS, *ORGANIC_ITEMS):
        if el not in out:
            continue
        values, _ = _values(out, el)
        if el in ORGANIC_ITEMS:
            screen = np.full(len(out), std.screening_value(el, "unknown", np.nan))
        else:
            screen = _thresholds(std.screening_values, el, landuse, ph, strictest)
        with np.errstate(invalid="ignore"):
            exceeds = values > screen
        out[f"pi_{el}"] = np.round(values / screen, 4)
        out[f"exceeds_screening_{el}"] = exceeds
        any_exceeds |= exceeds
    return any_exceeds


def _point_class(out: pd.DataFrame, classes: np.ndarray, indices: np.ndarray,
                 reasons: list[list[str]], no_ph: np.ndarray, rules: Rules,
                 flag_raise: np.ndarray) -> None:
    """Worst-of-five point class, driving element and usability (in place on ``out``)."""
    ignore_missing = rules.get("points", "missing_metal") == "ignore"
    missing_metal = (classes == 0).any(axis=1)
    no_metal = (classes == 0).all(axis=1)
    usable = ~no_ph & ~no_metal & (~missing_metal | ignore_missing)
    point = classes.max(axis=1)
    if rules.get("points", "flag_elements_raise_class"):
        point = np.where(flag_raise & (point == 1), 2, point)
    # driving element: the worst class, ties broken by the larger Pi
    key = classes * 1e7 + np.nan_to_num(np.minimum(indices, 1e6), nan=-1.0)
    driver = np.array(CLASS_ELEMENTS, dtype=object)[np.argmax(key, axis=1)]
    out["point_class"] = pd.array(np.where(usable, point, pd.NA), dtype="Int8")
    out["driving_element"] = np.where(usable & (point >= 2), driver, None)
    out["usable"] = usable
    out["unusable_reason"] = [
        "; ".join(r) if not ok else ("; ".join(r) + " (ignored by rules)" if r else "")
        for r, ok in zip(reasons, usable)
    ]


def _containing_parcel_ids(samples: gpd.GeoDataFrame,
                           parcels: gpd.GeoDataFrame | None) -> pd.Series:
    """Id of the parcel holding each sample (on a shared edge: the smallest id); <NA> outside."""
    ids = pd.Series(pd.NA, index=samples.index, dtype="object")
    if parcels is None or len(samples) == 0:
        return ids
    if samples.crs != parcels.crs:
        raise ValueError(f"samples ({samples.crs}) and parcels ({parcels.crs}) must share a CRS")
    tree = parcels.sindex
    s_idx, p_idx = tree.query(samples.geometry.values, predicate="intersects")
    if len(s_idx):
        found = pd.DataFrame({"s": s_idx, "pid": parcels["parcel_id"].to_numpy()[p_idx]})
        first = found.sort_values(["s", "pid"]).drop_duplicates("s")
        ids.iloc[first["s"].to_numpy()] = first["pid"].to_numpy()
    return ids


def _landuse_used(samples: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame | None) -> pd.Series:
    """Sample's own land use, else its parcel's, else 'unknown' (the stricter column)."""
    own = (samples["landuse"].astype(object) if "landuse" in samples
           else pd.Series(None, index=samples.index, dtype=object))
    own = own.where(~own.isin(["unknown", ""]) & own.notna(), None)
    if parcels is not None and "landuse" in parcels:
        by_parcel = parcels.set_index("parcel_id")["landuse"].astype(object)
        by_parcel = by_parcel[~by_parcel.index.duplicated()]
        from_parcel = samples["parcel_id"].map(by_parcel)
        own = own.where(own.notna(), from_parcel)
    n_unknown = int(own.isna().sum())
    if n_unknown:
        log.info("%d soil sample(s) have no land use of their own and lie in no parcel: "
                 "using the stricter of the paddy/other columns for them", n_unknown)
    return own.fillna("unknown").astype(object)
