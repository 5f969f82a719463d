"""Specific-product strict-control zones (特定农产品严格管控区域) on class-3 land.

Rules (docs/decisions.md, "Strict-control closed loop (issue 18)"):

- **Members.** Zone members are the class-3 parcels (``final_class`` 3; unclassified
  parcels are not members). They are grouped into contiguous groups with
  :func:`farmland.sampling.zones.contiguous_labels` (parcels closer than ``gap_m``,
  default 30 m, join; a parcel without geometry is a group of its own), and each group
  is split by (township, village): one zone per (group, township, village). Zone ids
  ``PZ001``, ``PZ002`` … follow township, village, then the zone's smallest parcel id.
- **Decisions per group.** Product decisions are made per contiguous group, pooling the
  crop samples of ``year`` (all years when ``year`` is None) that lie on the group's
  parcels (the crops layer's ``parcel_id``); every village piece inherits them. Only
  graded samples count (``exceeds`` True or False; NA is logged and ignored). For each
  product P with samples in the group or in ``banned_by_default``:

  * any sample of P exceeding → banned ("P 超标样品 n 个 / n exceeding samples");
  * P in ``banned_by_default`` with ≥ ``min_allow_samples`` samples, all compliant →
    allowed ("样品达标 samples comply"); fewer → banned ("严格管控类默认禁产 banned by
    default on class-3 land");
  * P not in ``banned_by_default``, samples present, none exceeding → allowed; no
    samples → not listed.
- **Areas** are the sum of the member parcels' ``area_mu`` (net area; geometry area only
  where ``area_mu`` is missing, as everywhere in farmland), never the union's area.
  :meth:`ProductZones.notice` rounds each zone to 0.01 亩 by largest remainder, so the
  rows add up exactly to the rounded class-3 total.

Product Chinese names come from ``name_zh`` of the GB 2762 table
(``farmland/standards/crop_limits.csv``); products are listed in that table's order.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland import classes as C
from farmland.classes import parcel_area_mu
from farmland.crs import require_metric
from farmland.errors import InputError, first_rows
from farmland.sampling.zones import ZONE_GAP_M, contiguous_labels
from farmland.standards.loader import DEFAULT_DIR
from farmland.vocabulary import townships_of

__all__ = ["NOTICE_COLUMNS", "PARCEL_COLUMNS", "PRODUCT_COLUMNS", "UNKNOWN_VILLAGE",
           "ZONE_COLUMNS", "ProductZones", "product_names", "product_zones"]

log = logging.getLogger(__name__)

ZONE_COLUMNS = ["zone_id", "township", "village", "area_mu", "n_parcels", "controlled_products",
                "controlled_zh", "allowed_products", "basis", "geometry"]
PRODUCT_COLUMNS = ["zone_id", "product", "product_zh", "decision", "n_samples", "n_exceeding",
                   "reason"]
PARCEL_COLUMNS = ["parcel_id", "zone_id", "controlled_products"]
NOTICE_COLUMNS = ["乡镇 Township", "村 Village", "区域编号 Zone", "面积（亩） Area (mu)",
                  "管控农产品 Controlled products", "依据 Basis"]
#: village of a parcel that names none
UNKNOWN_VILLAGE = "未知村 unknown"
#: exceeding sample ids listed per product in ``basis``
_SHOWN_IDS = 5


@dataclass(frozen=True)
class ProductZones:
    """Specific-product strict-control zones and their product decisions.

    Attributes
    ----------
    zones
        One row per zone (:data:`ZONE_COLUMNS`), geometry the union of its parcels in the
        parcels' metric CRS.
    products
        One row per zone × product decision (:data:`PRODUCT_COLUMNS`).
    parcels
        One row per class-3 parcel (:data:`PARCEL_COLUMNS`).
    """

    zones: gpd.GeoDataFrame
    products: pd.DataFrame
    parcels: pd.DataFrame

    def notice(self) -> pd.DataFrame:
        """The bilingual government-notice table (:data:`NOTICE_COLUMNS`).

        One row per zone sorted by township, village and zone, then a "合计 Total" row.
        Areas are rounded to 0.01 亩 by largest remainder: the rows sum exactly to the
        total, which is the class-3 area rounded to 0.01 亩.
        """
        z = pd.DataFrame(self.zones.drop(columns="geometry")).sort_values(
            ["township", "village", "zone_id"], kind="stable")
        cents = _rounded_cents(z["area_mu"].to_numpy(float))
        controlled = [f"{zh}（{codes}）" if codes else "无 none"
                      for zh, codes in zip(z["controlled_zh"], z["controlled_products"],
                                           strict=True)]
        rows = pd.DataFrame({
            NOTICE_COLUMNS[0]: z["township"].to_numpy(object),
            NOTICE_COLUMNS[1]: z["village"].to_numpy(object),
            NOTICE_COLUMNS[2]: z["zone_id"].to_numpy(object),
            NOTICE_COLUMNS[3]: cents / 100,
            NOTICE_COLUMNS[4]: np.asarray(controlled, dtype=object),
            NOTICE_COLUMNS[5]: z["basis"].to_numpy(object),
        })
        total_row = pd.DataFrame([{NOTICE_COLUMNS[0]: "合计 Total", NOTICE_COLUMNS[1]: "",
                                   NOTICE_COLUMNS[2]: "", NOTICE_COLUMNS[3]: int(cents.sum()) / 100,
                                   NOTICE_COLUMNS[4]: "", NOTICE_COLUMNS[5]: ""}])
        return pd.concat([rows, total_row], ignore_index=True)[NOTICE_COLUMNS]


def product_zones(parcels: gpd.GeoDataFrame, crops: pd.DataFrame | None, *, year: int | None,
                  banned_by_default: Sequence[str] = ("rice", "leafy_veg"),
                  min_allow_samples: int = 3, gap_m: float = ZONE_GAP_M) -> ProductZones:
    """Delimit specific-product strict-control zones on the class-3 parcels.

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer: ``parcel_id``, ``final_class`` (1/2/3/<NA>),
        ``township``, ``village``, ``area_mu``, ``driving_element``, geometry in a metric
        CRS (metres).
    crops
        Classification ``crops`` layer (``sample_id``, ``crop`` canonical code,
        ``year``, ``exceeds``, ``parcel_id``), or None: decisions from
        ``banned_by_default`` only.
    year
        Crop samples of this year decide; None pools every year.
    banned_by_default
        Products banned on class-3 land unless enough compliant samples clear them.
    min_allow_samples
        Compliant samples (none exceeding) needed to allow a default-banned product.
    gap_m
        Zone gap in metres: class-3 parcels closer than this form one contiguous group.

    Returns
    -------
    ProductZones
        ``zones``, ``products``, ``parcels`` (see the module docstring for the rules).

    Raises
    ------
    CRSError
        If the parcels are not in a projected CRS.
    InputError
        If a required column is missing from the parcels or crops.
    """
    require_metric(parcels)
    _require(parcels, ("parcel_id", "final_class"), "parcels", "classification 'parcels' layer")
    cls = C.as_class(parcels["final_class"].to_numpy())
    members = parcels.loc[(cls == C.STRICT_CONTROL).fillna(False).to_numpy()]
    if members.empty:
        log.info("no class-3 parcel: no specific-product strict-control zone")
        return _empty(parcels.crs)
    frame = _member_frame(members, gap_m)
    decisions = _group_decisions(frame, crops, year=year, banned_by_default=banned_by_default,
                                 min_allow_samples=min_allow_samples)
    pieces = _pieces(frame)
    result = _assemble(frame, pieces, decisions, members.geometry.to_numpy(), parcels.crs)
    log.info("%d specific-product strict-control zone(s) in %d contiguous group(s), %.2f 亩 "
             "(zone gap %g m)", len(result.zones), frame["label"].nunique(),
             result.zones["area_mu"].sum(), gap_m)
    return result


# ----------------------------------------------------------------------- members, groups
def _member_frame(members: gpd.GeoDataFrame, gap_m: float) -> pd.DataFrame:
    """Per class-3 parcel: id, township, village, 亩, driver and contiguous-group label."""
    geoms = members.geometry.to_numpy()
    has_geom = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    labels = np.empty(len(members), dtype=np.int64)
    labels[has_geom] = contiguous_labels(geoms[has_geom], tolerance=gap_m)
    n_geom = int(labels[has_geom].max()) + 1 if has_geom.any() else 0
    labels[~has_geom] = n_geom + np.arange(int((~has_geom).sum()))
    if (~has_geom).any():
        log.warning("%d class-3 parcel(s) without geometry (%s): each is a zone of its own",
                    int((~has_geom).sum()),
                    first_rows(members.loc[~has_geom, "parcel_id"].astype(str)))
    return pd.DataFrame({
        "pos": np.arange(len(members)),
        "parcel_id": members["parcel_id"].astype(str).to_numpy(object),
        "township": townships_of(members).to_numpy(object),
        "village": _villages_of(members).to_numpy(object),
        "area_mu": parcel_area_mu(members).to_numpy(float),
        "label": labels,
    })


def _villages_of(parcels: pd.DataFrame) -> pd.Series:
    if "village" not in parcels:
        return pd.Series(UNKNOWN_VILLAGE, index=parcels.index, dtype=object)
    v = parcels["village"].astype(object)
    ok = v.notna() & (v.astype(str).str.strip() != "")
    return v.where(ok, UNKNOWN_VILLAGE).astype(str)


def _pieces(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, township, village) with its zone id, in notice order."""
    g = frame.groupby(["label", "township", "village"], sort=False)
    pieces = g.agg(first_parcel=("parcel_id", "min"), area_mu=("area_mu", "sum"),
                   n_parcels=("parcel_id", "size")).reset_index()
    pieces = pieces.sort_values(["township", "village", "first_parcel"], kind="stable")
    pieces["zone_id"] = [f"PZ{i:03d}" for i in range(1, len(pieces) + 1)]
    return pieces.reset_index(drop=True)


# ----------------------------------------------------------------------- decisions
def _group_decisions(frame: pd.DataFrame, crops: pd.DataFrame | None, *, year: int | None,
                     banned_by_default: Sequence[str], min_allow_samples: int) -> pd.DataFrame:
    """One row per (group label, product): counts, exceeding ids, decision and reason."""
    samples = _group_samples(frame, crops, year)
    default = list(dict.fromkeys(str(p) for p in banned_by_default))
    rows = []
    by_label = dict(tuple(samples.groupby("label", sort=False)))
    empty = samples.iloc[0:0]
    for label in sorted(frame["label"].unique()):
        own = by_label.get(label, empty)
        by_crop = dict(tuple(own.groupby("crop", sort=False)))
        for product in _ordered(set(own["crop"]) | set(default)):
            s = by_crop.get(product, empty)
            exceeding = s.loc[s["exceeds"], "sample_id"].tolist()
            decision, reason = _decide(product, len(s), len(exceeding), product in default,
                                       min_allow_samples)
            if decision is not None:
                rows.append({"label": label, "product": product, "decision": decision,
                             "n_samples": len(s), "n_exceeding": len(exceeding),
                             "exceeding_ids": exceeding, "reason": reason})
    cols = ["label", "product", "decision", "n_samples", "n_exceeding", "exceeding_ids", "reason"]
    return pd.DataFrame(rows, columns=cols)


def _decide(product: str, n: int, n_exceeding: int, by_default: bool,
            min_allow: int) -> tuple[str | None, str]:
    """(decision, reason) of one product in one contiguous group; (None, "") = not listed."""
    zh = product_names().get(product, product)
    if n_exceeding:
        return "banned", f"{zh} 超标样品 {n_exceeding} 个 / {n_exceeding} exceeding samples"
    if by_default and n >= min_allow:
        return "allowed", f"样品达标 samples comply: {n}/{n}"
    if by_default:
        extra = (f"达标样品 {n} 个，少于 {min_allow} 个 / {n} compliant sample(s), fewer than "
                 f"{min_allow}" if n else "无样品 / no samples")
        return "banned", f"严格管控类默认禁产 banned by default on class-3 land: {extra}"
    if n:
        return "allowed", f"样品达标 samples comply: {n}/{n}"
    return None, ""


def _group_samples(frame: pd.DataFrame, crops: pd.DataFrame | None,
                   year: int | None) -> pd.DataFrame:
    """Graded crop samples of ``year`` on class-3 parcels, with their group label."""
    cols = ["sample_id", "crop", "exceeds", "label"]
    if crops is None or len(crops) == 0:
        return pd.DataFrame(columns=cols).astype({"exceeds": bool})
    _require(crops, ("sample_id", "crop", "exceeds", "parcel_id") + (("year",) if year is not None else ()),
             "crops", "classification 'crops' layer")
    c = pd.DataFrame(crops.drop(columns="geometry", errors="ignore"))
    if year is not None:
        c = c[pd.to_numeric(c["year"], errors="coerce").eq(year).fillna(False).to_numpy(bool)]
    label_of = dict(zip(frame["parcel_id"], frame["label"], strict=True))
    c = c.assign(label=c["parcel_id"].astype(object).map(
        lambda p: label_of.get(str(p)) if pd.notna(p) else None))
    c = c[c["label"].notna()]
    exceeds = pd.array(c["exceeds"].astype(object).where(c["exceeds"].notna(), None),
                       dtype="boolean")
    ungraded = exceeds.isna()
    if ungraded.any():
        log.info("%d crop sample(s) on class-3 land have no exceedance verdict (%s): not "
                 "counted for product decisions", int(ungraded.sum()),
                 first_rows(c.loc[ungraded, "sample_id"].astype(str)))
    c = c[~ungraded]
    return pd.DataFrame({"sample_id": c["sample_id"].astype(str).to_numpy(object),
                         "crop": c["crop"].astype(str).to_numpy(object),
                         "exceeds": exceeds[~ungraded].to_numpy(bool),
                         "label": c["label"].astype(np.int64).to_numpy()}, columns=cols)


# ----------------------------------------------------------------------- assembly
def _assemble(frame: pd.DataFrame, pieces: pd.DataFrame, decisions: pd.DataFrame,
              geoms: np.ndarray, crs: object) -> ProductZones:
    products = pieces[["label", "zone_id"]].merge(decisions, on="label", how="left")
    products = products[products["product"].notna()].copy()
    products["product_zh"] = products["product"].map(lambda p: product_names().get(p, p))
    products["order"] = products["product"].map(_rank)
    products = products.sort_values(["zone_id", "order", "product"], kind="stable")
    lists = {zid: _lists(d) for zid, d in products.groupby("zone_id", sort=False)}
    empty_lists = ("", "", "")
    z = pieces.copy()
    z["controlled_products"] = [lists.get(zid, empty_lists)[0] for zid in z["zone_id"]]
    z["controlled_zh"] = [lists.get(zid, empty_lists)[1] for zid in z["zone_id"]]
    z["allowed_products"] = [lists.get(zid, empty_lists)[2] for zid in z["zone_id"]]
    by_label = {lab: d for lab, d in decisions.groupby("label")}
    z["basis"] = [_basis(r.n_parcels, r.area_mu, by_label.get(r.label))
                  for r in z.itertuples(index=False)]
    member = frame.merge(z[["label", "township", "village", "zone_id", "controlled_products"]],
                         on=["label", "township", "village"], how="left")
    positions = member.groupby("zone_id", sort=False)["pos"].agg(list)
    union = [_union(geoms[np.asarray(positions.get(zid, []), dtype=int)])
             for zid in z["zone_id"]]
    zones = gpd.GeoDataFrame(z.drop(columns=["label", "first_parcel"]),
                             geometry=gpd.GeoSeries(union, crs=crs), crs=crs)
    zones["n_parcels"] = zones["n_parcels"].astype(np.int64)
    parcel_rows = member.sort_values("pos")[PARCEL_COLUMNS].reset_index(drop=True)
    return ProductZones(zones=zones[ZONE_COLUMNS].reset_index(drop=True),
                        products=products[PRODUCT_COLUMNS].reset_index(drop=True)
                        .astype({"n_samples": np.int64, "n_exceeding": np.int64}),
                        parcels=parcel_rows)


def _lists(decisions: pd.DataFrame) -> tuple[str, str, str]:
    """(controlled codes, controlled Chinese names, allowed codes) of one zone."""
    banned = decisions[decisions["decision"] == "banned"]
    allowed = decisions[decisions["decision"] == "allowed"]
    return (",".join(banned["product"]), "、".join(banned["product_zh"]),
            ",".join(allowed["product"]))


def _basis(n_parcels: int, area_mu: float, decisions: pd.DataFrame | None) -> str:
    """Bilingual basis of one zone: its class-3 parcels and the group's exceeding samples."""
    zh = f"严格管控类图斑 {n_parcels} 个，{area_mu:.2f} 亩"
    en = f"{n_parcels} class-3 parcel(s), {area_mu:.2f} mu"
    hits = (decisions[decisions["n_exceeding"] > 0] if decisions is not None
            else pd.DataFrame(columns=["product", "exceeding_ids"]))
    if hits.empty:
        return f"{zh}；连片区无超标农产品样品 / {en}; no exceeding crop sample in the area"
    parts_zh, parts_en = [], []
    for product, ids in zip(hits["product"], hits["exceeding_ids"], strict=True):
        more = "等" if len(ids) > _SHOWN_IDS else ""
        parts_zh.append(f"{product_names().get(product, product)} {len(ids)} 个"
                        f"（{'、'.join(ids[:_SHOWN_IDS])}{more}）")
        parts_en.append(f"{product} {len(ids)} ({first_rows(ids, _SHOWN_IDS)})")
    return (f"{zh}；连片区超标样品：{'；'.join(parts_zh)} / {en}; exceeding samples in the "
            f"area: {'; '.join(parts_en)}")


def _union(geoms: np.ndarray) -> object:
    geoms = np.array([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    if len(geoms) == 0:
        return None
    return geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)


def _empty(crs: object) -> ProductZones:
    zones = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in ZONE_COLUMNS[:-1]},
                             geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    zones = zones.astype({"area_mu": float, "n_parcels": np.int64})
    products = pd.DataFrame({c: pd.Series(dtype=object) for c in PRODUCT_COLUMNS}).astype(
        {"n_samples": np.int64, "n_exceeding": np.int64})
    parcels = pd.DataFrame({c: pd.Series(dtype=object) for c in PARCEL_COLUMNS})
    return ProductZones(zones=zones[ZONE_COLUMNS], products=products, parcels=parcels)


# ----------------------------------------------------------------------- helpers
@functools.cache
def product_names() -> dict[str, str]:
    """``crop code → name_zh`` from the GB 2762 table, in the table's row order."""
    table = pd.read_csv(DEFAULT_DIR / "crop_limits.csv", dtype=str, keep_default_na=False)
    return {str(c).strip().lower(): str(n).strip()
            for c, n in zip(table["crop"], table["name_zh"], strict=True)}


def _rank(product: str) -> int:
    order = list(product_names())
    return order.index(product) if product in order else len(order)


def _ordered(products: set[str]) -> list[str]:
    return sorted(products, key=lambda p: (_rank(p), p))


def _rounded_cents(values: np.ndarray) -> np.ndarray:
    """``values`` in hundredths (integers) that sum to the rounded total: largest remainder."""
    exact = values * 100
    cents = np.floor(exact).astype(np.int64)
    short = round(float(np.sum(values)) * 100) - int(cents.sum())
    order = np.argsort(-(exact - cents), kind="stable")
    cents[order[:max(short, 0)]] += 1
    return cents


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str, fix: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise InputError(f"{what} lack column(s) {', '.join(missing)}", column=missing[0],
                         fix=f"pass the {fix} written by `farmland classify`")
