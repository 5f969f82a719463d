"""Run-to-run comparison: parcel changes, class flows in 亩, and why the rate moved.

Two classification runs A and B (e.g. two rows of a :class:`~farmland.runs.workspace.Workspace`)
are matched by ``parcel_id``. Areas are ``area_mu`` (亩); geometry is not used.

Rate decomposition (domain.md §4, dynamic adjustment)::

    rate_a  = rate(classes A, ledger A)          ledger = measures + crop samples
    rate_ab = rate(classes B, ledger A)
    rate_b  = rate(classes B, ledger B)
    reclassification_effect = rate_ab − rate_a   (classes moved, ledger held fixed)
    measures_effect         = rate_b − rate_ab   (ledger moved, classes held fixed)

The two effects telescope: their sum is ``rate_b − rate_a`` exactly in real
arithmetic; in floating point to within a few units in the last place (< 1e-12).
The ledger includes the crop samples because they decide whether a class-2 measure
counts; holding "measures" fixed therefore also holds crop verification fixed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from farmland.classes import as_class
from farmland.errors import InputError, first_rows
from farmland.rate.accounting import TOLERANCE_MU, RateResult, parcel_ids, safe_utilisation_rate
from farmland.vocabulary import COUNTY

log = logging.getLogger(__name__)

FLOW_LABELS = ("1", "2", "3", "unclassified", "absent")
_CROP_STEP = re.compile(r";crops:(\d->\d)")
_KEEP = ("township", "final_class", "soil_class", "area_mu", "rule", "sample_ids")


@dataclass(frozen=True)
class DiffResult:
    """Comparison of run A with run B.

    Attributes
    ----------
    changes
        One row per parcel whose class or area changed, or that was added/removed:
        ``parcel_id, township, area_mu, area_a_mu, area_b_mu, class_a, class_b,
        rule_a, rule_b, reason``.
    flows
        Class-flow matrix in 亩: rows ``class_a``, columns ``class_b``, labels
        ``1, 2, 3, unclassified, absent``. Parcels in both runs count with their B
        area, removed parcels with their A area, so the matrix sums to the B total
        plus the removed area (the union's area when areas did not change).
    rate_a, rate_b, rate_mixed
        Rate results of (A classes, A ledger), (B, B) and (B classes, A ledger).
    effects
        Per level/name: ``rate_a, rate_mixed, rate_b, reclassification_effect,
        measures_effect`` (NaN where a rate is undefined).
    """

    changes: pd.DataFrame
    flows: pd.DataFrame
    rate_a: RateResult
    rate_b: RateResult
    rate_mixed: RateResult
    effects: pd.DataFrame

    @property
    def reclassification_effect(self) -> float:
        """County rate change caused by the class changes (ledger A held fixed)."""
        return self.rate_mixed.rate - self.rate_a.rate

    @property
    def measures_effect(self) -> float:
        """County rate change caused by the ledger change (classes B held fixed)."""
        return self.rate_b.rate - self.rate_mixed.rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN becomes ``None``)."""
        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)
        return {
            "rate_a": num(self.rate_a.rate), "rate_b": num(self.rate_b.rate),
            "rate_mixed": num(self.rate_mixed.rate),
            "reclassification_effect": num(self.reclassification_effect),
            "measures_effect": num(self.measures_effect),
            "year_a": self.rate_a.year, "year_b": self.rate_b.year,
            "n_changes": len(self.changes),
            "changes_by_reason": self.changes["reason"].value_counts().to_dict(),
            "flows_mu": {r: {c: float(v) for c, v in row.items()}
                         for r, row in self.flows.iterrows()},
        }


def diff_runs(
    parcels_a: pd.DataFrame,
    parcels_b: pd.DataFrame,
    *,
    measures_a: pd.DataFrame | None = None,
    measures_b: pd.DataFrame | None = None,
    crops_a: pd.DataFrame | None = None,
    crops_b: pd.DataFrame | None = None,
    target: float = 0.91,
    county_name: str = COUNTY,
) -> DiffResult:
    """Compare two classification runs parcel by parcel.

    Parameters
    ----------
    parcels_a, parcels_b
        ``parcels`` layers of runs A and B (``parcel_id``, ``township``,
        ``final_class``, ``area_mu`` in 亩; ``rule``, ``soil_class``, ``sample_ids``
        used for the reasons when present). Not modified; any CRS.
    measures_a, measures_b
        Measures ledgers for A and B. ``measures_b=None`` reuses ``measures_a`` (one
        ledger for both: the measures effect then only reflects crop data).
    crops_a, crops_b
        Crop samples of each run (``parcel_id, year, exceeds``) or ``None``.
    target
        Target rate for the three rate results.

    Returns
    -------
    DiffResult
    """
    if measures_b is None and measures_a is not None:
        log.info("no ledger for run B: using ledger A for both runs")
        measures_b = measures_a
    kw = {"target": target, "county_name": county_name}
    rate_a = safe_utilisation_rate(parcels_a, measures_a, crops=crops_a, **kw)
    rate_b = safe_utilisation_rate(parcels_b, measures_b, crops=crops_b, **kw)
    with _quiet("farmland.rate.accounting"):  # a counterfactual, not a rate to report
        rate_mixed = safe_utilisation_rate(parcels_b, measures_a, crops=crops_a,
                                           year=rate_a.year, **kw)
    merged = _merge(parcels_a, parcels_b)
    changes = _changes(merged)
    log.info("diff: %d changed parcel(s); rate %s -> %s", len(changes), _pct(rate_a.rate),
             _pct(rate_b.rate))
    return DiffResult(changes=changes, flows=_flows(merged), rate_a=rate_a, rate_b=rate_b,
                      rate_mixed=rate_mixed, effects=_effects(rate_a, rate_mixed, rate_b))


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Only warnings from ``logger_name`` inside the block."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _side(parcels: pd.DataFrame, name: str) -> pd.DataFrame:
    """Canonical columns of one run, indexed by text parcel id."""
    for col in ("parcel_id", "final_class", "area_mu"):
        if col not in parcels.columns:
            raise InputError(f"parcels of run {name} lack the column {col}", column=col,
                             fix="pass the parcels layer of a classification run")
    out = pd.DataFrame({"parcel_id": parcel_ids(parcels["parcel_id"]).to_numpy()})
    for col in _KEEP:
        out[col] = parcels[col].to_numpy() if col in parcels.columns else pd.NA
    for col in ("final_class", "soil_class"):
        out[col] = as_class(out[col].to_numpy()).array
    out["area_mu"] = pd.to_numeric(out["area_mu"], errors="coerce").astype(float)
    dup = out["parcel_id"].duplicated()
    if dup.any():
        raise InputError(f"parcel ids of run {name} must be unique", column="parcel_id",
                         row=first_rows(out.loc[dup, "parcel_id"].unique()),
                         fix="remove or renumber the duplicated parcels")
    return out


def _merge(parcels_a: pd.DataFrame, parcels_b: pd.DataFrame) -> pd.DataFrame:
    a, b = _side(parcels_a, "A"), _side(parcels_b, "B")
    m = a.merge(b, on="parcel_id", how="outer", suffixes=("_a", "_b"), indicator=True,
                sort=False)
    m["in_a"] = m["_merge"].isin(["both", "left_only"]).to_numpy(bool)
    m["in_b"] = m["_merge"].isin(["both", "right_only"]).to_numpy(bool)
    m["area_mu"] = np.where(m["in_b"], m["area_mu_b"], m["area_mu_a"])
    m["township"] = m["township_b"].where(m["in_b"], m["township_a"])
    return m.drop(columns="_merge")


def _changes(m: pd.DataFrame) -> pd.DataFrame:
    both = m["in_a"] & m["in_b"]
    class_changed = m["final_class_a"].fillna(0).ne(m["final_class_b"].fillna(0))
    area_changed = (m["area_mu_a"] - m["area_mu_b"]).abs().gt(TOLERANCE_MU)
    changed = m.loc[~both | class_changed | area_changed].copy()
    changed["reason"] = [_reason(r) for r in changed.to_dict(orient="records")]
    out = changed.rename(columns={"area_mu_a": "area_a_mu", "area_mu_b": "area_b_mu",
                                  "final_class_a": "class_a", "final_class_b": "class_b"})
    cols = ["parcel_id", "township", "area_mu", "area_a_mu", "area_b_mu", "class_a",
            "class_b", "rule_a", "rule_b", "reason"]
    return out[cols].sort_values("parcel_id", kind="stable").reset_index(drop=True)


def _reason(r: dict[str, Any]) -> str:
    """Why one parcel changed, from its rules, samples and soil classes (";"-joined)."""
    if not r["in_a"]:
        return "parcel added"
    if not r["in_b"]:
        return "parcel removed"
    reasons = []
    sa, sb = _id_set(r["sample_ids_a"]), _id_set(r["sample_ids_b"])
    if sa != sb:
        reasons.append("new soil samples" if sb > sa else "soil samples changed")
    ca, cb = _crop_step(r["rule_a"]), _crop_step(r["rule_b"])
    if ca != cb:
        reasons.append(f"crop adjustment {cb}" if cb else f"crop adjustment {ca} undone")
    base_a, base_b = _base_rule(r["rule_a"]), _base_rule(r["rule_b"])
    if base_a != base_b:
        reasons.append(f"rule changed ({base_a} -> {base_b})")
    if not reasons and _code(r["soil_class_a"]) != _code(r["soil_class_b"]):
        reasons.append("soil class changed")
    if abs(r["area_mu_a"] - r["area_mu_b"]) > TOLERANCE_MU:
        reasons.append("area changed")
    return "; ".join(reasons) or "class changed"


def _id_set(value: object) -> frozenset[str]:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return frozenset()
    return frozenset(s.strip() for s in str(value).split(",") if s.strip())


def _crop_step(rule: object) -> str:
    hit = _CROP_STEP.search(rule) if isinstance(rule, str) else None
    return hit.group(1) if hit else ""


def _base_rule(rule: object) -> str:
    return rule.split(";")[0] if isinstance(rule, str) else "?"


def _code(value: object) -> int:
    return 0 if pd.isna(value) else int(value)


def _flow_label(cls: pd.Series, present: pd.Series) -> np.ndarray:
    text = cls.astype("Int8").astype("str").fillna("unclassified").to_numpy(dtype=object)
    return np.where(present.to_numpy(bool), text, "absent")


def _flows(m: pd.DataFrame) -> pd.DataFrame:
    rows = _flow_label(m["final_class_a"], m["in_a"])
    cols = _flow_label(m["final_class_b"], m["in_b"])
    area = pd.Series(m["area_mu"].fillna(0.0).to_numpy(float))
    flows = area.groupby([rows, cols]).sum().unstack(fill_value=0.0)
    flows = flows.reindex(index=list(FLOW_LABELS), columns=list(FLOW_LABELS), fill_value=0.0)
    flows.index.name, flows.columns.name = "class_a", "class_b"
    return flows.astype(float)


def _effects(a: RateResult, mixed: RateResult, b: RateResult) -> pd.DataFrame:
    def rates(r: RateResult, name: str) -> pd.DataFrame:
        return r.table[["level", "name", "rate"]].rename(columns={"rate": name})
    e = rates(a, "rate_a").merge(rates(mixed, "rate_mixed"), on=["level", "name"], how="outer")
    e = e.merge(rates(b, "rate_b"), on=["level", "name"], how="outer")
    e["reclassification_effect"] = e["rate_mixed"] - e["rate_a"]
    e["measures_effect"] = e["rate_b"] - e["rate_mixed"]
    order = e["level"].ne("county").astype(int)
    return e.assign(_o=order).sort_values(["_o", "name"]).drop(columns="_o") \
        .reset_index(drop=True)


def _pct(rate: float) -> str:
    return "undefined" if math.isnan(rate) else f"{100 * rate:.1f} %"
