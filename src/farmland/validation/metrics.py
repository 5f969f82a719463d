"""Area-weighted agreement, class-3 recall and precision, calibration (issue 15).

Every metric weighs a parcel by its area (亩): a wrong class on a large parcel costs
more than on a sliver. ``truth`` holds true classes 1/2/3 (never missing); ``predicted``
holds classes with ``<NA>``/NaN for unclassified parcels. Each function returns NaN
when its denominator is empty rather than a misleading 0 or 1.

>>> import numpy as np
>>> truth, pred, area = np.array([1, 2, 3, 3]), np.array([1, 1, 3, np.nan]), np.ones(4)
>>> class3_recall(truth, pred, area), contaminated_called_clean(truth, pred, area)
(0.5, 0.3333333333333333)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farmland.classify.outliers import hot_spot

__all__ = [
    "CALIBRATION_BINS", "SCREEN_COLUMNS", "agreement", "agreement_all", "calibration_floor",
    "calibration_gap", "class3_precision", "class3_recall", "class_metrics",
    "contaminated_called_clean", "pooled_calibration", "reliability_table", "screen_scores",
    "unclassified_share",
]

#: counts of :func:`screen_scores`
SCREEN_COLUMNS = ("gross_errors", "gross_flagged", "gross_hot_spot", "gross_unseen",
                  "real_flagged", "real_hot_spot")
#: edges of the ten probability bins: [0, 0.1), [0.1, 0.2), … [0.9, 1.0] (last one closed)
CALIBRATION_BINS = np.arange(11) / 10


def _arrays(truth, predicted, weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = pd.to_numeric(pd.Series(truth), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    p = pd.to_numeric(pd.Series(predicted), errors="coerce").to_numpy(dtype=float,
                                                                       na_value=np.nan)
    w = np.asarray(weight, dtype=float)
    if not (len(t) == len(p) == len(w)):
        raise ValueError(f"truth, predicted and weight differ in length: {len(t)}, {len(p)}, "
                         f"{len(w)}")
    if np.isnan(t).any():
        raise ValueError("every parcel needs a true class (1, 2 or 3)")
    return t, p, w


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def agreement(truth, predicted, weight) -> float:
    """Share of the *classified* area whose class equals the true class."""
    t, p, w = _arrays(truth, predicted, weight)
    done = ~np.isnan(p)
    return _ratio(w[done & (p == t)].sum(), w[done].sum())


def agreement_all(truth, predicted, weight) -> float:
    """Share of *all* area whose class equals the true class (unclassified = wrong)."""
    t, p, w = _arrays(truth, predicted, weight)
    return _ratio(w[p == t].sum(), w.sum())


def class3_recall(truth, predicted, weight) -> float:
    """True class-3 area classed 3, as a share of true class-3 area (unclassified = miss)."""
    t, p, w = _arrays(truth, predicted, weight)
    return _ratio(w[(t == 3) & (p == 3)].sum(), w[t == 3].sum())


def class3_precision(truth, predicted, weight) -> float:
    """Area classed 3 that is truly class 3, as a share of the area classed 3."""
    t, p, w = _arrays(truth, predicted, weight)
    return _ratio(w[(t == 3) & (p == 3)].sum(), w[p == 3].sum())


def contaminated_called_clean(truth, predicted, weight) -> float:
    """True class-2/3 area classed 1, as a share of the true class-2/3 area."""
    t, p, w = _arrays(truth, predicted, weight)
    return _ratio(w[(t >= 2) & (p == 1)].sum(), w[t >= 2].sum())


def unclassified_share(predicted, weight) -> float:
    """Share of the area left unclassified."""
    p = pd.to_numeric(pd.Series(predicted), errors="coerce").to_numpy(dtype=float,
                                                                       na_value=np.nan)
    w = np.asarray(weight, dtype=float)
    return _ratio(w[np.isnan(p)].sum(), w.sum())


def reliability_table(probability, observed, weight) -> pd.DataFrame:
    """Reliability by tenth of predicted probability, area-weighted.

    Parameters
    ----------
    probability
        Predicted probability of an event per parcel (e.g. ``p_class_3``); NaN parcels
        are left out.
    observed
        Whether the event happened (e.g. ``true_class == 3``), bool per parcel.
    weight
        Parcel area.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin of :data:`CALIBRATION_BINS`: ``bin`` (0–9), ``lower``,
        ``upper``, ``n_parcels``, ``area_share`` (of the area with a probability),
        ``predicted`` (area-weighted mean probability), ``observed`` (area-weighted
        frequency of the event) and ``gap = observed − predicted``.
    """
    prob = np.asarray(probability, dtype=float)
    obs = np.asarray(observed, dtype=bool)
    w = np.asarray(weight, dtype=float)
    keep = np.isfinite(prob)
    prob, obs, w = prob[keep], obs[keep], w[keep]
    bins = np.clip(np.searchsorted(CALIBRATION_BINS, prob, side="right") - 1, 0, 9)
    total = w.sum()
    rows = []
    for b in np.unique(bins):
        m = bins == b
        area = w[m].sum()
        if area <= 0:
            continue
        predicted = float((w[m] * prob[m]).sum() / area)
        observed_freq = float(w[m & obs].sum() / area)
        rows.append({"bin": int(b), "lower": CALIBRATION_BINS[b], "upper": CALIBRATION_BINS[b + 1],
                     "n_parcels": int(m.sum()), "area_share": float(area / total),
                     "predicted": predicted, "observed": observed_freq,
                     "gap": observed_freq - predicted})
    columns = ["bin", "lower", "upper", "n_parcels", "area_share", "predicted", "observed", "gap"]
    return pd.DataFrame(rows, columns=columns)


def calibration_gap(probability, observed, weight, *, min_area_share: float = 0.01) -> float:
    """Largest |observed − predicted| over the bins of :func:`reliability_table` holding
    at least ``min_area_share`` of the area; NaN without any probability."""
    table = reliability_table(probability, observed, weight)
    table = table[table["area_share"] >= min_area_share]
    return float(table["gap"].abs().max()) if len(table) else float("nan")


def class_metrics(truth, predicted, weight, probabilities: pd.DataFrame | None = None,
                  *, min_area_share: float = 0.01) -> dict[str, float]:
    """All harness metrics of one classification.

    Parameters
    ----------
    truth, predicted, weight
        True classes, predicted classes (``<NA>`` = unclassified) and parcel areas.
    probabilities
        Optional ``p_class_1``, ``p_class_2``, ``p_class_3`` columns aligned with
        ``truth`` (NaN where the method gives none).

    Returns
    -------
    dict
        ``agreement``, ``agreement_all``, ``class3_recall``, ``class3_precision``,
        ``contaminated_called_clean``, ``unclassified_share``, ``calibration_gap_1..3``
        ``calibration_gap`` (their maximum; NaN without probabilities) and
        ``calibration_floor`` (the gap a perfectly calibrated predictor shows on the same
        parcels, :func:`calibration_floor`).
    """
    t, p, w = _arrays(truth, predicted, weight)
    out = {
        "agreement": agreement(t, p, w),
        "agreement_all": agreement_all(t, p, w),
        "class3_recall": class3_recall(t, p, w),
        "class3_precision": class3_precision(t, p, w),
        "contaminated_called_clean": contaminated_called_clean(t, p, w),
        "unclassified_share": unclassified_share(p, w),
    }
    gaps = []
    for k in (1, 2, 3):
        col = f"p_class_{k}"
        gap = (calibration_gap(probabilities[col].to_numpy(dtype=float), t == k, w,
                               min_area_share=min_area_share)
               if probabilities is not None and col in probabilities else float("nan"))
        out[f"calibration_gap_{k}"] = gap
        gaps.append(gap)
    finite = [g for g in gaps if np.isfinite(g)]
    out["calibration_gap"] = max(finite) if finite else float("nan")
    out["calibration_floor"] = (calibration_floor(probabilities, w,
                                                  min_area_share=min_area_share)
                                if probabilities is not None and finite else float("nan"))
    return out


def calibration_floor(probabilities: pd.DataFrame, weight, *, draws: int = 20, seed: int = 0,
                      min_area_share: float = 0.01) -> float:
    """The calibration gap a *perfectly calibrated* predictor shows on these parcels.

    Each draw gives every parcel a class drawn from its own ``p_class_1..3`` (so the
    probabilities are exactly right by construction) and takes the largest
    :func:`calibration_gap` of the three; the result is the mean over ``draws`` draws
    (seeded). A gap at or below this floor is sampling noise of the bins, not
    miscalibration; the parcels are drawn independently, so on real, spatially
    correlated errors the noise is larger still. NaN without probabilities.
    """
    p = probabilities[["p_class_1", "p_class_2", "p_class_3"]].to_numpy(dtype=float)
    w = np.asarray(weight, dtype=float)
    keep = np.isfinite(p).all(axis=1)
    if not keep.any():
        return float("nan")
    p, w = p[keep], w[keep]
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(draws):
        u = rng.random(len(p))
        drawn = np.where(u < p[:, 0], 1, np.where(u < p[:, 0] + p[:, 1], 2, 3))
        gaps.append(max(calibration_gap(p[:, k - 1], drawn == k, w,
                                        min_area_share=min_area_share) for k in (1, 2, 3)))
    return float(np.nanmean(gaps))


def pooled_calibration(probabilities: pd.DataFrame, true_class, weight, *,
                       min_area_share: float = 0.01) -> dict[str, float]:
    """Calibration of ``p_class_1..3`` over all the given parcels at once (e.g. every
    county of the harness): ``gap_1..3`` (:func:`calibration_gap` per class), ``gap``
    (their largest) and ``floor`` (:func:`calibration_floor` on the same parcels)."""
    t = np.asarray(true_class, dtype=float)
    out = {f"gap_{k}": calibration_gap(probabilities[f"p_class_{k}"].to_numpy(dtype=float),
                                       t == k, weight, min_area_share=min_area_share)
           for k in (1, 2, 3)}
    finite = [g for g in out.values() if np.isfinite(g)]
    out["gap"] = max(finite) if finite else float("nan")
    out["floor"] = calibration_floor(probabilities, weight, min_area_share=min_area_share)
    return out


def screen_scores(outliers: pd.DataFrame | None, gross: pd.Series | None) -> dict[str, int]:
    """The outlier screen against the values known to carry a gross error.

    ``outliers``: the run's ``outliers.csv`` rows (``sample_id``, ``element``, ``action``);
    ``gross``: per sample id, the comma list of elements with a gross error
    (:attr:`farmland.validation.synthetic.SyntheticCounty.sample_truth`). Returns counts
    of values (:data:`SCREEN_COLUMNS`): the gross errors, those listed as suspects
    (``flagged``: left out of the surfaces under ``--outliers flag``), those kept as
    corroborated hot spots, those not listed at all (``unseen``), and the real values
    (no gross error) listed as suspects or kept as hot spots.

    >>> import pandas as pd
    >>> listed = pd.DataFrame({"sample_id": ["S1", "S2", "S3"], "element": ["cd", "pb", "cd"],
    ...                        "action": ["removed", "removed",
    ...                                   "kept in surfaces and variograms: corroborated hot spot"]})
    >>> screen_scores(listed, pd.Series({"S1": "cd", "S4": "hg,as"}))["gross_unseen"]
    2
    """
    errors = {(str(sid), el.strip().lower()) for sid, cell in
              ({} if gross is None else gross).items() if isinstance(cell, str)
              for el in cell.split(",") if el.strip()}
    if outliers is None or outliers.empty:
        listed, kept = [], np.zeros(0, dtype=bool)
    else:
        listed = list(zip(outliers["sample_id"].astype(str),
                          outliers["element"].astype(str).str.lower(), strict=True))
        kept = hot_spot(outliers["action"]).to_numpy()
    is_gross = np.array([key in errors for key in listed], dtype=bool)
    return {"gross_errors": len(errors),
            "gross_flagged": int((is_gross & ~kept).sum()),
            "gross_hot_spot": int((is_gross & kept).sum()),
            "gross_unseen": len(errors - set(listed)),
            "real_flagged": int((~is_gross & ~kept).sum()),
            "real_hot_spot": int((~is_gross & kept).sum())}
