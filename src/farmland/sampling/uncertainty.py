"""How close a parcel is to another class: threshold ratios of its samples and the
probability of a class other than its own. Shared by the uncertain-parcel flag
(:mod:`farmland.sampling.flags`) and the sampling planner."""

from __future__ import annotations

import numpy as np
import pandas as pd

from farmland import classes as C
from farmland.standards import CLASS_ELEMENTS, load_standard

__all__ = ["other_class_probability", "parcel_threshold_proximity", "sample_threshold_ratios"]


def sample_threshold_ratios(samples: pd.DataFrame, *, standard=None) -> pd.DataFrame:
    """For every sample, the class-element value closest to a threshold.

    The ratio to the screening value is the sample's ``pi_<el>`` (value / screening,
    as classification computed it) when present; the ratio to the intervention value
    is value / intervention(pH) from GB 15618 (NaN without pH).

    Returns
    -------
    pandas.DataFrame
        Index ``sample_id``; ``element``, ``kind`` (``screening``/``intervention``),
        ``ratio`` and ``closeness`` = |ratio − 1| of the closest pair. Samples without
        any usable ratio are left out.
    """
    if samples.empty or "sample_id" not in samples:
        return pd.DataFrame(columns=["element", "kind", "ratio", "closeness"])
    std = standard or load_standard()
    ph = pd.to_numeric(samples["ph"], errors="coerce").to_numpy(dtype=float, na_value=np.nan) \
        if "ph" in samples else np.full(len(samples), np.nan)
    ph = np.where((ph >= std.ph_range[0]) & (ph <= std.ph_range[1]), ph, np.nan)
    lu = (samples["landuse_used"] if "landuse_used" in samples else
          samples["landuse"] if "landuse" in samples else pd.Series("unknown", index=samples.index))
    frames = []
    for el in CLASS_ELEMENTS:
        if el not in samples:
            continue
        value = pd.to_numeric(samples[el], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        pi = (pd.to_numeric(samples[f"pi_{el}"], errors="coerce").to_numpy(dtype=float,
                                                                         na_value=np.nan)
              if f"pi_{el}" in samples else np.full(len(samples), np.nan))
        with np.errstate(invalid="ignore", divide="ignore"):
            screen = std.screening_values(el, lu.astype(object).to_numpy(), ph)
            pi = np.where(np.isnan(pi), value / screen, pi)
            interv = np.where(np.isnan(ph), np.nan, value / std.intervention_values(el, ph))
        for kind, ratio in (("screening", pi), ("intervention", interv)):
            frames.append(pd.DataFrame({"sample_id": samples["sample_id"].astype(str).to_numpy(),
                                        "element": el, "kind": kind, "ratio": ratio}))
    if not frames:
        return pd.DataFrame(columns=["element", "kind", "ratio", "closeness"])
    long = pd.concat(frames, ignore_index=True).dropna(subset=["ratio"])
    long = long.loc[long["ratio"] > 0]
    long["closeness"] = (long["ratio"] - 1).abs()
    best = long.sort_values(["closeness", "sample_id"], kind="stable").drop_duplicates("sample_id")
    return best.set_index("sample_id")[["element", "kind", "ratio", "closeness"]]


def parcel_threshold_proximity(parcels: pd.DataFrame, samples: pd.DataFrame, *,
                               standard=None) -> pd.DataFrame:
    """Closest-to-threshold value among the samples inside each points-rule parcel.

    Only parcels whose class rests on their own samples (``rule`` starting with
    ``points:``) are looked at: for interpolated parcels the listed samples lie
    elsewhere and say little about the parcel's own value.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``parcels``: ``near_element``, ``near_kind``, ``near_ratio``,
        ``closeness`` (NaN where no information).
    """
    out = pd.DataFrame(index=parcels.index, columns=["near_element", "near_kind"], dtype=object)
    out["near_ratio"] = np.nan
    out["closeness"] = np.nan
    if "sample_ids" not in parcels or "rule" not in parcels or samples.empty:
        return out
    pts = parcels["rule"].astype(str).str.startswith("points:")
    ids = parcels.loc[pts, "sample_ids"].astype(object).dropna().astype(str).str.split(",")
    long = ids.explode().str.strip()
    long = long[long != ""]
    if long.empty:
        return out
    ratios = sample_threshold_ratios(samples, standard=standard)
    joined = pd.DataFrame({"row": long.index, "sample_id": long.to_numpy()}).join(
        ratios, on="sample_id", how="inner")
    best = joined.sort_values(["closeness", "sample_id"], kind="stable").drop_duplicates("row")
    best = best.set_index("row")
    out.loc[best.index, "near_element"] = best["element"]
    out.loc[best.index, "near_kind"] = best["kind"]
    out.loc[best.index, "near_ratio"] = best["ratio"].astype(float)
    out.loc[best.index, "closeness"] = best["closeness"].astype(float)
    return out


def other_class_probability(parcels: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Largest probability and largest area share of a class other than the soil class.

    The reference class is ``soil_class`` when present (``p_class_*`` describe the soil
    estimate), else ``final_class``. NaN where the inputs are missing.
    """
    ref_col = "soil_class" if "soil_class" in parcels else "final_class"
    ref = C.as_class(parcels[ref_col].to_numpy()).to_numpy(dtype=float, na_value=np.nan)
    result = []
    for prefix in ("p_class_", "share_"):
        cols = [f"{prefix}{c}" for c in C.CLASS_CODES]
        if not all(c in parcels for c in cols):
            result.append(pd.Series(np.nan, index=parcels.index))
            continue
        p = parcels[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float,
                                                                        na_value=np.nan)
        own = np.arange(1, 4)[None, :] == ref[:, None]
        masked = np.where(own, -np.inf, p)
        with np.errstate(invalid="ignore"):
            best = np.max(np.where(np.isnan(masked), -np.inf, masked), axis=1)
        best[np.isnan(ref) | np.all(np.isnan(p), axis=1) | ~np.isfinite(best)] = np.nan
        result.append(pd.Series(best, index=parcels.index))
    return result[0], result[1]
