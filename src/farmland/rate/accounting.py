"""Safe-utilisation rate (安全利用率) for the county and each township (domain.md §4).

::

    rate = (A₂ achieved + A₃ controlled) / (A₂ + A₃)

Areas are in 亩 (the ``area_mu`` column of the classification ``parcels`` layer,
already the net farmland area when ``TBDLMJ`` was given); hm² = 亩 / 15. No
geometry is used, so the CRS of the inputs does not matter here.

The per-parcel status (:attr:`RateResult.parcels`) is the single source for the
table, the gap plan (:mod:`farmland.rate.gap`) and run-to-run diffs (:mod:`farmland.runs.diff`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from farmland.errors import InputError
from farmland.rate.evidence import (
    ACCOUNTING_MODES,
    DEFAULT_MODE,
    MIN_TOWNSHIP_SAMPLES,
    compliance_rates,
    counted_mu,
)
from farmland.rate.inputs import (
    MEASURE_CLASSES,
    SAFE_USE,
    STRICT_CONTROL,
    crop_frame,
    measure_frame,
    parcel_frame,
    parcel_ids,
    select_year,
    unknown_mask,
)
from farmland.vocabulary import COUNTY

__all__ = ["CROP_REMOVING_MEASURES", "MEASURE_CLASSES", "SAFE_USE", "STATUSES",
           "STRICT_CONTROL", "TOLERANCE_MU", "RateResult", "finish_table", "parcel_ids",
           "safe_utilisation_rate"]

log = logging.getLogger(__name__)


#: strict-control measure types that take the food crop off the parcel; on class-2
#: land they count as a safe-use measure (docs/decisions.md). Canonical names
#: and the Chinese names a ledger may still carry.
CROP_REMOVING_MEASURES = frozenset({
    "crop_structure_change", "ban_zone", "return_to_forest_grass", "fallow",
    "种植结构调整", "特定农产品禁止生产区", "划定特定农产品禁止生产区域",
    "退耕还林还草", "退耕还林", "退耕还草", "休耕",
})

MU_PER_HM2 = 15.0  # 1 hm² = 15 亩
#: area (亩) below which a shortfall is treated as rounding noise (0.0007 m²)
TOLERANCE_MU = 1e-6

#: per-parcel statuses, in the order of the accounting layer's legend
STATUSES = ("achieved_verified", "achieved_by_rate", "unverified", "exceeded", "no_measure",
            "controlled", "controlled_but_exceeding", "loop_incomplete", "uncontrolled", "class1",
            "unclassified")

_MU_COLUMNS = ("area2_mu", "area3_mu", "achieved2_mu", "verified2_mu", "by_rate2_mu",
               "unverified2_mu", "exceed2_mu", "controlled3_mu", "uncontrolled3_mu", "loop_incomplete3_mu",
               "contradicted3_mu", "numerator_mu", "denominator_mu", "gap_mu",
               "unclassified_mu", "evidence_own_mu", "evidence_rate_mu", "evidence_none_mu")


@dataclass(frozen=True)
class RateResult:
    """Safe-utilisation rate of one year.

    Attributes
    ----------
    table
        One row per level/name (county row and one row per township by default):
        ``level, name, n_parcels_2, n_parcels_3, area2_mu, area3_mu, achieved2_mu`` (C,
        counted in the accounting mode), ``verified2_mu`` (treated class-2 area with
        compliant own samples), ``by_rate2_mu`` (treated class-2 area without own
        samples but with a compliance rate), ``unverified2_mu`` (treated, no crop data
        at all), ``exceed2_mu, controlled3_mu`` (D), ``uncontrolled3_mu,
        contradicted3_mu`` (controlled but a food crop exceeded), ``unclassified_mu,
        numerator_mu, denominator_mu, rate, target, met, gap_mu``, the rates of the
        three accounting modes ``rate_official, rate_parcel_verified,
        rate_measures_only``, the evidence behind C ``evidence_own_mu,
        evidence_rate_mu, evidence_none_mu`` and ``class3_control`` (share of class-3
        area under control, target 100 %); each ``*_mu`` also as ``*_hm2``. ``rate``
        is NaN (undefined) when the denominator is 0; ``met`` is then <NA>.
    parcels
        Per-parcel accounting: ``parcel_id, township, final_class, area_mu, measures,
        safe_use, strict_control, crop_removing, crop_sampled, crop_exceeds,
        food_crop_exceeds, status`` (one of :data:`STATUSES`), ``compliance_rate`` (the
        rate a parcel counted at), ``township_compliance_rate`` (the rate that applies in
        its township, for every parcel),
        ``counted_mu`` (in the accounting mode), ``counted_official,
        counted_parcel_verified, counted_measures_only`` and ``counted``.
    mismatches
        Measures of the year whose class does not fit the parcel class (``issue``:
        ``safe_use_on_class3``, ``strict_control_on_class2``, ``measure_on_unclassified``)
        with ``counts_as_measure``.
    unknown_measures
        Measure rows whose ``parcel_id`` is not among the parcels (all years).
    measures_on_class1
        Measures of the year on class-1 parcels (informational, never counted).
    unclassified_mu
        Area of unclassified parcels (reported, never counted).
    year
        Accounting year (``None`` when there were no dated measures).
    accounting
        The accounting mode (:data:`farmland.rate.evidence.ACCOUNTING_MODES`).
    compliance
        Crop compliance on treated class-2 land per township and county (``name,
        n_samples, n_compliant, compliance_rate, basis``).
    """

    table: pd.DataFrame
    parcels: pd.DataFrame
    mismatches: pd.DataFrame
    unknown_measures: pd.DataFrame
    measures_on_class1: pd.DataFrame
    unclassified_mu: float
    year: int | None
    target: float
    count_unverified: bool
    county_name: str
    accounting: str = DEFAULT_MODE
    compliance: pd.DataFrame | None = None
    min_township_samples: int = MIN_TOWNSHIP_SAMPLES

    @property
    def county(self) -> pd.Series:
        """The county row of :attr:`table`."""
        return self.table.loc[self.table["level"] == "county"].iloc[0]

    @property
    def rate(self) -> float:
        """County rate (NaN when undefined)."""
        return float(self.county["rate"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN/<NA> become ``None``)."""
        compliance = ([_json_row(r) for r in self.compliance.to_dict(orient="records")]
                      if self.compliance is not None else [])
        return {
            "year": self.year, "target": self.target, "accounting": self.accounting,
            "min_township_samples": self.min_township_samples,
            "compliance": compliance,
            "count_unverified": self.count_unverified,
            "unclassified_mu": self.unclassified_mu,
            "rows": [_json_row(r) for r in self.table.to_dict(orient="records")],
            "n_mismatches": len(self.mismatches),
            "n_unknown_measures": len(self.unknown_measures),
            "n_measures_on_class1": len(self.measures_on_class1),
        }


def safe_utilisation_rate(
    parcels: pd.DataFrame,
    measures: pd.DataFrame | None,
    *,
    crops: pd.DataFrame | None = None,
    year: int | None = None,
    target: float = 0.91,
    by: Sequence[str] = ("county", "township"),
    accounting: str | None = None,
    min_township_samples: int = MIN_TOWNSHIP_SAMPLES,
    count_unverified: bool | None = None,
    county_name: str = COUNTY,
    loop_ok: pd.Series | None = None,
) -> RateResult:
    """Safe-utilisation rate of the county and each township (domain.md §4).

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (DataFrame or GeoDataFrame, any CRS):
        ``parcel_id``, ``final_class`` (Int8, <NA> unclassified), ``area_mu`` (亩) and
        the columns named in ``by`` (``township``). Not modified.
    measures
        Measures ledger: ``parcel_id, measure_type, measure_class, year``; ``None`` = none.
    crops
        Crop samples: ``parcel_id, year, exceeds`` (``crop`` when known: food crops
        decide the strict-control contradiction). ``None``: no crop data, so every
        class-2 parcel with a measure is "unverified".
    year
        Accounting year; ``None`` uses the latest year present in ``measures`` (logged),
        or the latest crop year when no measure carries a year.
    target
        Target rate (0..1), default 0.91.
    by
        Levels of the table: ``"county"`` (one row for all parcels) and/or parcel columns.
    accounting
        ``"official"`` (default), ``"parcel_verified"`` or ``"measures_only"``
        (:mod:`farmland.rate.evidence`); the table carries the rates of all three.
    min_township_samples
        Crop samples on treated class-2 land a township needs for its own compliance
        rate (else the county's), default 5.
    count_unverified
        Older switch, kept for scripts: ``True`` means ``measures_only``, ``False``
        ``parcel_verified``; ignored when ``accounting`` is given.
    county_name
        Name of the county row.
    loop_ok
        parcel_id → whether the parcel's strict-control closed loop reached the minimum
        stages (:func:`farmland.control.closed_loop`); a class-3 parcel with a
        strict-control measure whose loop did not is ``loop_incomplete`` and counts
        nothing. ``None`` (no closed-loop ledger): the measure alone counts.

    Returns
    -------
    RateResult
    """
    if not 0 <= target <= 1:
        raise InputError("target must be a share between 0 and 1", value=target,
                         fix="give e.g. 0.91 for 91 %")
    mode = _mode(accounting, count_unverified)
    levels = [b for b in by if b != "county"]
    p = parcel_frame(parcels, levels)
    m = measure_frame(measures)
    year = select_year(m, year, crops)
    where = pd.Index(p["parcel_id"])          # unique (checked): O(1) look-ups by id
    m["pos"] = where.get_indexer(m["parcel_id"])
    unknown_rows = unknown_mask(m)
    unknown = (measures.loc[unknown_rows] if measures is not None else m.iloc[0:0]).copy()
    in_year = m["year"].eq(-1 if year is None else year).fillna(False).to_numpy(bool)
    m_year = m.loc[in_year & ~unknown_rows]
    c_year = crop_frame(crops, year)
    c_year["pos"] = where.get_indexer(c_year["parcel_id"])
    loop = (np.ones(len(p), dtype=bool) if loop_ok is None else
            loop_ok.reindex(p["parcel_id"].to_numpy()).fillna(False).to_numpy(bool))
    status, compliance = _parcel_status(p, m_year, c_year, mode, min_township_samples, loop)
    mismatches, on_class1 = _mismatches(m_year, p, status)
    table = _aggregate(status, by, county_name, target)
    unclassified = float(status.loc[status["status"] == "unclassified", "area_mu"].sum())
    log.info("safe-utilisation rate %s (%s accounting): %s (target %.0f %%)", year, mode,
             _pct(table), 100 * target)
    return RateResult(table=table, parcels=status, mismatches=mismatches,
                      unknown_measures=unknown, measures_on_class1=on_class1,
                      unclassified_mu=unclassified, year=year, target=float(target),
                      count_unverified=mode == "measures_only", county_name=county_name,
                      accounting=mode, compliance=compliance,
                      min_township_samples=int(min_township_samples))


def _mode(accounting: str | None, count_unverified: bool | None) -> str:
    if accounting is None:
        if count_unverified is None:
            return DEFAULT_MODE
        return "measures_only" if count_unverified else "parcel_verified"
    if accounting not in ACCOUNTING_MODES:
        raise InputError("unknown accounting mode", value=accounting,
                         fix="use one of: " + ", ".join(ACCOUNTING_MODES))
    return accounting


# -- per-parcel status ------------------------------------------------------------------
def _parcel_status(p: pd.DataFrame, m_year: pd.DataFrame, c_year: pd.DataFrame, mode: str,
                   min_samples: int, loop: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per parcel: its measures, its crop evidence, its status, what it counts."""
    strict = (m_year["measure_class"] == STRICT_CONTROL).to_numpy(bool)
    removing = strict & m_year["measure_type"].isin(CROP_REMOVING_MEASURES).to_numpy(bool)
    s = p.copy()
    s["measures"] = _measure_names(len(s), m_year)
    s["safe_use"] = _hit(len(s), m_year["pos"], ~strict)
    s["strict_control"] = _hit(len(s), m_year["pos"], strict)
    s["crop_removing"] = _hit(len(s), m_year["pos"], removing)
    s["crop_sampled"] = _hit(len(s), c_year["pos"], c_year["exceeds"].notna().to_numpy(bool))
    exceeds = c_year["exceeds"].fillna(False).to_numpy(bool)
    s["crop_exceeds"] = _hit(len(s), c_year["pos"], exceeds)
    s["food_crop_exceeds"] = _hit(len(s), c_year["pos"], exceeds & c_year["food"].to_numpy(bool))
    cls = s["final_class"]
    c2 = cls.eq(2).fillna(False).to_numpy(bool)
    c3 = cls.eq(3).fillna(False).to_numpy(bool)
    s["treated2"] = c2 & (s["safe_use"] | s["crop_removing"]).to_numpy(bool)
    rate, compliance = compliance_rates(s, c_year, min_samples=min_samples)
    treated, own = s["treated2"].to_numpy(bool), s["crop_sampled"].to_numpy(bool)
    measured3 = c3 & s["strict_control"].to_numpy(bool)
    controlled = measured3 & loop
    s["status"] = np.select(
        [cls.isna().to_numpy(bool), cls.eq(1).fillna(False).to_numpy(bool),
         treated & s["crop_exceeds"].to_numpy(bool), treated & own,
         treated & rate.notna().to_numpy(bool), treated, c2,
         controlled & s["food_crop_exceeds"].to_numpy(bool), controlled, measured3, c3],
        ["unclassified", "class1", "exceeded", "achieved_verified", "achieved_by_rate",
         "unverified", "no_measure", "controlled_but_exceeding", "controlled",
         "loop_incomplete", "uncontrolled"],
        default="unclassified")
    s["township_compliance_rate"] = rate
    s["compliance_rate"] = rate.where(s["status"].eq("achieved_by_rate"))
    for m in ACCOUNTING_MODES:
        s[f"counted_{m}"] = counted_mu(s, m)
    s["counted_mu"] = s[f"counted_{mode}"]
    s["counted"] = s["counted_mu"] > 0
    return s.drop(columns="treated2"), compliance


def _measure_names(n: int, m_year: pd.DataFrame) -> np.ndarray:
    """The parcel's measures of the year as text (``lime, water_management``)."""
    out = np.full(n, "", dtype=object)
    m = m_year.loc[m_year["pos"] >= 0].drop_duplicates(["pos", "measure_type"])
    if len(m):
        # runs of one parcel in a stable sort by row, joined over slices: a groupby with
        # str.join as its aggregation calls Python per group through pandas (≈ 0.1 s)
        pos = m["pos"].to_numpy(np.int64)
        order = np.argsort(pos, kind="stable")
        pos, names = pos[order], m["measure_type"].to_numpy(object)[order]
        first = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
        ends = np.r_[first[1:], len(pos)]
        out[pos[first]] = [", ".join(names[a:b]) for a, b in zip(first.tolist(), ends.tolist())]
    return out


def _hit(n: int, pos: pd.Series, mask: np.ndarray) -> np.ndarray:
    """Boolean per parcel: some row with ``mask`` points at it (``pos`` = parcel row, -1 none)."""
    out = np.zeros(n, dtype=bool)
    p = pos.to_numpy()[mask]
    out[p[p >= 0]] = True
    return out


def _mismatches(m_year: pd.DataFrame, p: pd.DataFrame,
                status: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measures whose class does not fit the parcel class, strict-control measures
    contradicted by an exceeding food crop of the same year, and measures on class-1
    land."""
    cls = pd.Series(p["final_class"].array.take(m_year["pos"].to_numpy(), allow_fill=True),
                    index=m_year.index, dtype="Int8")
    m = m_year.drop(columns="pos").assign(final_class=cls)
    safe = (m["measure_class"] == SAFE_USE).to_numpy(bool)
    contradicted = status["status"].eq("controlled_but_exceeding").to_numpy(bool)
    hit = np.zeros(len(m), dtype=bool)
    pos = m_year["pos"].to_numpy()
    hit[pos >= 0] = contradicted[pos[pos >= 0]]
    issue = np.select(
        [cls.isna().to_numpy(bool), cls.eq(3).fillna(False).to_numpy(bool) & safe,
         cls.eq(2).fillna(False).to_numpy(bool) & ~safe, hit & ~safe],
        ["measure_on_unclassified", "safe_use_on_class3", "strict_control_on_class2",
         "controlled_but_food_crop_exceeds"],
        default="")
    m["issue"] = issue
    m["counts_as_measure"] = (issue == "strict_control_on_class2") & m["measure_type"].isin(
        CROP_REMOVING_MEASURES).to_numpy(bool)
    mismatches = m.loc[issue != ""]
    if len(mismatches):
        log.warning("%d measure(s) do not fit their parcel's class (see mismatches): %s",
                    len(mismatches), mismatches["issue"].value_counts().to_dict())
    on_class1 = m.loc[cls.eq(1).fillna(False).to_numpy(bool)].drop(
        columns=["issue", "counts_as_measure"])
    if len(on_class1):
        log.info("%d measure(s) on class-1 parcels (reported, not counted)", len(on_class1))
    return mismatches, on_class1


# -- aggregation ---------------------------------------------------------------------------
def _parts(s: pd.DataFrame) -> pd.DataFrame:
    """Per-parcel contributions to the summed table columns."""
    a = s["area_mu"].fillna(0.0)
    st = s["status"]
    c2 = s["final_class"].eq(2).fillna(False)
    c3 = s["final_class"].eq(3).fillna(False)
    counted = s["counted_mu"]
    # evidence behind C: own samples, a compliance rate (at most what the rate allows),
    # and nothing (what measures_only counts beyond the evidence)
    own = counted * st.eq("achieved_verified")
    by_rate = np.minimum(counted, s["counted_official"]) * st.eq("achieved_by_rate")
    return pd.DataFrame({
        "n_parcels_2": c2.astype(int), "n_parcels_3": c3.astype(int),
        "area2_mu": a * c2, "area3_mu": a * c3,
        "achieved2_mu": counted * c2, "verified2_mu": a * st.eq("achieved_verified"),
        "by_rate2_mu": a * st.eq("achieved_by_rate"), "unverified2_mu": a * st.eq("unverified"),
        "exceed2_mu": a * st.eq("exceeded"), "controlled3_mu": counted * c3,
        "uncontrolled3_mu": a * st.eq("uncontrolled"),
        "loop_incomplete3_mu": a * st.eq("loop_incomplete"),
        "contradicted3_mu": a * st.eq("controlled_but_exceeding"),
        "controlled_area3_mu": a * st.isin(["controlled", "controlled_but_exceeding"]),
        "unclassified_mu": a * st.eq("unclassified"),
        "evidence_own_mu": own,
        "evidence_rate_mu": by_rate,
        "evidence_none_mu": counted * c2 - own - by_rate,
        **{f"numerator_{m}_mu": s[f"counted_{m}"] for m in ACCOUNTING_MODES},
    }, index=s.index)


def _aggregate(s: pd.DataFrame, by: Sequence[str], county_name: str,
               target: float) -> pd.DataFrame:
    """Sum the parts per level, then derive rate, met and gap."""
    parts = _parts(s)
    frames = []
    for level in by:
        if level == "county":
            g = parts.sum().to_frame().T
            g.insert(0, "name", county_name)
        else:
            g = parts.groupby(s[level], sort=True).sum().reset_index(names="name")
        g.insert(0, "level", level)
        frames.append(g)
    if not frames:
        raise InputError("'by' names no level", value=tuple(by), fix="use ('county', 'township')")
    table = pd.concat(frames, ignore_index=True)
    table[["n_parcels_2", "n_parcels_3"]] = table[["n_parcels_2", "n_parcels_3"]].astype(int)
    return finish_table(table, target)


def finish_table(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """Add numerator, denominator, rate, target, met, gap and the hm² columns.

    ``rate`` is NaN when the denominator is 0 ("undefined", never 100 %); ``met`` is
    then <NA>. ``gap_mu = max(0, target·denominator − numerator)``, 0 when met
    (a shortfall below :data:`TOLERANCE_MU` is rounding noise and counts as met).
    """
    t = table.copy()
    t["numerator_mu"] = t["achieved2_mu"] + t["controlled3_mu"]
    t["denominator_mu"] = t["area2_mu"] + t["area3_mu"]
    den = t["denominator_mu"].to_numpy(float)
    num = t["numerator_mu"].to_numpy(float)
    defined = den > 0
    t["rate"] = np.divide(num, den, out=np.full(len(t), np.nan), where=defined)
    t["target"] = float(target)
    short = target * den - num
    met = short <= TOLERANCE_MU
    t["met"] = pd.array(np.where(defined, met, None), dtype="boolean")
    t["gap_mu"] = np.where(defined & ~met, np.maximum(short, 0.0), 0.0)
    for m in ACCOUNTING_MODES:
        col = f"numerator_{m}_mu"
        if col in t:
            t[f"rate_{m}"] = np.divide(t[col].to_numpy(float), den,
                                       out=np.full(len(t), np.nan), where=defined)
            t = t.drop(columns=col)
    if "controlled_area3_mu" in t:
        area3 = t["area3_mu"].to_numpy(float)
        t["class3_control"] = np.divide(t["controlled_area3_mu"].to_numpy(float), area3,
                                        out=np.full(len(t), np.nan), where=area3 > 0)
        t = t.drop(columns="controlled_area3_mu")
    for col in (c for c in _MU_COLUMNS if c in t):
        t[col.replace("_mu", "_hm2")] = t[col] / MU_PER_HM2
    return t


def _pct(table: pd.DataFrame) -> str:
    row = table.iloc[0]
    rate = row["rate"]
    return f"{row['name']} {'undefined' if math.isnan(rate) else f'{100 * rate:.1f} %'}"


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out[k] = None
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out
