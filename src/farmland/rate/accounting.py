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

from farmland.classes import as_class
from farmland.errors import InputError, first_rows
from farmland.io.values import parse_boolean
from farmland.vocabulary import COUNTY, UNKNOWN_TOWNSHIP

log = logging.getLogger(__name__)

SAFE_USE = "safe_use"
STRICT_CONTROL = "strict_control"
MEASURE_CLASSES = (SAFE_USE, STRICT_CONTROL)

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

#: per-parcel status -> does it count in the numerator (the unverified entry is the
#: ``count_unverified`` option)
_STATUS_COUNTS = {"achieved": True, "controlled": True, "exceeded": False,
                  "no_measure": False, "class1": False, "unclassified": False}

_PARTS = ("n_parcels_2", "n_parcels_3", "area2_mu", "area3_mu", "achieved2_mu",
          "unverified2_mu", "exceed2_mu", "controlled3_mu", "unclassified_mu")
_MU_COLUMNS = ("area2_mu", "area3_mu", "achieved2_mu", "unverified2_mu", "exceed2_mu",
               "controlled3_mu", "numerator_mu", "denominator_mu", "gap_mu", "unclassified_mu")


@dataclass(frozen=True)
class RateResult:
    """Safe-utilisation rate of one year.

    Attributes
    ----------
    table
        One row per level/name (county row and one row per township by default):
        ``level, name, n_parcels_2, n_parcels_3, area2_mu, area3_mu, achieved2_mu,
        unverified2_mu, exceed2_mu, controlled3_mu, unclassified_mu, numerator_mu,
        denominator_mu, rate, target, met, gap_mu`` and each ``*_mu`` also as ``*_hm2``.
        ``rate`` is NaN (undefined) when the denominator is 0; ``met`` is then <NA>.
    parcels
        Per-parcel status: ``parcel_id, township, final_class, area_mu, safe_use,
        strict_control, crop_removing, crop_sampled, crop_exceeds, status, counted``.
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
        return {
            "year": self.year, "target": self.target,
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
    count_unverified: bool = True,
    county_name: str = COUNTY,
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
        Crop samples: ``parcel_id, year, exceeds``. ``None``: no crop data, so every
        class-2 parcel with a measure is "unverified".
    year
        Accounting year; ``None`` uses the latest year present in ``measures`` (logged),
        or the latest crop year when no measure carries a year.
    target
        Target rate (0..1), default 0.91.
    by
        Levels of the table: ``"county"`` (one row for all parcels) and/or parcel columns.
    count_unverified
        Count class-2 area with a measure but no crop sample of the year as achieved.
    county_name
        Name of the county row.

    Returns
    -------
    RateResult
    """
    if not 0 <= target <= 1:
        raise InputError("target must be a share between 0 and 1", value=target,
                         fix="give e.g. 0.91 for 91 %")
    levels = [b for b in by if b != "county"]
    p = _parcel_frame(parcels, levels)
    m = _measure_frame(measures)
    year = _select_year(m, year, crops)
    where = pd.Index(p["parcel_id"])          # unique (checked): O(1) look-ups by id
    m["pos"] = where.get_indexer(m["parcel_id"])
    unknown_mask = _unknown_mask(m)
    unknown = (measures.loc[unknown_mask] if measures is not None else m.iloc[0:0]).copy()
    in_year = m["year"].eq(-1 if year is None else year).fillna(False).to_numpy(bool)
    m_year = m.loc[in_year & ~unknown_mask]
    c_year = _crop_frame(crops, year)
    c_year["pos"] = where.get_indexer(c_year["parcel_id"])
    status = _parcel_status(p, m_year, c_year, count_unverified)
    mismatches, on_class1 = _mismatches(m_year, p)
    table = _aggregate(status, by, county_name, target)
    unclassified = float(status.loc[status["status"] == "unclassified", "area_mu"].sum())
    log.info("safe-utilisation rate %s: %s (target %.0f %%)", year, _pct(table), 100 * target)
    return RateResult(table=table, parcels=status, mismatches=mismatches,
                      unknown_measures=unknown, measures_on_class1=on_class1,
                      unclassified_mu=unclassified, year=year, target=float(target),
                      count_unverified=bool(count_unverified), county_name=county_name)


# -- input frames ---------------------------------------------------------------------
def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
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


def _parcel_frame(parcels: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """``parcel_id, township, <levels>, final_class, area_mu`` checked, on a fresh index."""
    _require(parcels, ("parcel_id", "final_class", "area_mu", *levels), "parcels")
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


def _measure_frame(measures: pd.DataFrame | None) -> pd.DataFrame:
    """``parcel_id, measure_type, measure_class, year`` checked; index of the input kept."""
    if measures is None:
        measures = pd.DataFrame(columns=["parcel_id", "measure_type", "measure_class", "year"])
    _require(measures, ("parcel_id", "measure_class", "year"), "measures")
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


def _crop_frame(crops: pd.DataFrame | None, year: int | None) -> pd.DataFrame:
    """Crop samples of ``year``: ``parcel_id, exceeds`` (boolean; <NA> = no usable result)."""
    if crops is None:
        log.info("no crop samples given: class-2 parcels with a measure are 'unverified'")
        return pd.DataFrame({"parcel_id": pd.Series([], dtype="str"),
                             "exceeds": pd.Series([], dtype="boolean")})
    _require(crops, ("parcel_id", "year", "exceeds"), "crop samples")
    years = pd.to_numeric(crops["year"], errors="coerce")
    if years.isna().any():
        log.warning("%d crop sample(s) carry no year and verify no measure",
                    int(years.isna().sum()))
    in_year = (years == year).fillna(False)
    c = crops.loc[in_year.to_numpy(bool)]
    return pd.DataFrame({"parcel_id": parcel_ids(c["parcel_id"]).to_numpy(),
                         "exceeds": parse_boolean(c["exceeds"]).to_numpy()})


def _select_year(m: pd.DataFrame, year: int | None, crops: pd.DataFrame | None) -> int | None:
    """The accounting year: given, else the latest in the measures, else in the crops."""
    undated = int(m["year"].isna().sum())
    if undated:
        log.warning("%d measure(s) carry no year and are not counted (rows %s)", undated,
                    first_rows(m.index[m["year"].isna()]))
    if year is not None:
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


def _unknown_mask(m: pd.DataFrame) -> np.ndarray:
    """Measures (all years) whose parcel id is not a parcel; logged, never dropped silently."""
    unknown = ((m["pos"] < 0) | m["parcel_id"].isna()).to_numpy(bool)
    if unknown.any():
        log.warning("%d measure(s) name parcel ids not in the parcels and are not counted "
                    "(first: %s); see unknown_measures", int(unknown.sum()),
                    first_rows(m.loc[unknown, "parcel_id"].fillna("<empty>").unique()))
    return unknown


# -- per-parcel status ------------------------------------------------------------------
def _parcel_status(p: pd.DataFrame, m_year: pd.DataFrame, c_year: pd.DataFrame,
                   count_unverified: bool) -> pd.DataFrame:
    """One row per parcel: which measures it has, its crop evidence, its status."""
    strict = (m_year["measure_class"] == STRICT_CONTROL).to_numpy(bool)
    removing = strict & m_year["measure_type"].isin(CROP_REMOVING_MEASURES).to_numpy(bool)
    s = p.copy()
    s["safe_use"] = _hit(len(s), m_year["pos"], ~strict)
    s["strict_control"] = _hit(len(s), m_year["pos"], strict)
    s["crop_removing"] = _hit(len(s), m_year["pos"], removing)
    s["crop_sampled"] = _hit(len(s), c_year["pos"], c_year["exceeds"].notna().to_numpy(bool))
    s["crop_exceeds"] = _hit(len(s), c_year["pos"],
                             c_year["exceeds"].fillna(False).to_numpy(bool))
    cls = s["final_class"]
    c2 = cls.eq(2).fillna(False).to_numpy(bool)
    c3 = cls.eq(3).fillna(False).to_numpy(bool)
    measured2 = c2 & (s["safe_use"] | s["crop_removing"]).to_numpy(bool)
    s["status"] = np.select(
        [cls.isna().to_numpy(bool), cls.eq(1).fillna(False).to_numpy(bool),
         measured2 & s["crop_exceeds"].to_numpy(bool),
         measured2 & ~s["crop_sampled"].to_numpy(bool), measured2,
         c3 & s["strict_control"].to_numpy(bool)],
        ["unclassified", "class1", "exceeded", "unverified", "achieved", "controlled"],
        default="no_measure")
    counts = dict(_STATUS_COUNTS, unverified=bool(count_unverified))
    s["counted"] = s["status"].map(counts).astype(bool)
    return s


def _hit(n: int, pos: pd.Series, mask: np.ndarray) -> np.ndarray:
    """Boolean per parcel: some row with ``mask`` points at it (``pos`` = parcel row, -1 none)."""
    out = np.zeros(n, dtype=bool)
    p = pos.to_numpy()[mask]
    out[p[p >= 0]] = True
    return out


def _mismatches(m_year: pd.DataFrame, p: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measures whose class does not fit the parcel class, and measures on class-1 land."""
    cls = pd.Series(p["final_class"].array.take(m_year["pos"].to_numpy(), allow_fill=True),
                    index=m_year.index, dtype="Int8")
    m = m_year.drop(columns="pos").assign(final_class=cls)
    safe = (m["measure_class"] == SAFE_USE).to_numpy(bool)
    issue = np.select(
        [cls.isna().to_numpy(bool), cls.eq(3).fillna(False).to_numpy(bool) & safe,
         cls.eq(2).fillna(False).to_numpy(bool) & ~safe],
        ["measure_on_unclassified", "safe_use_on_class3", "strict_control_on_class2"],
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
    achieved = st.eq("achieved") | (st.eq("unverified") & s["counted"])
    return pd.DataFrame({
        "n_parcels_2": c2.astype(int), "n_parcels_3": c3.astype(int),
        "area2_mu": a * c2, "area3_mu": a * c3,
        "achieved2_mu": a * achieved, "unverified2_mu": a * st.eq("unverified"),
        "exceed2_mu": a * st.eq("exceeded"), "controlled3_mu": a * st.eq("controlled"),
        "unclassified_mu": a * st.eq("unclassified"),
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
    for col in _MU_COLUMNS:
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
