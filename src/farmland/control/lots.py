"""Grain-lot screening at purchase (粮食收购批次筛查) against strict-control land.

A lot's sources are the parcels it names (``parcel_ids``) plus the parcels whose
closed-loop ledger has a ``harvest_checked`` row linking them to the lot (``lot_id``);
a lot with no source parcel is screened by its village (and township, when given).
Risk (docs/decisions.md, "Strict-control closed loop (issue 18)"):

- **high 高** — a source parcel lies in a specific-product zone where the lot's crop is
  controlled, or has an exceeding sample of the lot's crop in ``year``;
- **medium 中** — the source is a village (no parcels) holding zone area where the
  lot's crop is controlled; or a source parcel is class 3 although the crop is not
  controlled there; or a source parcel has an exceeding sample of another crop in
  ``year``; or the source village/parcel is not in the parcels (logged warning naming
  the lot);
- **low 低** — none of these.

Crops are compared as grown: a lot of milled rice (大米) is the rice (稻谷) of its
parcels. A lot whose crop is not a GB 2762 category farmland knows (``crop_code`` NA)
cannot be matched to a controlled product: a class-3 source parcel, any exceeding
sample, or (village lots) any zone in the village makes it medium.

``controlled_mu`` is the area of the source parcels where the crop is controlled — or,
for a village lot, of the village's zones where it is. ``elements`` are the metals to
test: those over their limit in the exceeding samples found and the driving elements of
the class-3 source parcels (of the zones' parcels for a village lot); ``cd`` when none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from farmland import classes as C
from farmland.classes import parcel_area_mu
from farmland.control.products import ProductZones, product_names
from farmland.errors import InputError
from farmland.standards import CLASS_ELEMENTS

__all__ = ["LOT_COLUMNS", "LOT_TABLE_HEADERS", "RISK_LEVELS", "TESTS", "lot_table",
           "screen_lots"]

log = logging.getLogger(__name__)

#: risk levels, highest first (the sort order of the screened lots)
RISK_LEVELS = ("high 高", "medium 中", "low 低")
HIGH, MEDIUM, LOW = RISK_LEVELS
#: recommended tests per risk level
TESTS = {
    HIGH: ("收购时逐批镉快速检测，阳性送实验室确证（GB 5009.15） Cd rapid test on every lot "
           "at purchase, positives to lab confirmation (GB 5009.15)"),
    MEDIUM: ("收购时快速检测，可疑结果送实验室确证 rapid test at purchase, suspect results to "
             "lab confirmation"),
    LOW: "按常规抽检 routine sampling",
}
LOT_COLUMNS = ["lot_id", "crop", "tonnage_t", "township", "village", "source_parcels",
               "n_source_parcels", "risk", "reasons", "controlled_mu", "exceeding_samples",
               "tests", "elements"]
#: screened column → bilingual header of the grain-bureau table
LOT_TABLE_HEADERS = {
    "lot_id": "批次号 Lot", "crop": "作物 Crop", "tonnage_t": "数量（吨） Tonnage (t)",
    "township": "乡镇 Township", "village": "村 Village", "source_parcels": "来源图斑 Source parcels",
    "risk": "风险 Risk", "reasons": "原因 Reasons", "tests": "建议检测 Tests",
}
#: products whose lots are the crop grown on the parcels under another name
_GROWN = {"milled_rice": "rice"}


@dataclass
class _Lookups:
    """Per-parcel facts of the classification and the zones."""

    cls: dict[str, int | None]
    area: dict[str, float]
    driver: dict[str, set[str]]
    zone: dict[str, str]
    controlled: dict[str, set[str]]
    exceeding: dict[str, list[tuple[str, str, set[str]]]]  # parcel → (sample, crop, elements)
    parcels: pd.DataFrame
    zones: pd.DataFrame


@dataclass
class _Finding:
    high: list[str] = field(default_factory=list)
    medium: list[str] = field(default_factory=list)
    controlled_mu: float = 0.0
    samples: list[str] = field(default_factory=list)
    elements: set[str] = field(default_factory=set)


def screen_lots(lots: pd.DataFrame, parcels: pd.DataFrame, zones: ProductZones,
                crops: pd.DataFrame | None, *, year: int | None,
                ledger: pd.DataFrame | None = None) -> pd.DataFrame:
    """Screen grain procurement lots for strict-control risk.

    Parameters
    ----------
    lots
        :func:`farmland.io.control_tables.read_lots` output.
    parcels
        Classification ``parcels`` (``parcel_id``, ``final_class``; ``township``,
        ``village``, ``area_mu``, ``driving_element`` when present).
    zones
        :func:`farmland.control.products.product_zones` of the same parcels.
    crops
        Classification ``crops`` layer (``sample_id``, ``crop``, ``year``, ``exceeds``,
        ``parcel_id``, ``grade_<element>``), or None.
    year
        Exceeding samples of this year count; None: every year.
    ledger
        :func:`farmland.io.control_tables.read_control_ledger` output: its
        ``harvest_checked`` rows with a ``lot_id`` add their parcel to that lot's sources.

    Returns
    -------
    pandas.DataFrame
        :data:`LOT_COLUMNS`, one row per lot, sorted high → medium → low, then lot id.
    """
    for col in ("parcel_id", "final_class"):
        if col not in parcels:
            raise InputError(f"parcels lack column {col}", column=col,
                             fix="pass the 'parcels' layer written by `farmland classify`")
    look = _lookups(parcels, zones, crops, year)
    linked = _ledger_sources(ledger)
    rows = [_screen_one(lot, linked.get(str(lot.lot_id), ()), look)
            for lot in lots.itertuples(index=False)]
    out = pd.DataFrame(rows, columns=LOT_COLUMNS)
    out["rank"] = out["risk"].map({r: i for i, r in enumerate(RISK_LEVELS)})
    out = out.sort_values(["rank", "lot_id"], kind="stable").drop(columns="rank")
    counts = out["risk"].value_counts()
    log.info("screened %d lot(s): %d high, %d medium, %d low", len(out),
             counts.get(HIGH, 0), counts.get(MEDIUM, 0), counts.get(LOW, 0))
    return out.reset_index(drop=True)


def lot_table(screened: pd.DataFrame) -> pd.DataFrame:
    """The screened lots with bilingual headers (:data:`LOT_TABLE_HEADERS`) for the grain
    bureau."""
    return pd.DataFrame(screened[list(LOT_TABLE_HEADERS)]).rename(columns=LOT_TABLE_HEADERS)


# ----------------------------------------------------------------------- lookups
def _lookups(parcels: pd.DataFrame, zones: ProductZones, crops: pd.DataFrame | None,
             year: int | None) -> _Lookups:
    ids = parcels["parcel_id"].astype(str).to_numpy(object)
    cls = C.as_class(parcels["final_class"].to_numpy())
    area = _areas(parcels)
    drivers = (parcels["driving_element"].astype(object) if "driving_element" in parcels
               else pd.Series([None] * len(parcels)))
    frame = pd.DataFrame({"parcel_id": ids, "township": _text(parcels, "township"),
                          "village": _text(parcels, "village")})
    zp = zones.parcels
    return _Lookups(
        cls={p: (None if pd.isna(c) else int(c)) for p, c in zip(ids, cls, strict=True)},
        area=dict(zip(ids, area, strict=True)),
        driver={p: _elements(d) for p, d in zip(ids, drivers, strict=True)},
        zone=dict(zip(zp["parcel_id"].astype(str), zp["zone_id"], strict=True)),
        controlled={p: {c for c in str(v).split(",") if c}
                    for p, v in zip(zp["parcel_id"].astype(str), zp["controlled_products"],
                                    strict=True)},
        exceeding=_exceeding(crops, year), parcels=frame,
        zones=pd.DataFrame(zones.zones.drop(columns="geometry")))


def _areas(parcels: pd.DataFrame) -> list[float]:
    """亩 per parcel: ``area_mu`` (net area), else the metric geometry area; 0 when neither."""
    if "geometry" in parcels:
        return parcel_area_mu(parcels).fillna(0.0).astype(float).tolist()
    if "area_mu" in parcels:
        return pd.to_numeric(parcels["area_mu"], errors="coerce").fillna(0.0).astype(float).tolist()
    return [0.0] * len(parcels)


def _text(frame: pd.DataFrame, col: str) -> list[object]:
    if col not in frame:
        return [None] * len(frame)
    return [None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in frame[col]]


def _elements(value: object) -> set[str]:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return set()
    return {e.strip().lower() for e in str(value).replace(";", ",").split(",") if e.strip()}


def _exceeding(crops: pd.DataFrame | None,
               year: int | None) -> dict[str, list[tuple[str, str, set[str]]]]:
    """Exceeding crop samples of ``year`` per parcel, with the elements over their limit."""
    if crops is None or len(crops) == 0:
        return {}
    missing = [c for c in ("sample_id", "crop", "exceeds", "parcel_id") if c not in crops]
    if missing:
        raise InputError(f"crops lack column(s) {', '.join(missing)}", column=missing[0],
                         fix="pass the 'crops' layer written by `farmland classify`")
    c = pd.DataFrame(crops.drop(columns="geometry", errors="ignore"))
    keep = c["exceeds"].astype(object).eq(True) & c["parcel_id"].notna()
    if year is not None and "year" in c:
        keep &= pd.to_numeric(c["year"], errors="coerce").eq(year).fillna(False)
    out: dict[str, list[tuple[str, str, set[str]]]] = {}
    for row in c.loc[keep.to_numpy(bool)].sort_values("sample_id").itertuples(index=False):
        over = {e for e in CLASS_ELEMENTS
                if pd.notna(getattr(row, f"grade_{e}", None))
                and float(getattr(row, f"grade_{e}")) >= 2}
        out.setdefault(str(row.parcel_id), []).append((str(row.sample_id), str(row.crop), over))
    return out


def _ledger_sources(ledger: pd.DataFrame | None) -> dict[str, tuple[str, ...]]:
    """``lot_id → parcel ids`` of the ledger's harvest_checked rows that name a lot."""
    if ledger is None or len(ledger) == 0 or "lot_id" not in ledger:
        return {}
    rows = ledger[ledger["stage"].eq("harvest_checked") & ledger["lot_id"].notna()]
    out: dict[str, tuple[str, ...]] = {}
    for lot, pid in zip(rows["lot_id"].astype(str), rows["parcel_id"].astype(str), strict=True):
        out[lot] = tuple(dict.fromkeys((*out.get(lot, ()), pid)))
    return out


# ----------------------------------------------------------------------- one lot
def _screen_one(lot: object, linked: tuple[str, ...], look: _Lookups) -> dict[str, object]:
    crop = _grown(getattr(lot, "crop_code", None))
    written = getattr(lot, "crop", None)
    sources = tuple(dict.fromkeys((*(str(p) for p in (getattr(lot, "parcel_ids", ()) or ())),
                                   *linked)))
    found = _Finding()
    if sources:
        _screen_parcels(lot, sources, crop, written, look, found)
    else:
        _screen_village(lot, crop, written, look, found)
    risk = HIGH if found.high else MEDIUM if found.medium else LOW
    reasons = found.high + found.medium or [
        "来源图斑非严格管控类且无超标样品 / no class-3 source and no exceeding sample"]
    elements = [e for e in CLASS_ELEMENTS if e in found.elements]
    elements += sorted(found.elements - set(CLASS_ELEMENTS))
    return {"lot_id": lot.lot_id, "crop": written, "tonnage_t": getattr(lot, "tonnage_t", None),
            "township": getattr(lot, "township", None), "village": getattr(lot, "village", None),
            "source_parcels": "; ".join(sources), "n_source_parcels": len(sources),
            "risk": risk, "reasons": "; ".join(reasons),
            "controlled_mu": round(found.controlled_mu, 4),
            "exceeding_samples": ", ".join(dict.fromkeys(found.samples)), "tests": TESTS[risk],
            "elements": ",".join(elements) or "cd"}


def _screen_parcels(lot: object, sources: tuple[str, ...], crop: str | None, written: object,
                    look: _Lookups, found: _Finding) -> None:
    zh = _crop_zh(crop, written)
    missing = [p for p in sources if p not in look.cls]
    for pid in missing:
        found.medium.append(f"来源图斑 {pid} 不在分类图斑中 / source parcel {pid} not found in "
                            "the parcels")
    if missing:
        log.warning("lot %s: source parcel(s) %s not found in the classified parcels: "
                    "screened as medium risk; check the parcel ids", lot.lot_id,
                    ", ".join(missing))
    for pid in (p for p in sources if p in look.cls):
        if crop is not None and crop in look.controlled.get(pid, set()):
            found.high.append(f"图斑 {pid} 位于管控区 {look.zone[pid]}，{zh}禁产 / parcel {pid} "
                              f"lies in zone {look.zone[pid]} where {crop} is controlled")
            found.controlled_mu += look.area[pid]
        elif look.cls[pid] == C.STRICT_CONTROL and crop is not None:
            found.medium.append(f"图斑 {pid} 为严格管控类，{zh}未列入管控 / parcel {pid} is "
                                f"class 3 although {crop} is not controlled there")
        elif look.cls[pid] == C.STRICT_CONTROL:
            found.medium.append(f"图斑 {pid} 为严格管控类，作物 {written} 无法对应管控农产品 / "
                                f"parcel {pid} is class 3; crop {written} is not a known "
                                "category")
        if look.cls[pid] == C.STRICT_CONTROL:
            found.elements |= look.driver[pid]
        for sid, sample_crop, over in look.exceeding.get(pid, []):
            found.samples.append(sid)
            found.elements |= over
            if crop is not None and _grown(sample_crop) == crop:
                found.high.append(f"图斑 {pid} 有{zh}超标样品 {sid} / parcel {pid} has an "
                                  f"exceeding {crop} sample {sid}")
            else:
                found.medium.append(f"图斑 {pid} 有其他作物超标样品 {sid}（{sample_crop}） / parcel "
                                    f"{pid} has an exceeding sample of another crop: {sid} "
                                    f"({sample_crop})")


def _screen_village(lot: object, crop: str | None, written: object, look: _Lookups,
                    found: _Finding) -> None:
    township, village = _clean(getattr(lot, "township", None)), _clean(lot.village)
    where = f"{township or ''}{village or ''}"
    p = look.parcels
    if village is None:
        found.medium.append("批次未注明来源村或图斑 / the lot names no source village or parcel")
        log.warning("lot %s names no source village or parcel: screened as medium risk",
                    lot.lot_id)
        return
    in_village = p["village"].eq(village) & (p["township"].eq(township) if township else True)
    if not in_village.any():
        found.medium.append(f"来源村 {where} 不在分类图斑中 / source village {where} not found "
                            "in the parcels")
        log.warning("lot %s: source village %s is not in the classified parcels: screened as "
                    "medium risk; check the village name", lot.lot_id, where)
        return
    z = look.zones
    z = z[z["village"].eq(village) & (z["township"].eq(township) if township else True)]
    if crop is not None:
        z = z[[crop in str(v).split(",") for v in z["controlled_products"]]]
    if z.empty:
        return
    mu = float(z["area_mu"].sum())
    found.controlled_mu += mu
    ids_zh, ids_en = "、".join(z["zone_id"]), ", ".join(z["zone_id"])
    if crop is not None:
        found.medium.append(f"来源村 {where} 含{_crop_zh(crop, written)}管控区 {ids_zh}（{mu:.2f} "
                            f"亩） / source village {where} holds zone(s) {ids_en} where {crop} "
                            f"is controlled ({mu:.2f} mu)")
    else:
        found.medium.append(f"来源村 {where} 含管控区 {ids_zh}（{mu:.2f} 亩），作物 {written} 无法"
                            f"对应 / source village {where} holds zone(s) {ids_en} ({mu:.2f} mu); "
                            f"crop {written} is not a known category")
    zone_ids = set(z["zone_id"])
    for pid, zid in look.zone.items():
        if zid in zone_ids:
            found.elements |= look.driver.get(pid, set())


def _grown(code: object) -> str | None:
    if code is None or (not isinstance(code, str) and pd.isna(code)) or not str(code).strip():
        return None
    code = str(code).strip().lower()
    return _GROWN.get(code, code)


def _crop_zh(crop: str | None, written: object) -> str:
    return product_names().get(crop, crop) if crop is not None else str(written)


def _clean(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None
