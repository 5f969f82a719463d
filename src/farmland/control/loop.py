"""Closed-loop status of every strict-control (class-3) parcel, its contradictions and the
coverage per township (county plan 三.1, 前、中、后闭环管理; issue 18).

A parcel's loop status is the furthest of none → notified → inspected → harvest_checked →
closed whose stages all passed, in order (:func:`farmland.control.stages.loop_status_of`);
a stage passed when its latest row says pass or 整改 (corrected). Where the loop is not
closed, ``missing_stage`` names the first required stage not passed and ``problem`` says
whether it failed (with date and what was planted) or is missing.

Multi-year: a parcel whose loop was closed in the previous run and that is still class
3 starts this year's loop notified and designated (the designation stands); its
``carried_from`` says so. Parcels of the previous loop that are no longer class 3 are
listed as released.

Contradictions (one row each, ``kind``):

- ``forbidden_planted``: an inspection found a product planted that is controlled on
  the parcel (its product zone's list, else the default banned products);
- ``closed_but_exceeding``: the loop is closed but a crop sample of the year on the
  parcel exceeds GB 2762;
- ``measure_without_designation``: the measures ledger claims a strict-control measure
  on the parcel but no designation passed (nor was carried);
- ``not_class3``: ledger rows for a parcel that is not class 3 in this run.

The township table counts every contradiction in the township of its parcel
(``n_contradictions``; the county row: all of them, the number the log gives), and of
those the ones on ledger parcels that are not class 3 (``n_not_class3``). A township
whose only contradictions are on such parcels gets a row with no class-3 land.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from farmland.control.ledger import stage_results
from farmland.control.stages import (
    DEFAULT_MIN_STAGES,
    STAGES,
    STATUS_LABELS,
    loop_status_of,
    stage_text,
)
from farmland.errors import InputError
from farmland.vocabulary import COUNTY, UNKNOWN_TOWNSHIP, townships_of

__all__ = ["CONTRADICTION_KINDS", "LoopResult", "closed_loop", "parse_min_stages"]

log = logging.getLogger(__name__)

CONTRADICTION_KINDS: dict[str, tuple[str, str]] = {
    "forbidden_planted": ("巡查发现种植管控农产品", "controlled product found planted"),
    "closed_but_exceeding": ("已闭环但农产品超标", "loop closed but a crop sample exceeds"),
    "measure_without_designation": ("有管控措施但未划定", "measure claimed without designation"),
    "not_class3": ("台账图斑非严格管控类", "ledger parcel is not class 3 in this run"),
}
_CARRIED = ("notified", "designated")
_PARCEL_COLUMNS = ["parcel_id", "township", "village", "area_mu", "loop_status", "loop_status_zh",
                   "meets_min", "missing_stage", "problem", "carried_from", "previous_status",
                   "strict_measures", "planted", "destination", "lot_id",
                   *[f"date_{s}" for s in STAGES], "n_contradictions"]


@dataclass(frozen=True)
class LoopResult:
    """Closed-loop status of one year (see the module docstring)."""

    parcels: pd.DataFrame
    townships: pd.DataFrame
    contradictions: pd.DataFrame
    released: pd.DataFrame
    year: int
    min_stages: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def loop_ok(self) -> pd.Series:
        """parcel_id → whether the loop reached :attr:`min_stages` (class-3 parcels)."""
        return pd.Series(self.parcels["meets_min"].to_numpy(bool),
                         index=self.parcels["parcel_id"].astype(str).to_numpy())

    @property
    def county(self) -> pd.Series:
        return self.townships.iloc[-1]

    def to_dict(self) -> dict[str, Any]:
        c = self.county
        return {"year": self.year, "min_stages": list(self.min_stages),
                "n_class3": int(c["n_class3"]), "class3_mu": float(c["class3_mu"]),
                **{f"{s}_mu": float(c[f"{s}_mu"]) for s in STATUS_LABELS},
                "meets_min_mu": float(c["meets_min_mu"]),
                "coverage_min": _none_if_nan(c["coverage_min"]),
                "coverage_closed": _none_if_nan(c["coverage_closed"]),
                "n_contradictions": len(self.contradictions),
                "contradictions_by_kind": {k: int(v) for k, v in
                                           self.contradictions["kind"].value_counts().items()},
                "n_released": len(self.released), **self.extra}


def parse_min_stages(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"designated,inspected"`` → stages in loop order; ``None`` → the default."""
    if value is None:
        return DEFAULT_MIN_STAGES
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise InputError("unknown closed-loop stage", value=",".join(unknown),
                         fix="choose from " + ",".join(STAGES))
    return tuple(s for s in STAGES if s in names)


def closed_loop(parcels: pd.DataFrame, ledger: pd.DataFrame | None, *, year: int,
                measures: pd.DataFrame | None = None, crops: pd.DataFrame | None = None,
                controlled: Mapping[str, Sequence[str]] | None = None,
                default_controlled: Sequence[str] = ("rice", "leafy_veg"),
                previous: pd.DataFrame | None = None, previous_label: str = "",
                min_stages: Sequence[str] = DEFAULT_MIN_STAGES) -> LoopResult:
    """Closed-loop status of the class-3 parcels of ``parcels`` in ``year``.

    Parameters
    ----------
    parcels
        Classification parcels: ``parcel_id, township, village, final_class, area_mu``.
    ledger
        A checked ledger (:func:`farmland.control.ledger.check_ledger`); ``None``: none.
    measures
        Measures ledger (``parcel_id, measure_class, measure_type, year``), optional.
    crops
        Crop samples (``sample_id, crop, year, exceeds, parcel_id``), optional.
    controlled
        parcel_id → products controlled there (the product zones); parcels not in it
        use ``default_controlled``.
    previous
        The previous run's per-parcel loop (``parcel_id, loop_status``), optional.
    min_stages
        Stages a loop needs for its area to count as controlled (D) in the rate.
    """
    min_stages = tuple(min_stages)
    p = pd.DataFrame({"parcel_id": parcels["parcel_id"].astype(str).to_numpy(),
                      "township": townships_of(parcels).to_numpy(),
                      "village": (parcels["village"].astype(object).to_numpy()
                                  if "village" in parcels else None),
                      "final_class": parcels["final_class"].to_numpy(),
                      "area_mu": parcels["area_mu"].astype(float).to_numpy()})
    is3 = pd.array(p["final_class"], dtype="Int8").fillna(0).to_numpy(int) == 3
    c3 = p.loc[is3].reset_index(drop=True)
    led = ledger if ledger is not None else pd.DataFrame(
        columns=["parcel_id", "stage", "date", "result", "planted", "planted_crop",
                 "person", "destination", "lot_id", "row"])
    results = stage_results(led)
    passed: dict[object, set] = {}  # parcel -> stages passed (a loop, not a groupby: fast)
    ok = results["passed"].to_numpy(dtype=bool)
    for pid, stage in zip(results["parcel_id"].to_numpy(dtype=object)[ok],
                          results["stage"].to_numpy(dtype=object)[ok], strict=True):
        passed.setdefault(pid, set()).add(stage)
    # (parcel, stage) -> its latest row: one look-up per parcel, not a scan of the ledger
    latest = {(r.parcel_id, r.stage): r for r in results.itertuples(index=False)}
    prev = _previous(previous)
    carried = np.array([prev.get(pid) == "closed" for pid in c3["parcel_id"]], dtype=bool)
    rows = []
    for k, pid in enumerate(c3["parcel_id"]):
        got = set(passed.get(pid, set()))
        if carried[k]:
            got |= {s for s in _CARRIED if not _failed(latest.get((pid, s)))}
        status, missing = loop_status_of(got)
        rows.append((status, missing, all(s in got for s in min_stages),
                     _problem(latest.get((pid, missing)), missing)))
    c3["loop_status"] = [r[0] for r in rows]
    c3["loop_status_zh"] = c3["loop_status"].map(lambda s: STATUS_LABELS[s][0])
    c3["meets_min"] = np.array([r[2] for r in rows], dtype=bool)
    c3["missing_stage"] = [r[1] or "" for r in rows]
    c3["problem"] = [r[3] for r in rows]
    c3["carried_from"] = np.where(carried, f"划定沿用 designation carried from "
                                  f"{previous_label or 'the previous run'}", "")
    c3["previous_status"] = [prev.get(pid, "") for pid in c3["parcel_id"]]
    c3["strict_measures"] = _strict_measures(c3["parcel_id"], measures, year)
    _stage_details(c3, led, results)
    contradictions = _contradictions(c3, p.loc[~is3], led, crops, year, controlled,
                                     tuple(default_controlled), set(c3.loc[carried, "parcel_id"]))
    counts = contradictions["parcel_id"].value_counts()
    c3["n_contradictions"] = c3["parcel_id"].map(counts).fillna(0).astype(int)
    released = _released(prev, p, is3, previous_label)
    townships = _coverage(c3, contradictions)
    n_other = int(contradictions["kind"].eq("not_class3").sum())
    log.info("closed loop %s: %d class-3 parcel(s), %.1f %% of class-3 area closed, %.1f %% "
             "meets %s; %d contradiction(s) (%d on class-3 parcels, %d on ledger parcels not "
             "class 3)", year, len(c3), 100 * _zero_nan(townships.iloc[-1]["coverage_closed"]),
             100 * _zero_nan(townships.iloc[-1]["coverage_min"]), "+".join(min_stages),
             len(contradictions), len(contradictions) - n_other, n_other)
    return LoopResult(parcels=c3[_PARCEL_COLUMNS], townships=townships,
                      contradictions=contradictions, released=released, year=int(year),
                      min_stages=min_stages)


def _previous(previous: pd.DataFrame | None) -> dict[str, str]:
    if previous is None or previous.empty:
        return {}
    return dict(zip(previous["parcel_id"].astype(str), previous["loop_status"].astype(str),
                    strict=True))


def _failed(latest) -> bool:
    """Whether a stage's latest row (``None``: no row) failed."""
    return latest is not None and latest.result == "fail"


def _problem(latest, missing: str | None) -> str:
    """"failed: 种植巡查 planting inspected 2023-07-02 (planted 稻谷)" or "missing: …"
    from the missing stage's latest row (``None``: no row)."""
    if missing is None:
        return ""
    if _failed(latest):
        planted = latest.planted
        extra = f" (种植 planted {planted})" if isinstance(planted, str) and planted else ""
        return f"未通过 failed: {stage_text(missing)} {latest.date:%Y-%m-%d}{extra}"
    return f"缺失 missing: {stage_text(missing)}"


def _strict_measures(ids: pd.Series, measures: pd.DataFrame | None, year: int) -> list[str]:
    if measures is None or measures.empty:
        return [""] * len(ids)
    m = measures.loc[measures["measure_class"].eq("strict_control")
                     & (measures["year"].isna() | measures["year"].eq(year)).fillna(False)]
    names = (m.assign(parcel_id=m["parcel_id"].astype(str))
             .drop_duplicates(["parcel_id", "measure_type"])
             .groupby("parcel_id")["measure_type"].agg(lambda v: ", ".join(sorted(v))))
    return [names.get(pid, "") for pid in ids]


def _stage_details(c3: pd.DataFrame, led: pd.DataFrame, results: pd.DataFrame) -> None:
    """Dates of each stage's latest row; what the latest inspection found planted; the
    harvest's destination and lot."""
    idx = pd.MultiIndex.from_frame(results[["parcel_id", "stage"]]) if len(results) else None
    for s in STAGES:
        if idx is None:
            c3[f"date_{s}"] = pd.NaT
            continue
        dates = pd.Series(results["date"].to_numpy(), index=idx)
        keys = pd.MultiIndex.from_arrays([c3["parcel_id"], [s] * len(c3)])
        c3[f"date_{s}"] = dates.reindex(keys).to_numpy() if len(c3) else pd.NaT
    for col, stage, src in (("planted", "inspected", "planted"),
                            ("destination", "harvest_checked", "destination"),
                            ("lot_id", "harvest_checked", "lot_id")):
        rows = led.loc[led["stage"].eq(stage)].sort_values("date", kind="stable")
        last = rows.groupby("parcel_id")[src].last() if len(rows) else pd.Series(dtype=object)
        c3[col] = c3["parcel_id"].map(last).astype(object).fillna("").astype(str)


def _contradictions(c3: pd.DataFrame, others: pd.DataFrame, led: pd.DataFrame,
                    crops: pd.DataFrame | None, year: int,
                    controlled: Mapping[str, Sequence[str]] | None,
                    default_controlled: tuple[str, ...], carried: set[str]) -> pd.DataFrame:
    out: list[dict[str, Any]] = []
    info = c3.set_index("parcel_id")
    inspected = led.loc[led["stage"].eq("inspected") & led["planted_crop"].notna()]
    fixes = led.loc[led["stage"].eq("inspected") & led["result"].eq("corrected")]
    inspected_fix = fixes.groupby("parcel_id")["date"].max().to_dict() if len(fixes) else {}
    for r in inspected.itertuples(index=False):
        if r.parcel_id not in info.index:
            continue
        banned = (controlled or {}).get(r.parcel_id, default_controlled)
        if r.planted_crop in banned:
            fixed = inspected_fix.get(r.parcel_id)
            later = (f"; 已整改 corrected {fixed:%Y-%m-%d}"
                     if fixed is not None and fixed > r.date else "")
            out.append(_row(info, r.parcel_id, "forbidden_planted", r.date,
                            f"{r.date:%Y-%m-%d} 巡查发现种植 {r.planted} (管控 controlled: "
                            f"{', '.join(banned)}); {r.row}{later}"))
    if crops is not None and len(crops):
        c = crops.loc[crops["parcel_id"].notna() & crops["exceeds"].fillna(False).astype(bool)
                      & pd.Series(crops["year"]).eq(year).fillna(False).to_numpy(bool)]
        closed = set(c3.loc[c3["loop_status"].eq("closed"), "parcel_id"])
        for pid, g in c.assign(parcel_id=c["parcel_id"].astype(str)).groupby("parcel_id"):
            if pid in closed:
                samples = ", ".join(f"{s} ({cr})" for s, cr in
                                    zip(g["sample_id"], g["crop"], strict=True))
                out.append(_row(info, pid, "closed_but_exceeding", pd.NaT,
                                f"超标样品 exceeding samples: {samples}"))
    designated = set(led.loc[led["stage"].eq("designated")
                             & led["result"].isin(["pass", "corrected"]), "parcel_id"]) | carried
    for r in c3.loc[c3["strict_measures"].ne("")].itertuples(index=False):
        if r.parcel_id not in designated:
            out.append(_row(info, r.parcel_id, "measure_without_designation", pd.NaT,
                            f"措施 measures: {r.strict_measures}; 无划定记录 no designation"))
    stray = led.loc[~led["parcel_id"].isin(info.index)]
    other = others.set_index("parcel_id")
    for pid, g in stray.groupby("parcel_id", sort=True):
        k = other["final_class"].get(pid, pd.NA)
        out.append({"parcel_id": pid, "township": other["township"].get(pid, UNKNOWN_TOWNSHIP),
                    "village": other["village"].get(pid, ""), "kind": "not_class3",
                    "date": pd.NaT,
                    "detail": f"{len(g)} 行 row(s); 本次类别 class in this run: "
                              f"{'未分类 unclassified' if pd.isna(k) else int(k)}"})
    frame = pd.DataFrame(out, columns=["parcel_id", "township", "village", "kind", "date",
                                       "detail"])
    frame.insert(4, "kind_zh", frame["kind"].map(lambda k: CONTRADICTION_KINDS[k][0]))
    if len(frame):
        log.warning("closed loop: %d contradiction(s): %s (see control_contradictions.csv)",
                    len(frame), ", ".join(f"{k} {v}" for k, v in
                                          frame["kind"].value_counts().sort_index().items()))
    return frame.sort_values(["kind", "parcel_id"], kind="stable").reset_index(drop=True)


def _row(info: pd.DataFrame, pid: str, kind: str, date: Any, detail: str) -> dict[str, Any]:
    return {"parcel_id": pid, "township": info.at[pid, "township"],
            "village": info.at[pid, "village"], "kind": kind, "date": date, "detail": detail}


def _released(prev: dict[str, str], p: pd.DataFrame, is3: np.ndarray,
              label: str) -> pd.DataFrame:
    """Parcels of the previous loop that are not class 3 in this run."""
    gone = sorted(set(prev) - set(p.loc[is3, "parcel_id"]))
    cls = p.set_index("parcel_id")["final_class"]
    return pd.DataFrame({"parcel_id": gone,
                         "previous_status": [prev[g] for g in gone],
                         "final_class": [cls.get(g, pd.NA) for g in gone],
                         "previous_run": label})


def _coverage(c3: pd.DataFrame, contradictions: pd.DataFrame) -> pd.DataFrame:
    """Per township and for the county: class-3 area by loop status and the coverage;
    every contradiction counted in its parcel's township (see the module docstring)."""
    a = c3["area_mu"].fillna(0.0)
    area = pd.DataFrame({"township": c3["township"], "n_class3": 1, "class3_mu": a,
                         **{f"{s}_mu": a * c3["loop_status"].eq(s) for s in STATUS_LABELS},
                         "meets_min_mu": a * c3["meets_min"], "n_contradictions": 0,
                         "n_not_class3": 0})
    other = contradictions["kind"].eq("not_class3").to_numpy(bool)
    counts = pd.DataFrame({"township": contradictions["township"].astype(object)
                           .fillna(UNKNOWN_TOWNSHIP).astype(str).to_numpy(),
                           "n_contradictions": 1, "n_not_class3": other.astype(int)})
    frames = [f for f in (area, counts) if len(f)]
    parts = (pd.concat(frames, ignore_index=True).reindex(columns=area.columns).fillna(
        {c: 0 for c in area.columns if c != "township"}) if frames else area)
    by_town = parts.groupby("township", sort=True).sum(numeric_only=True).reset_index()
    county = parts.drop(columns="township").sum(numeric_only=True).to_frame().T
    county.insert(0, "township", COUNTY)
    table = pd.concat([by_town, county], ignore_index=True)
    table["n_class3"] = table["n_class3"].astype(int)
    table["n_contradictions"] = table["n_contradictions"].astype(int)
    table["n_not_class3"] = table["n_not_class3"].astype(int)
    den = table["class3_mu"].where(table["class3_mu"] > 0)
    table["coverage_min"] = table["meets_min_mu"] / den
    table["coverage_closed"] = table["closed_mu"] / den
    table["target"] = 1.0
    table["unclosed_mu"] = table["class3_mu"] - table["closed_mu"]
    return table


def _zero_nan(v: float) -> float:
    return 0.0 if pd.isna(v) else float(v)


def _none_if_nan(v: float) -> float | None:
    return None if pd.isna(v) else float(v)

