"""Run-to-run comparison: parcel changes and their causes, class flows in 亩, and why the
rate moved.

Two classification runs A and B (e.g. two rows of a :class:`~farmland.runs.workspace.Workspace`)
are matched by ``parcel_id``. Areas are ``area_mu`` (亩). Geometry is only carried along
for the map of the changed parcels (:meth:`DiffResult.changes_layer`) and for naming the
nearest new samples of a parcel whose class moved with the interpolated surface.

Causes (``changes.cause``; docs/decisions.md, run diff): a parcel in one run only is a
``new_parcel``/``removed_parcel``; a parcel whose class stayed but whose area moved is
``area_changed``. A class change is explained by the first that applies of

1. ``crop_adjustment`` — the soil class is the same in both runs, so only the crop
   adjustment can have moved the final class;
2. ``new_samples`` — the parcel uses in B a soil sample that run A does not have;
3. ``removed_samples`` — it used in A a sample that run B does not have;
4. ``rules_or_standard`` — the manifests differ in rules (SHA-256), standard
   (fingerprint) or interpolator;
5. ``sample_values`` — classified from its own samples (``points:*``) in both runs with
   no new or removed sample: their values, usability or the parcel's land use differ;
6. ``interpolation`` — the rest: the interpolated surface or the neighbour set moved
   (the nearest new samples within the rules' ``max_distance_m`` are named when the
   samples layers are known).

``cause_detail`` names the sample ids, crop sample ids and manifest values behind it.

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
``rate_ab`` is a counterfactual, not a rate of any year: it is never logged.

Each run's rate is counted as ``farmland rate`` counts it: with the accounting mode and
township sample minimum of its rules (manifest), and with its strict-control closed loop
(``loop_ok``) when given; ``rate_ab`` holds A's ledger, loop and settings fixed (a parcel
class 3 in B only has no loop in A: its strict-control measure does not count there).
Without a measures ledger the rates are not compared (``None``), never reported as 0 %.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.classes import as_class
from farmland.errors import InputError, first_rows
from farmland.rate.accounting import TOLERANCE_MU, RateResult, parcel_ids, safe_utilisation_rate
from farmland.runs.causes import Context, details, id_set, reason_text, used_ids
from farmland.vocabulary import COUNTY

log = logging.getLogger(__name__)

FLOW_LABELS = ("1", "2", "3", "unclassified", "absent")
#: console and diff.json text when no measures ledger was given
NO_LEDGER = "未提供措施台账 no measures ledger given: the rate is not compared"
#: every cause of a change, in the order of the console summary
CAUSES = ("new_samples", "removed_samples", "crop_adjustment", "rules_or_standard",
          "sample_values", "interpolation", "new_parcel", "removed_parcel", "area_changed")
#: bilingual label of each cause (console, maps)
CAUSE_LABELS = {
    "new_samples": "新增样点 new samples",
    "removed_samples": "样点减少 removed samples",
    "crop_adjustment": "农产品辅助调整 crop adjustment",
    "rules_or_standard": "规则或标准变化 rules or standard",
    "sample_values": "样点数据变化 sample values",
    "interpolation": "插值面变化 interpolation",
    "new_parcel": "新增图斑 new parcel",
    "removed_parcel": "删除图斑 removed parcel",
    "area_changed": "面积变化 area changed",
}
#: columns of the ``changes`` layer of ``changes.gpkg`` (plus the geometry)
LAYER_COLUMNS = ("parcel_id", "township", "class_a", "class_b", "flow", "cause",
                 "cause_detail", "area_mu")
#: nearest new samples named per parcel (interpolation cause)
#: soil-sample columns compared for ``sample_values``
_RATE_LOGGERS = "farmland.rate"
_KEEP = ("township", "final_class", "soil_class", "area_mu", "rule", "sample_ids", "landuse",
         "driving_element")
_REASON_COLUMNS = ["in_a", "in_b", "sample_ids_a", "sample_ids_b", "rule_a", "rule_b",
                   "soil_class_a", "soil_class_b", "area_mu_a", "area_mu_b"]


@dataclass(frozen=True)
class DiffResult:
    """Comparison of run A with run B.

    Attributes
    ----------
    changes
        One row per parcel whose class or area changed, or that was added/removed:
        ``parcel_id, township, area_mu, area_a_mu, area_b_mu, class_a, class_b, flow
        ("2→3", "absent→1" …), cause (one of CAUSES), cause_detail, rule_a, rule_b,
        reason`` (``reason``: the older one-line summary from rules and sample ids).
    flows
        Class-flow matrix in 亩: rows ``class_a``, columns ``class_b``, labels
        ``1, 2, 3, unclassified, absent``. Parcels in both runs count with their B
        area, removed parcels with their A area, so the matrix sums to the B total
        plus the removed area (the union's area when areas did not change).
    rate_a, rate_b, rate_mixed
        Rate results of (A classes, A ledger), (B, B) and (B classes, A ledger);
        ``rate_mixed`` is a counterfactual, only the difference of the effects. ``None``
        when no measures ledger was given (the rate is not compared).
    effects
        Per level/name: ``rate_a, rate_mixed, rate_b, reclassification_effect,
        measures_effect`` (NaN where a rate is undefined; no rows without a ledger).
    geometry
        Geometry of each row of ``changes`` (run B's, else run A's; ``None`` when
        neither run had geometry).
    samples_layers
        Whether both runs' soil-sample layers were known (else the causes come from the
        ``sample_ids`` columns only).
    """

    changes: pd.DataFrame
    flows: pd.DataFrame
    rate_a: RateResult | None
    rate_b: RateResult | None
    rate_mixed: RateResult | None
    effects: pd.DataFrame
    geometry: gpd.GeoSeries | None = field(default=None, repr=False)
    samples_layers: bool = False
    #: whether run A's / run B's rate counted a strict-control closed loop
    closed_loop: tuple[bool, bool] = (False, False)

    @property
    def rates_compared(self) -> bool:
        """Whether a measures ledger was given (else no rate is compared)."""
        return self.rate_a is not None and self.rate_b is not None

    @property
    def reclassification_effect(self) -> float:
        """County rate change caused by the class changes (ledger A held fixed); NaN
        when the rates are not compared."""
        if not self.rates_compared or self.rate_mixed is None:
            return math.nan
        return self.rate_mixed.rate - self.rate_a.rate

    @property
    def measures_effect(self) -> float:
        """County rate change caused by the ledger change (classes B held fixed); NaN
        when the rates are not compared."""
        if not self.rates_compared or self.rate_mixed is None:
            return math.nan
        return self.rate_b.rate - self.rate_mixed.rate

    def cause_counts(self) -> pd.DataFrame:
        """Changed parcels and their area (亩) per cause, in :data:`CAUSES` order."""
        c = self.changes
        table = pd.DataFrame({"parcels": c.groupby("cause").size(),
                              "area_mu": c.groupby("cause")["area_mu"].sum()})
        order = [x for x in CAUSES if x in table.index]
        return table.reindex(order).astype({"parcels": int})

    def changes_layer(self) -> gpd.GeoDataFrame:
        """The changed parcels as a layer: :data:`LAYER_COLUMNS` and the geometry."""
        attrs = self.changes[list(LAYER_COLUMNS)].reset_index(drop=True)
        geom = self.geometry
        if geom is None:
            return gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries([None] * len(attrs)))
        return gpd.GeoDataFrame(attrs, geometry=geom.reset_index(drop=True), crs=geom.crs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN becomes ``None``)."""
        def num(r: RateResult | float | None) -> float | None:
            x = r.rate if isinstance(r, RateResult) else r
            return None if x is None or math.isnan(x) else float(x)
        return {
            "rate_compared": self.rates_compared,
            "rate_note": None if self.rates_compared else NO_LEDGER,
            "rate_a": num(self.rate_a), "rate_b": num(self.rate_b),
            "rate_mixed": num(self.rate_mixed),
            "reclassification_effect": num(self.reclassification_effect),
            "measures_effect": num(self.measures_effect),
            "closed_loop_a": self.closed_loop[0], "closed_loop_b": self.closed_loop[1],
            "year_a": self.rate_a.year if self.rate_a else None,
            "year_b": self.rate_b.year if self.rate_b else None,
            "n_changes": len(self.changes),
            "changes_by_cause": {k: int(v) for k, v in self.cause_counts()["parcels"].items()},
            "changes_by_reason": self.changes["reason"].value_counts().to_dict(),
            "samples_layers": self.samples_layers,
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
    manifest_a: dict[str, Any] | None = None,
    manifest_b: dict[str, Any] | None = None,
    samples_a: pd.DataFrame | None = None,
    samples_b: pd.DataFrame | None = None,
    target: float = 0.91,
    county_name: str = COUNTY,
    loop_ok_a: pd.Series | None = None,
    loop_ok_b: pd.Series | None = None,
) -> DiffResult:
    """Compare two classification runs parcel by parcel.

    Parameters
    ----------
    parcels_a, parcels_b
        ``parcels`` layers of runs A and B (``parcel_id``, ``township``,
        ``final_class``, ``area_mu`` in 亩; ``rule``, ``soil_class``, ``sample_ids``,
        ``landuse``, ``driving_element`` used for the causes when present). Not
        modified. Their geometry (if any) is kept for the changed parcels.
    measures_a, measures_b
        Measures ledgers for A and B. ``measures_b=None`` reuses ``measures_a`` (one
        ledger for both: the measures effect then only reflects crop data). Neither:
        the rates are not compared (``None``). ``measures_b`` alone is refused.
    crops_a, crops_b
        Crop samples of each run (``parcel_id, year, exceeds``; ``sample_id`` and
        ``unit`` name them in the causes) or ``None``.
    manifest_a, manifest_b
        Run manifests (``manifest.json`` or the workspace's): rules SHA-256, standard
        fingerprint, interpolator, input hashes, variogram models, ``max_distance_m``.
    samples_a, samples_b
        Soil-sample layers of the runs (``sample_id``, geometry; values and ``usable``
        when present). Only used when both are given; runs from a workspace have none,
        and the causes then come from the ``sample_ids`` columns only.
    target
        Target rate for the three rate results.
    loop_ok_a, loop_ok_b
        parcel_id → whether the run's strict-control closed loop reached the minimum
        stages (``LoopResult.loop_ok()``), as ``farmland rate --closed-loop`` counts it;
        ``None``: the measure alone counts. Both or neither (``loop_ok_b`` defaults to
        ``loop_ok_a`` when ``measures_b`` does to ``measures_a``).

    Returns
    -------
    DiffResult
    """
    if measures_a is None and measures_b is not None:
        raise InputError("a measures ledger for run B but none for run A: the rates of both "
                         "runs need one", fix="give run A's ledger too (--measures-a; the "
                                              "same file when one ledger holds both years)")
    if measures_b is None and measures_a is not None:
        log.info("no ledger for run B: using ledger A for both runs")
        measures_b = measures_a
        loop_ok_b = loop_ok_a if loop_ok_b is None else loop_ok_b
    if (loop_ok_a is None) != (loop_ok_b is None) or (loop_ok_a is not None
                                                      and measures_a is None):
        raise InputError("a closed loop for one run only, or without a measures ledger: the "
                         "two rates would not be counted alike",
                         fix="give the closed-loop ledger of both runs (--closed-loop-a and "
                             "--closed-loop-b) with their measures ledgers, or of neither")
    rate_a = rate_b = rate_mixed = None
    if measures_a is not None:
        rate_a, rate_mixed, rate_b = _rates(parcels_a, parcels_b, measures_a, measures_b,
                                            crops_a, crops_b, (loop_ok_a, loop_ok_b),
                                            (manifest_a or {}, manifest_b or {}),
                                            target=target, county_name=county_name)
    ctx = Context.build(manifest_a or {}, manifest_b or {}, samples_a, samples_b)
    merged = _merge(_side(parcels_a, "A", ctx.unit_a), _side(parcels_b, "B", ctx.unit_b))
    ctx.used_a = used_ids(merged["sample_ids_a"]) if not ctx.layers else ctx.used_a
    ctx.used_b = used_ids(merged["sample_ids_b"]) if not ctx.layers else ctx.used_b
    changes = _changes(merged, ctx)
    geometry = _geometry(parcels_a, parcels_b, changes["parcel_id"])
    changes["cause_detail"] = details(changes, ctx, geometry, crops_a, crops_b)
    changes = changes[["parcel_id", "township", "area_mu", "area_a_mu", "area_b_mu",
                       "class_a", "class_b", "flow", "cause", "cause_detail", "rule_a",
                       "rule_b", "reason"]]
    counts = changes["cause"].value_counts()
    log.info("diff: %d changed parcel(s) (%s); %s%s", len(changes),
             ", ".join(f"{c} {counts[c]}" for c in CAUSES if c in counts) or "none",
             f"accounting years A {rate_a.year}, B {rate_b.year}" if rate_a and rate_b
             else "no measures ledger: rates not compared",
             "" if ctx.layers else "; no samples layers: causes from sample_ids only")
    return DiffResult(changes=changes, flows=_flows(merged), rate_a=rate_a, rate_b=rate_b,
                      rate_mixed=rate_mixed, effects=_effects(rate_a, rate_mixed, rate_b),
                      geometry=geometry, samples_layers=ctx.layers,
                      closed_loop=(loop_ok_a is not None, loop_ok_b is not None))


def _rates(parcels_a, parcels_b, measures_a, measures_b, crops_a, crops_b, loops, manifests,
           **kw) -> tuple[RateResult, RateResult, RateResult]:
    """Rates (A, mixed, B), each run's with its rules' accounting settings and its loop;
    the mixed one holds A's ledger, crops, loop and settings fixed."""
    set_a, set_b = (_rate_settings(m) for m in manifests)
    # the caller prints the two rates labelled A and B; the accounting's own INFO line
    # would repeat them unlabelled, and the counterfactual must not look like a rate
    with _quiet(_RATE_LOGGERS, logging.WARNING):
        rate_a = safe_utilisation_rate(parcels_a, measures_a, crops=crops_a, loop_ok=loops[0],
                                       **set_a, **kw)
        rate_b = safe_utilisation_rate(parcels_b, measures_b, crops=crops_b, loop_ok=loops[1],
                                       **set_b, **kw)
    with _quiet(_RATE_LOGGERS, logging.ERROR):  # its warnings repeat those of A and B
        rate_mixed = safe_utilisation_rate(parcels_b, measures_a, crops=crops_a,
                                           year=rate_a.year, loop_ok=loops[0], **set_a, **kw)
    return rate_a, rate_mixed, rate_b


def _rate_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """Accounting mode and township sample minimum of the run's ``[rate]`` rules (its
    manifest), else the built-in rules' (as ``farmland rate`` without options)."""
    from farmland.rules import load_rules

    run = ((manifest.get("rules") or {}).get("values") or {}).get("rate") or {}
    default = load_rules().sections["rate"]
    return {"accounting": run.get("accounting") or default["accounting"],
            "min_township_samples": int(run.get("min_township_crop_samples")
                                        or default["min_township_crop_samples"])}


@contextlib.contextmanager
def _quiet(prefix: str, level: int = logging.WARNING) -> Iterator[None]:
    """Only records of ``level`` and above from the logger ``prefix`` and its children
    (``farmland.rate`` covers the accounting and its evidence and input modules)."""
    names = [prefix, *(n for n in list(logging.root.manager.loggerDict)
                       if n.startswith(prefix + "."))]
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, level))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before, strict=True):
            lg.setLevel(lvl)


# ------------------------------------------------------------------------------ matching
def _side(parcels: pd.DataFrame, name: str, unit: str = "parcel") -> pd.DataFrame:
    """Canonical columns of one run, indexed by text parcel id; ``crop_unit`` is the
    crop-adjustment unit of each parcel (its id unless the rules name a column it has)."""
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
    by_unit = unit != "parcel" and unit in parcels.columns
    out["crop_unit"] = (parcels[unit].astype("str").to_numpy() if by_unit
                        else out["parcel_id"].to_numpy())
    dup = out["parcel_id"].duplicated()
    if dup.any():
        raise InputError(f"parcel ids of run {name} must be unique", column="parcel_id",
                         row=first_rows(out.loc[dup, "parcel_id"].unique()),
                         fix="remove or renumber the duplicated parcels")
    return out


def _merge(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Outer join of the two sides (:func:`_side`) on ``parcel_id``."""
    m = a.merge(b, on="parcel_id", how="outer", suffixes=("_a", "_b"), indicator=True,
                sort=False)
    m["in_a"] = m["_merge"].isin(["both", "left_only"]).to_numpy(bool)
    m["in_b"] = m["_merge"].isin(["both", "right_only"]).to_numpy(bool)
    m["area_mu"] = np.where(m["in_b"], m["area_mu_b"], m["area_mu_a"])
    m["township"] = m["township_b"].where(m["in_b"], m["township_a"])
    return m.drop(columns="_merge")


def _changes(m: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Changed parcels with ``flow``, ``cause`` (vectorised) and the older ``reason``."""
    both = m["in_a"] & m["in_b"]
    class_changed = m["final_class_a"].fillna(0).ne(m["final_class_b"].fillna(0))
    area_changed = (m["area_mu_a"] - m["area_mu_b"]).abs().gt(TOLERANCE_MU)
    c = m.loc[~both | class_changed | area_changed].copy()
    c["flow"] = (pd.Series(_flow_label(c["final_class_a"], c["in_a"]), index=c.index) + "→"
                 + _flow_label(c["final_class_b"], c["in_b"]))
    c["reason"] = [reason_text(r) for r in c[_REASON_COLUMNS].to_dict(orient="records")]
    # per changed row only: the sample-id sets (a handful of ids each)
    sa = [id_set(v) for v in c["sample_ids_a"]]
    sb = [id_set(v) for v in c["sample_ids_b"]]
    c["new_ids"] = [tuple(sorted(b - a - ctx.used_a)) for a, b in zip(sa, sb, strict=True)]
    c["gone_ids"] = [tuple(sorted(a - b - ctx.used_b)) for a, b in zip(sa, sb, strict=True)]
    c["gained_ids"] = [tuple(sorted(b - a)) for a, b in zip(sa, sb, strict=True)]
    c["lost_ids"] = [tuple(sorted(a - b)) for a, b in zip(sa, sb, strict=True)]
    c["same_ids"] = [a == b for a, b in zip(sa, sb, strict=True)]
    in_a, in_b = c["in_a"].to_numpy(bool), c["in_b"].to_numpy(bool)
    moved = c["final_class_a"].fillna(0).ne(c["final_class_b"].fillna(0)).to_numpy(bool)
    soil_same = (c["soil_class_a"].notna() & c["soil_class_a"].eq(c["soil_class_b"])) \
        .fillna(False).to_numpy(bool)
    has_new = c["new_ids"].map(len).gt(0).to_numpy(bool)
    has_gone = c["gone_ids"].map(len).gt(0).to_numpy(bool)
    points = (_base(c["rule_a"]).str.startswith("points:")
              & _base(c["rule_b"]).str.startswith("points:")).to_numpy(bool)
    rules = np.full(len(c), bool(ctx.manifest_notes))
    conditions = [~in_a, ~in_b, ~moved, soil_same, has_new, has_gone, rules, points]
    choices = ["new_parcel", "removed_parcel", "area_changed", "crop_adjustment",
               "new_samples", "removed_samples", "rules_or_standard", "sample_values"]
    c["cause"] = np.select(conditions, choices, default="interpolation")
    out = c.rename(columns={"area_mu_a": "area_a_mu", "area_mu_b": "area_b_mu",
                            "final_class_a": "class_a", "final_class_b": "class_b"})
    return out.sort_values("parcel_id", kind="stable").reset_index(drop=True)


def _base(rule: pd.Series) -> pd.Series:
    return rule.astype("str").fillna("").str.split(";").str[0].fillna("")


def _geometry(parcels_a: pd.DataFrame, parcels_b: pd.DataFrame,
              ids: pd.Series) -> gpd.GeoSeries | None:
    """Geometry of the parcels ``ids``: run B's, run A's where B has none (in B's CRS)."""
    ga, gb = _geoms(parcels_a, ids), _geoms(parcels_b, ids)
    if gb is None:
        return ga
    if ga is None:
        return gb
    if ga.crs is not None and gb.crs is not None and not ga.crs.equals(gb.crs):
        ga = ga.to_crs(gb.crs)
    missing = gb.isna().to_numpy(bool)
    values = np.where(missing, ga.to_numpy(), gb.to_numpy())
    return gpd.GeoSeries(values, index=gb.index, crs=gb.crs if gb.crs else ga.crs)


def _geoms(parcels: pd.DataFrame, ids: pd.Series) -> gpd.GeoSeries | None:
    if not isinstance(parcels, gpd.GeoDataFrame):
        return None
    try:
        geom = parcels.geometry
    except AttributeError:  # a GeoDataFrame without an active geometry column
        return None
    s = gpd.GeoSeries(geom.to_numpy(), index=parcel_ids(parcels["parcel_id"]).to_numpy(),
                      crs=geom.crs)
    return gpd.GeoSeries(s.reindex(ids.to_numpy()).to_numpy(), index=ids.index, crs=geom.crs)




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


def _effects(a: RateResult | None, mixed: RateResult | None,
             b: RateResult | None) -> pd.DataFrame:
    if a is None or mixed is None or b is None:
        return pd.DataFrame(columns=["level", "name", "rate_a", "rate_mixed", "rate_b",
                                     "reclassification_effect", "measures_effect"])

    def rates(r: RateResult, name: str) -> pd.DataFrame:
        return r.table[["level", "name", "rate"]].rename(columns={"rate": name})
    e = rates(a, "rate_a").merge(rates(mixed, "rate_mixed"), on=["level", "name"], how="outer")
    e = e.merge(rates(b, "rate_b"), on=["level", "name"], how="outer")
    e["reclassification_effect"] = e["rate_mixed"] - e["rate_a"]
    e["measures_effect"] = e["rate_b"] - e["rate_mixed"]
    order = e["level"].ne("county").astype(int)
    return e.assign(_o=order).sort_values(["_o", "name"]).drop(columns="_o") \
        .reset_index(drop=True)


