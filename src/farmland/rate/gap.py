"""Closing the gap to the safe-utilisation target: which parcels need a measure.

Class 3 comes first: strict-control land is in principle fully controlled (原则上全部
落实), so **every** uncontrolled class-3 parcel is listed, whether or not its township
already passes the target. Then, township by township, class-2 parcels are added
until the target is reached. A class-2 *candidate* has no measure this year and no
crop exceedance; what a new safe-use measure would add to the numerator (``gain_mu``)
depends on the accounting mode (:mod:`farmland.rate.evidence`):

- the whole area when the parcel has compliant own crop samples this year;
- otherwise, in ``official`` accounting, the area × its township's (or the county's)
  crop compliance rate; in ``parcel_verified`` nothing (it is not proposed); in
  ``measures_only`` the whole area.

Class-2 parcels with a crop exceedance in the year are **excluded**: no measure of
this year can make them count (docs/decisions.md). Nor are parcels that already carry
a measure but do not count proposed again.

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

#: accepted orders of the class-2 rows; both sort by gain (largest first, ties by
#: parcel_id) since class 3 always comes first ("risk" is kept for scripts)
ORDERS = ("area", "risk")
PLAN_COLUMNS = ["scope", "township", "parcel_id", "final_class", "area_mu", "gain_mu",
                "proposed_measure_class", "reason", "cumulative_mu", "rate_after",
                "reaches_target"]
#: the scope of the class-3 rows: every uncontrolled class-3 parcel, before any target
CLASS3_SCOPE = "严格管控类全部管控 class 3 fully controlled"


def close_gap(
    parcels: pd.DataFrame,
    rate: RateResult | pd.DataFrame | None,
    *,
    crops: pd.DataFrame | None = None,
    year: int | None = None,
    target: float | None = None,
    order: str = "area",
    accounting: str | None = None,
    count_unverified: bool | None = None,
    county_name: str = COUNTY,
) -> pd.DataFrame:
    """Every uncontrolled class-3 parcel, then the smallest set of class-2 parcels whose
    measures bring each township and the county to target.

    The class-3 rows come first (``scope`` = :data:`CLASS3_SCOPE`) and their gain is
    counted before the class-2 rows. For each township still below target, class-2
    candidates are taken largest gain first until the township's numerator reaches
    ``target × denominator``. The count is minimal: a measure adds the parcel's gain to
    the numerator only (the denominator is fixed by the classes), so the k largest
    gains give the largest sum any k parcels can give, and the first prefix that
    reaches the gap is the fewest parcels that can. The county set is the union
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
        ``accounting`` and ``county_name``).
    target
        Target rate; ``None`` takes the rate result's target (0.91 when computed here).
    order
        Order of the class-2 candidates: ``"area"`` (largest gain first, minimal count)
        or ``"risk"`` (kept for scripts: class 3 now always comes first, so it equals
        ``"area"``).

    Returns
    -------
    pandas.DataFrame
        ``scope, township, parcel_id, final_class, area_mu, gain_mu,
        proposed_measure_class, reason, cumulative_mu, rate_after, reaches_target``: one
        row per proposed parcel; ``cumulative_mu`` (of ``gain_mu``) and ``rate_after``
        are within the scope (the class-3 rows, the township, or the county for the
        extra rows). A scope that cannot reach the target is
        logged as a warning and its last ``reaches_target`` is False.
    """
    if order not in ORDERS:
        raise InputError("unknown gap-plan order", value=order, fix="use 'area' or 'risk'")
    if not isinstance(rate, RateResult):
        rate = safe_utilisation_rate(parcels, rate, crops=crops, year=year,
                                     target=0.91 if target is None else target,
                                     accounting=accounting, count_unverified=count_unverified,
                                     county_name=county_name)
    target = rate.target if target is None else float(target)
    _check_same_parcels(parcels, rate)
    status = rate.parcels
    cand = _sorted_candidates(status, rate.accounting)
    is3 = cand["final_class"].eq(3).to_numpy(bool)
    class3 = _class3_rows(status, cand.loc[is3], target)
    extra_num = class3.groupby("township")["gain_mu"].sum()
    towns = _township_plan(status, cand.loc[~is3], target, extra_num)
    planned = float(class3["gain_mu"].sum() + towns["gain_mu"].sum())
    extra = _county_plan(status, cand.loc[~is3 & ~cand["parcel_id"].isin(towns["parcel_id"])],
                         planned, target, rate.county_name)
    plan = pd.concat([class3, towns, extra], ignore_index=True)[PLAN_COLUMNS]
    log.info("gap plan (%s accounting, target %.0f %%): %d uncontrolled class-3 parcel(s) "
             "%.1f 亩, then %d class-2 parcel(s) %.1f 亩", rate.accounting, 100 * target,
             len(class3), class3["area_mu"].sum(), len(plan) - len(class3),
             plan["area_mu"].sum() - class3["area_mu"].sum())
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


def _sorted_candidates(status: pd.DataFrame, accounting: str) -> pd.DataFrame:
    """Parcels that one new measure of the year would make count, with their gain."""
    st = status["status"]
    c2_free = st.eq("no_measure").to_numpy(bool)           # class 2 without a measure
    c3_free = st.isin(["uncontrolled", "loop_incomplete"]).to_numpy(bool)
    own = status["crop_sampled"].to_numpy(bool)
    ok2 = ~status["crop_exceeds"].to_numpy(bool)
    area = status["area_mu"].fillna(0.0).to_numpy(float)
    rate = _parcel_compliance(status)
    share2 = np.where(own, 1.0, {"official": rate, "parcel_verified": 0.0,
                                 "measures_only": 1.0}[accounting])
    # a class-3 parcel whose food crop exceeded this year becomes "controlled but
    # exceeding" with a measure: it still must be controlled, but it counts nothing
    # (except in measures_only accounting)
    food = status["food_crop_exceeds"].to_numpy(bool)
    share3 = np.where(food & (accounting != "measures_only"), 0.0, 1.0)
    gain = np.where(c3_free, area * share3, np.where(c2_free & ok2, area * share2, 0.0))
    keep = c3_free | (c2_free & ok2 & (gain > 0))
    skipped = c2_free & ~keep
    if skipped.any():
        log.info("%d class-2 parcel(s) without a measure cannot count this year (a crop "
                 "exceedance, or no crop evidence in %s accounting): not proposed (%s)",
                 int(skipped.sum()), accounting, first_rows(status.loc[skipped, "parcel_id"]))
    cand = status.loc[keep, ["township", "parcel_id", "final_class", "area_mu"]].copy()
    cand["gain_mu"] = gain[keep]
    is3 = cand["final_class"].eq(3).to_numpy(bool)
    cand["proposed_measure_class"] = np.where(is3, STRICT_CONTROL, SAFE_USE)
    loop = st.loc[keep].eq("loop_incomplete").to_numpy(bool)
    exceeded3 = is3 & (food & (accounting != "measures_only"))[keep]
    cand["reason"] = np.where(
        exceeded3, "严格管控类须落实管控；当年粮食超标，不计入 class 3 must be controlled; a "
                   "food crop exceeded this year, so it counts nothing",
        np.where(loop, "完成闭环管理环节（划定、巡查）complete the closed loop (designation, "
                       "inspection)",
        np.where(is3, "严格管控类原则上全部落实管控 class 3 must be controlled",
                 np.where(own[keep],
                          "安全利用措施，自有农产品达标 safe use, own crop samples comply",
                          "安全利用措施，按达标率计 safe use, counted at the crop compliance rate"
                          if accounting == "official" else "安全利用措施 safe use"))))
    return cand.sort_values(["gain_mu", "parcel_id"], ascending=[False, True], kind="stable")


def _parcel_compliance(status: pd.DataFrame) -> np.ndarray:
    """The crop compliance rate that applies to each parcel's township (0 when none)."""
    return np.nan_to_num(status["township_compliance_rate"].to_numpy(float))


def _class3_rows(status: pd.DataFrame, cand: pd.DataFrame, target: float) -> pd.DataFrame:
    """Every uncontrolled class-3 parcel, largest first (one scope: the county)."""
    c = cand.copy()
    c.insert(0, "scope", CLASS3_SCOPE)
    c["cumulative_mu"] = c["gain_mu"].cumsum()
    tot = _totals(status, pd.Series("all", index=status.index)).iloc[0]
    c["rate_after"] = (tot["num"] + c["cumulative_mu"]) / tot["den"] if tot["den"] else np.nan
    c["reaches_target"] = c["rate_after"] + TOLERANCE_MU / max(tot["den"], 1) >= target
    return c


def _totals(status: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """numerator / denominator (亩) per key."""
    den = status["area_mu"].where(status["final_class"].isin([2, 3]).fillna(False), 0.0)
    num = status["counted_mu"]
    return pd.DataFrame({"num": num, "den": den}).groupby(key.to_numpy()).sum()


def _take(cand: pd.DataFrame, group: pd.Series, num: pd.Series, den: pd.Series,
          target: float) -> pd.DataFrame:
    """Rows of ``cand`` (sorted) taken per group until ``num + Σarea ≥ target·den``.

    ``num``/``den`` are indexed by group (亩); ``group`` gives each candidate's group.
    """
    need = target * den - num
    c = cand.copy()
    c["need"] = group.map(need).to_numpy(float)
    c["cumulative_mu"] = c.groupby(group.to_numpy())["gain_mu"].cumsum()
    before = c["cumulative_mu"] - c["gain_mu"]
    c = c.loc[(before + TOLERANCE_MU < c["need"]).to_numpy(bool)].copy()
    g = group.loc[c.index].to_numpy()
    c["rate_after"] = (num.reindex(g).to_numpy() + c["cumulative_mu"].to_numpy()) / \
        den.reindex(g).to_numpy()
    c["reaches_target"] = c["cumulative_mu"] + TOLERANCE_MU >= c["need"]
    _warn_short(need, cand["gain_mu"].groupby(group.to_numpy()).sum())
    return c.drop(columns="need")


def _warn_short(need: pd.Series, available: pd.Series) -> None:
    """Log every group whose candidates together cannot close its gap."""
    short = need - available.reindex(need.index, fill_value=0.0)
    for scope in short.index[(need > TOLERANCE_MU) & (short > TOLERANCE_MU)]:
        log.warning("%s cannot reach the target with measures this year: still short by "
                    "%.2f 亩 after all candidates", scope, short[scope])


def _township_plan(status: pd.DataFrame, cand: pd.DataFrame, target: float,
                   planned: pd.Series) -> pd.DataFrame:
    tot = _totals(status, status["township"])
    tot["num"] += planned.reindex(tot.index, fill_value=0.0)
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
