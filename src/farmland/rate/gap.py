"""Closing the gap to the safe-utilisation target: which parcels need a measure.

A *candidate* is a parcel whose status would turn into "counted" by adding one
measure of the accounting year:

- class 3 without a strict-control measure → propose ``strict_control``;
- class 2 without a counting measure and without a crop exceedance in the year →
  propose ``safe_use``; when unverified area does not count
  (``count_unverified=False``) the parcel also needs a compliant crop sample of
  the year, since a new measure without crop data would not count either.

Class-2 parcels with a crop exceedance in the year are **excluded**: the rate
counts class-2 area only when no crop of that year exceeds, so no measure of this
year can make them count (docs/decisions.md). Nor are parcels that already
carry a measure but do not count (exceeded, unverified) proposed again.

Only ``area_mu`` is used (亩); no geometry, so any CRS.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from farmland.errors import InputError, first_rows
from farmland.rate.accounting import (
    SAFE_USE,
    STRICT_CONTROL,
    TOLERANCE_MU,
    RateResult,
    parcel_ids,
    safe_utilisation_rate,
)
from farmland.vocabulary import COUNTY

log = logging.getLogger(__name__)

#: sort keys (column, ascending) of each order; parcel_id last makes ties reproducible
ORDERS = {
    "area": (("area_mu", False), ("parcel_id", True)),
    "risk": (("final_class", False), ("area_mu", False), ("parcel_id", True)),
}
PLAN_COLUMNS = ["scope", "township", "parcel_id", "final_class", "area_mu",
                "proposed_measure_class", "cumulative_mu", "rate_after", "reaches_target"]


def close_gap(
    parcels: pd.DataFrame,
    rate: RateResult | pd.DataFrame | None,
    *,
    crops: pd.DataFrame | None = None,
    year: int | None = None,
    target: float | None = None,
    order: str = "area",
    count_unverified: bool = True,
    county_name: str = COUNTY,
) -> pd.DataFrame:
    """Smallest set of parcels whose measures bring each township and the county to target.

    For each township below target, candidates are taken in ``order`` until the
    township's numerator reaches ``target × denominator``. With ``order="area"``
    (largest first) the count is minimal: a measure adds the parcel's area to the
    numerator only (the denominator is fixed by the classes), so the k largest
    candidates give the largest sum any k parcels can give, and the first prefix
    that reaches the gap is the fewest parcels that can. ``order="risk"`` takes
    class 3 first, then by area (not minimal in count). The county set is the union
    of the township sets. It always reaches the county target when every township
    reaches its own (the county numerator and denominator are the township sums);
    when some township cannot (too few candidates), further candidates from all
    townships are added in the same order (``scope`` = ``county_name``).

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (``parcel_id``, ``township``, ``final_class``,
        ``area_mu`` in 亩).
    rate
        A :class:`~farmland.rate.accounting.RateResult` of these parcels, or the measures
        ledger (then the rate is computed with ``crops``, ``year``, ``target``,
        ``count_unverified`` and ``county_name``).
    target
        Target rate; ``None`` takes the rate result's target (0.91 when computed here).
    order
        ``"area"`` (largest first, minimal count) or ``"risk"`` (class 3 first).

    Returns
    -------
    pandas.DataFrame
        ``scope, township, parcel_id, final_class, area_mu, proposed_measure_class,
        cumulative_mu, rate_after, reaches_target``: one row per proposed parcel;
        ``cumulative_mu`` and ``rate_after`` are within the scope (the township, or
        the county for the extra rows). A scope that cannot reach the target is
        logged as a warning and its last ``reaches_target`` is False.
    """
    if order not in ORDERS:
        raise InputError("unknown gap-plan order", value=order, fix="use 'area' or 'risk'")
    if not isinstance(rate, RateResult):
        rate = safe_utilisation_rate(parcels, rate, crops=crops, year=year,
                                     target=0.91 if target is None else target,
                                     count_unverified=count_unverified,
                                     county_name=county_name)
    target = rate.target if target is None else float(target)
    _check_same_parcels(parcels, rate)
    status = rate.parcels
    cand = _sorted_candidates(status, rate.count_unverified, order)
    towns = _township_plan(status, cand, target)
    extra = _county_plan(status, cand.loc[~cand["parcel_id"].isin(towns["parcel_id"])],
                         towns["area_mu"].sum(), target, rate.county_name)
    plan = pd.concat([towns, extra], ignore_index=True)[PLAN_COLUMNS]
    log.info("gap plan (%s order, target %.0f %%): %d parcel(s), %.1f 亩", order,
             100 * target, len(plan), plan["area_mu"].sum())
    return plan


def apply_gap_plan(measures: pd.DataFrame | None, plan: pd.DataFrame, year: int) -> pd.DataFrame:
    """Measures ledger with the plan's proposed measures added for ``year`` (new frame).

    Added rows have ``measure_type`` ``planned_safe_use`` / ``planned_strict_control``
    and ``measure_class`` from ``proposed_measure_class``; other columns are <NA>.
    """
    added = pd.DataFrame({
        "parcel_id": plan["parcel_id"].astype("str").to_numpy(),
        "measure_type": ("planned_" + plan["proposed_measure_class"].astype("str")).to_numpy(),
        "measure_class": plan["proposed_measure_class"].astype("str").to_numpy(),
        "year": pd.array([int(year)] * len(plan), dtype="Int64"),
    }).drop_duplicates("parcel_id")
    if measures is None or measures.empty:
        return added.reset_index(drop=True)
    return pd.concat([measures, added], ignore_index=True)


def _check_same_parcels(parcels: pd.DataFrame, rate: RateResult) -> None:
    ids = set(parcel_ids(parcels["parcel_id"]))
    missing = set(rate.parcels["parcel_id"]) ^ ids
    if missing:
        raise InputError("the rate result was computed on other parcels",
                         row=first_rows(sorted(missing)),
                         fix="pass the parcels the rate was computed on")


def _sorted_candidates(status: pd.DataFrame, count_unverified: bool,
                       order: str) -> pd.DataFrame:
    """Parcels that one new measure of the year would make count, in plan order."""
    no_measure = status["status"].eq("no_measure").to_numpy(bool)
    c2 = status["final_class"].eq(2).fillna(False).to_numpy(bool)
    c3 = status["final_class"].eq(3).fillna(False).to_numpy(bool)
    ok2 = ~status["crop_exceeds"].to_numpy(bool)
    if not count_unverified:
        ok2 &= status["crop_sampled"].to_numpy(bool)
    keep = no_measure & (c3 | (c2 & ok2))
    skipped = no_measure & c2 & ~ok2
    if skipped.any():
        log.info("%d class-2 parcel(s) without a measure cannot count this year (crop "
                 "exceedance or, with count_unverified off, no crop sample): not proposed "
                 "(%s)", int(skipped.sum()), first_rows(status.loc[skipped, "parcel_id"]))
    cand = status.loc[keep, ["township", "parcel_id", "final_class", "area_mu"]].copy()
    cand["proposed_measure_class"] = np.where(
        cand["final_class"].eq(3).to_numpy(bool), STRICT_CONTROL, SAFE_USE)
    cols, asc = zip(*ORDERS[order], strict=True)
    return cand.sort_values(list(cols), ascending=list(asc), kind="stable")


def _totals(status: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """numerator / denominator (亩) per key."""
    den = status["area_mu"].where(status["final_class"].isin([2, 3]).fillna(False), 0.0)
    num = status["area_mu"].where(status["counted"], 0.0)
    return pd.DataFrame({"num": num, "den": den}).groupby(key.to_numpy()).sum()


def _take(cand: pd.DataFrame, group: pd.Series, num: pd.Series, den: pd.Series,
          target: float) -> pd.DataFrame:
    """Rows of ``cand`` (sorted) taken per group until ``num + Σarea ≥ target·den``.

    ``num``/``den`` are indexed by group (亩); ``group`` gives each candidate's group.
    """
    need = target * den - num
    c = cand.copy()
    c["need"] = group.map(need).to_numpy(float)
    c["cumulative_mu"] = c.groupby(group.to_numpy())["area_mu"].cumsum()
    before = c["cumulative_mu"] - c["area_mu"]
    c = c.loc[(before + TOLERANCE_MU < c["need"]).to_numpy(bool)].copy()
    g = group.loc[c.index].to_numpy()
    c["rate_after"] = (num.reindex(g).to_numpy() + c["cumulative_mu"].to_numpy()) / \
        den.reindex(g).to_numpy()
    c["reaches_target"] = c["cumulative_mu"] + TOLERANCE_MU >= c["need"]
    _warn_short(need, cand["area_mu"].groupby(group.to_numpy()).sum())
    return c.drop(columns="need")


def _warn_short(need: pd.Series, available: pd.Series) -> None:
    """Log every group whose candidates together cannot close its gap."""
    short = need - available.reindex(need.index, fill_value=0.0)
    for scope in short.index[(need > TOLERANCE_MU) & (short > TOLERANCE_MU)]:
        log.warning("%s cannot reach the target with measures this year: still short by "
                    "%.2f 亩 after all candidates", scope, short[scope])


def _township_plan(status: pd.DataFrame, cand: pd.DataFrame, target: float) -> pd.DataFrame:
    tot = _totals(status, status["township"])
    plan = _take(cand, cand["township"], tot["num"], tot["den"], target)
    plan.insert(0, "scope", plan["township"])
    return plan.sort_values(["township", "cumulative_mu"], kind="stable")


def _county_plan(status: pd.DataFrame, cand: pd.DataFrame, planned_mu: float,
                 target: float, county_name: str) -> pd.DataFrame:
    """Extra parcels when the union of the township sets leaves the county short."""
    tot = _totals(status, pd.Series(county_name, index=status.index))
    tot["num"] += planned_mu
    plan = _take(cand, pd.Series(county_name, index=cand.index), tot["num"], tot["den"],
                 target)
    plan["cumulative_mu"] += planned_mu
    plan.insert(0, "scope", county_name)
    return plan
