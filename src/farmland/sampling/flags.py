"""Sparse-data and uncertainty flags for re-sampling (domain.md §5).

:func:`flag_sparse` returns a :class:`FlagResult` with one GeoDataFrame per flag,
each row carrying a ``flag`` code, a bilingual reason and the figures behind it:

============================  ==========================================================
layer                         what is flagged
============================  ==========================================================
``empty_cells``               1 km grid cells (origin at multiples of the cell size)
                              holding farmland but no soil sample
``sparse_townships``          townships whose farmland has < 1 sample per km²
``thin_zones``                contiguous class-3 and class-2 zones with < 3 samples
``uncertain_parcels``         a value within ±margin of a threshold, or a probability
                              (or, without probabilities, an area share) ≥ 0.2 of
                              another class
``crop_exceedance_class1``    crop samples above their limit on class-1 land
``unclassified``              parcels without a class, with the rule's reason
============================  ==========================================================

plus ``summary``, a per-township table. Geometries stay in the parcels' metric CRS;
areas are in 亩 from the parcels' ``area_mu`` (cells get the pro-rata share).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland import classes as C
from farmland.classes import parcel_area_mu
from farmland.crs import require_metric, same_crs
from farmland.errors import first_rows
from farmland.io.values import parse_boolean
from farmland.sampling.uncertainty import (
    other_class_probability,
    parcel_threshold_proximity,
)
from farmland.sampling.zones import (
    ZONE_GAP_M,
    class_zones,
    farmland_cells,
    sample_cells,
    usable_samples,
)
from farmland.vocabulary import COUNTY, UNKNOWN_TOWNSHIP, rule_label, townships_of

log = logging.getLogger(__name__)

KM2_PER_MU = 1 / 1500  # 1 km² = 1500 亩

#: reason templates per flag code: (Chinese, English)
REASONS: dict[str, tuple[str, str]] = {
    "empty_cell": ("{cell:g} m 网格内有耕地 {mu:.1f} 亩但无土壤点位",
                   "{cell:g} m cell with {mu:.1f} mu of farmland and no soil sample"),
    "sparse_township": (
        "耕地点位密度 {density:.2f} 个/km² 低于 {limit:g}（耕地 {km2:.2f} km²，点位 {n} 个）",
        "{density:.2f} samples/km² of farmland, below {limit:g} ({km2:.2f} km² farmland, "
        + "{n} samples)"),
    "thin_zone": (
        "{label_zh}连片区 {mu:.1f} 亩仅有 {n} 个土壤点位（少于 {min} 个）",
        "contiguous {label_en} zone of {mu:.1f} mu with {n} soil sample(s) (fewer than {min})"),
    "probability": ("属于其他类别的概率 {value:.2f} ≥ {limit:g}",
                    "probability {value:.2f} of another class (≥ {limit:g})"),
    "class_share": ("其他类别面积占比 {value:.2f} ≥ {limit:g}",
                    "{value:.2f} of the area estimated in another class (≥ {limit:g})"),
    "near_threshold": ("{element} 含量为{kind_zh}的 {ratio:.2f} 倍（±{margin:.0%} 以内）",
                       "{element} at {ratio:.2f} × its {kind_en} value (within ±{margin:.0%})"),
    "crop_exceedance_class1": (
        "优先保护类耕地上农产品超标（{crop}，等级 {grade}）",
        "crop above its limit on priority-protection land ({crop}, grade {grade})"),
}
THRESHOLD_KINDS = {"screening": ("筛选值", "screening"), "intervention": ("管制值", "intervention")}
#: bilingual headers of the summary table (CSV and terminal)
SUMMARY_HEADERS: dict[str, str] = {
    "township": "乡镇 township", "n_parcels": "图斑数 parcels", "farmland_mu": "耕地(亩) farmland mu",
    "farmland_km2": "耕地(km²) farmland km2", "n_samples": "土壤点位 samples",
    "density_per_km2": "密度(个/km²) density", "sparse": "密度不足 sparse",
    "empty_cells": "空白网格 empty cells", "empty_cells_mu": "空白网格耕地(亩) empty-cell mu",
    "thin_zones": "点位不足连片区 thin zones", "thin_zones_mu": "连片区(亩) thin-zone mu",
    "uncertain_parcels": "类别不确定图斑 uncertain parcels",
    "uncertain_mu": "不确定(亩) uncertain mu",
    "crop_exceedance_class1": "优先保护类农产品超标 crop exceedances on class 1",
    "unclassified": "未分类图斑 unclassified", "unclassified_mu": "未分类(亩) unclassified mu",
}
LAYERS = ("empty_cells", "sparse_townships", "thin_zones", "uncertain_parcels",
          "crop_exceedance_class1", "unclassified")


@dataclass(frozen=True)
class FlagResult:
    """Flags for re-sampling: one GeoDataFrame per flag plus a per-township summary."""

    empty_cells: gpd.GeoDataFrame
    sparse_townships: gpd.GeoDataFrame
    thin_zones: gpd.GeoDataFrame
    uncertain_parcels: gpd.GeoDataFrame
    crop_exceedance_class1: gpd.GeoDataFrame
    unclassified: gpd.GeoDataFrame
    summary: pd.DataFrame
    parameters: dict = field(default_factory=dict)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The flag layers by name, in :data:`LAYERS` order."""
        return {name: getattr(self, name) for name in LAYERS}

    def flagged_area(self, parcels: gpd.GeoDataFrame) -> np.ndarray:
        """Polygons of everything flagged (point flags become their parcels).

        Parameters
        ----------
        parcels
            The parcels the flags were computed from (to turn crop points into areas).

        Returns
        -------
        numpy.ndarray
            Shapely polygons in the parcels' CRS (may be empty).
        """
        return flagged_polygons(self.layers(), parcels)


def flagged_polygons(layers: dict[str, gpd.GeoDataFrame], parcels: gpd.GeoDataFrame
                     ) -> np.ndarray:
    """Polygons of the flag ``layers`` (name → layer, names of :data:`LAYERS`, in the
    parcels' CRS); the crop points of ``crop_exceedance_class1`` become the parcels they
    name (``parcel_id``)."""
    parts = [g.geometry.values for n, g in layers.items()
             if n != "crop_exceedance_class1" and len(g)]
    crops = layers.get("crop_exceedance_class1")
    if crops is not None and len(crops):
        hit = parcels["parcel_id"].astype(str).isin(set(crops["parcel_id"].astype(str)))
        parts.append(parcels.geometry.values[hit.to_numpy()])
    return np.concatenate(parts) if parts else np.array([], dtype=object)


def flag_sparse(
    parcels: gpd.GeoDataFrame,
    samples: gpd.GeoDataFrame,
    *,
    crops: gpd.GeoDataFrame | None = None,
    townships: gpd.GeoDataFrame | None = None,
    cell_size: float = 1000.0,
    min_density_per_km2: float = 1.0,
    min_zone_samples: int = 3,
    zone_gap: float = ZONE_GAP_M,
    probability_threshold: float = 0.2,
    margin: float = 0.1,
) -> FlagResult:
    """Flag where soil data are too sparse or a class is uncertain (domain.md §5).

    Parameters
    ----------
    parcels
        Classification ``parcels`` layer (docs/schema.md) in a metric CRS (metres).
    samples
        Classification ``samples`` layer (``usable`` samples count; ``pi_<el>``,
        ``ph``, metal values and ``landuse_used`` feed the near-threshold check).
    crops
        Classification ``crops`` layer (``exceeds``, ``parcel_id``); without it the
        parcels' ``crop_exceedance`` column is used.
    townships
        Township polygons (``township``, geometry) for the sparse-township layer;
        without them a township's geometry is the union of its parcels.
    cell_size
        Grid cell side in metres; cells are aligned to multiples of it.
    min_density_per_km2
        Townships whose farmland has fewer samples per km² are flagged.
    min_zone_samples
        Contiguous class-3/class-2 zones with fewer samples are flagged.
    zone_gap
        Parcels closer than this (metres) form one contiguous zone (default 30 m).
    probability_threshold
        A parcel whose probability (or area share) of another class reaches this is
        uncertain.
    margin
        Relative margin around a screening or intervention value (0.1 = ±10 %).

    Returns
    -------
    FlagResult
    """
    require_metric(parcels)
    samples = same_crs(usable_samples(samples), parcels, "samples")
    parcels = parcels.assign(area_mu=parcel_area_mu(parcels), township=townships_of(parcels))
    cells, cell_pairs = empty_cells(parcels, samples, cell_size=cell_size)
    towns = sparse_townships(parcels, samples, townships=townships,
                             min_density_per_km2=min_density_per_km2)
    zones = thin_zones(parcels, samples, min_zone_samples=min_zone_samples, zone_gap=zone_gap)
    uncertain = uncertain_parcels(parcels, samples, probability_threshold=probability_threshold,
                                  margin=margin)
    crop_flags = crop_exceedance_class1(parcels, crops)
    unclassified = unclassified_parcels(parcels)
    summary = _summary(parcels, towns, cell_pairs, zones, uncertain, crop_flags, unclassified,
                       min_density_per_km2)
    params = {"cell_size": cell_size, "min_density_per_km2": min_density_per_km2,
              "min_zone_samples": min_zone_samples, "zone_gap_m": zone_gap,
              "probability_threshold": probability_threshold, "margin": margin}
    log.info("flags: %d empty cells, %d sparse townships, %d thin zones, %d uncertain parcels, "
             "%d crop exceedances on class 1, %d unclassified parcels", len(cells),
             int(towns["sparse"].sum()) if len(towns) else 0, len(zones), len(uncertain),
             len(crop_flags), len(unclassified))
    return FlagResult(cells, towns.loc[towns["sparse"]].drop(columns="sparse").reset_index(
        drop=True), zones, uncertain, crop_flags, unclassified, summary, params)


# ----------------------------------------------------------------------- grid cells
def empty_cells(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
                cell_size: float) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Grid cells with farmland and no sample; also the (cell, township) farmland table.

    Returns
    -------
    tuple
        The ``empty_cells`` layer (``flag``, ``cell_id`` = SW corner ``x_y`` in
        metres, ``ix``, ``iy``, ``township`` holding most of the cell's farmland,
        ``farmland_mu``, ``n_parcels``, reasons, geometry = cell square) and a frame
        of ``ix, iy, township, mu, empty`` for the summary.
    """
    split = farmland_cells(parcels, cell_size)
    split["mu"] = split["frac"] * parcels["area_mu"].to_numpy()[split["pos"]]
    split["township"] = parcels["township"].to_numpy()[split["pos"]]
    filled = sample_cells(samples, cell_size)
    pairs = split.groupby(["ix", "iy", "township"], as_index=False)["mu"].sum()
    pairs["empty"] = [(a, b) not in filled for a, b in zip(pairs["ix"], pairs["iy"])]
    empty = pairs.loc[pairs["empty"]].sort_values(["ix", "iy", "mu", "township"],
                                                  ascending=[True, True, False, True])
    cells = empty.groupby(["ix", "iy"], as_index=False).agg(
        township=("township", "first"), farmland_mu=("mu", "sum"))
    n_parc = split.groupby(["ix", "iy"])["pos"].nunique()
    cells["n_parcels"] = n_parc.reindex(pd.MultiIndex.from_frame(cells[["ix", "iy"]])).to_numpy()
    cells["farmland_mu"] = cells["farmland_mu"].round(4)
    x0, y0 = cells["ix"] * cell_size, cells["iy"] * cell_size
    cells.insert(0, "cell_id", [f"{a:.0f}_{b:.0f}" for a, b in zip(x0, y0)])
    cells.insert(0, "flag", "empty_cell")
    zh, en = REASONS["empty_cell"]
    cells["reason_zh"] = [zh.format(cell=cell_size, mu=m) for m in cells["farmland_mu"]]
    cells["reason_en"] = [en.format(cell=cell_size, mu=m) for m in cells["farmland_mu"]]
    geoms = shapely.box(x0, y0, x0 + cell_size, y0 + cell_size)
    return gpd.GeoDataFrame(cells, geometry=geoms, crs=parcels.crs), pairs


# ----------------------------------------------------------------------- townships
def sample_townships(samples: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> np.ndarray:
    """Township of each sample: that of the parcel holding it, else of the nearest parcel."""
    if samples.empty or parcels.empty:
        return np.array([], dtype=object)
    tree = shapely.STRtree(parcels.geometry.values)
    s_idx, p_idx = tree.query_nearest(samples.geometry.values, all_matches=False)
    out = np.full(len(samples), UNKNOWN_TOWNSHIP, dtype=object)
    out[s_idx] = parcels["township"].to_numpy()[p_idx]
    return out


def sparse_townships(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
                     townships: gpd.GeoDataFrame | None, min_density_per_km2: float
                     ) -> gpd.GeoDataFrame:
    """Every township's farmland, samples and density; ``sparse`` marks the flagged ones.

    Density = samples assigned to the township (:func:`sample_townships`) per km² of
    its farmland (Σ ``area_mu`` / 1500).
    """
    table = parcels.groupby("township").agg(n_parcels=("parcel_id", "size"),
                                            farmland_mu=("area_mu", "sum"))
    n = pd.Series(sample_townships(samples, parcels)).value_counts()
    table["n_samples"] = n.reindex(table.index, fill_value=0).astype(int)
    table["farmland_km2"] = table["farmland_mu"] * KM2_PER_MU
    with np.errstate(divide="ignore", invalid="ignore"):
        table["density_per_km2"] = table["n_samples"] / table["farmland_km2"]
    table["sparse"] = table["density_per_km2"] < min_density_per_km2
    table = table.reset_index()
    table.insert(0, "flag", "sparse_township")
    zh, en = REASONS["sparse_township"]
    fmt = [{"density": d, "limit": min_density_per_km2, "km2": k, "n": s} for d, k, s in
           zip(table["density_per_km2"], table["farmland_km2"], table["n_samples"])]
    table["reason_zh"] = [zh.format(**f) for f in fmt]
    table["reason_en"] = [en.format(**f) for f in fmt]
    for col, nd in (("farmland_mu", 4), ("farmland_km2", 6), ("density_per_km2", 4)):
        table[col] = table[col].round(nd)
    geoms = _township_geometries(parcels, table, townships)
    return gpd.GeoDataFrame(table, geometry=geoms, crs=parcels.crs)


def _township_geometries(parcels: gpd.GeoDataFrame, table: pd.DataFrame,
                         townships: gpd.GeoDataFrame | None) -> np.ndarray:
    """Township polygons by name; the union of the township's parcels where none is given
    (only computed for sparse townships: the others are not part of the layer)."""
    given: dict[str, object] = {}
    if townships is not None and len(townships):
        towns = same_crs(townships, parcels, "townships")
        given = dict(zip(towns["township"].astype(str), towns.geometry.values))
    out = np.empty(len(table), dtype=object)
    groups = parcels.groupby("township").indices
    geoms = parcels.geometry.values
    for i, (name, sparse) in enumerate(zip(table["township"], table["sparse"])):
        if name in given:
            out[i] = given[name]
        elif sparse:
            out[i] = shapely.union_all(geoms[groups[name]])
        else:
            out[i] = None
    missing = sorted(set(table["township"]) - set(given))
    if given and missing:
        log.warning("no township polygon for %s: using the union of their parcels",
                    ", ".join(missing[:5]))
    return out


# ----------------------------------------------------------------------- zones
def thin_zones(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
               min_zone_samples: int, zone_gap: float = ZONE_GAP_M) -> gpd.GeoDataFrame:
    """Contiguous class-3 and class-2 zones with fewer than ``min_zone_samples`` samples."""
    parts = []
    for cls in (C.STRICT_CONTROL, C.SAFE_UTILISATION):
        z = class_zones(parcels, samples, final_class=cls, tolerance=zone_gap)
        parts.append(z.loc[z["n_samples"] < min_zone_samples])
    zones = pd.concat(parts, ignore_index=True)
    zones.insert(0, "flag", "thin_zone")
    zh, en = REASONS["thin_zone"]
    fmt = [{"label_zh": C.label_zh(c), "label_en": C.label_en(c).lower(), "mu": m, "n": n,
                "min": min_zone_samples}
           for c, m, n in zip(zones["final_class"], zones["area_mu"], zones["n_samples"])]
    zones["reason_zh"] = [zh.format(**f) for f in fmt]
    zones["reason_en"] = [en.format(**f) for f in fmt]
    return gpd.GeoDataFrame(zones, geometry="geometry", crs=parcels.crs)


# ----------------------------------------------------------------------- uncertain parcels
def uncertain_parcels(parcels: gpd.GeoDataFrame, samples: gpd.GeoDataFrame, *,
                      probability_threshold: float, margin: float) -> gpd.GeoDataFrame:
    """Parcels whose class is uncertain (classified parcels only).

    Criteria (``criterion`` lists those met): ``probability`` — largest
    ``p_class`` of another class ≥ threshold; ``class_share`` — without
    probabilities, largest area share of another class ≥ threshold (interpolated
    parcels); ``near_threshold`` — a sample inside a points-rule parcel within
    ±``margin`` (relative) of a screening or intervention value.
    """
    p_other, share_other = other_class_probability(parcels)
    near = parcel_threshold_proximity(parcels, samples)
    share_other = share_other.where(p_other.isna())
    crit = {"probability": (p_other >= probability_threshold).fillna(False),
            "class_share": (share_other >= probability_threshold).fillna(False),
            "near_threshold": (near["closeness"] <= margin + 1e-12).fillna(False)}
    hit = crit["probability"] | crit["class_share"] | crit["near_threshold"]
    rows = parcels.loc[hit]
    cols = ["parcel_id", "township", "final_class", "area_mu"]
    out = rows[cols].copy()
    out.insert(0, "flag", "uncertain_parcel")
    names = np.array(list(crit))
    met = np.column_stack([crit[k].to_numpy(dtype=bool) for k in crit])[hit.to_numpy()]
    out.insert(1, "criterion", [";".join(names[m]) for m in met])
    out["p_other"] = p_other[hit].round(4)
    out["share_other"] = share_other[hit].round(4)
    for col in ("near_element", "near_kind", "near_ratio"):
        out[col] = near.loc[hit, col]
    out["near_ratio"] = pd.to_numeric(out["near_ratio"]).round(4)
    texts = [_uncertain_reason(r, probability_threshold, margin) for r in out.itertuples()]
    out["reason_zh"] = [t[0] for t in texts]
    out["reason_en"] = [t[1] for t in texts]
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=rows.geometry.values,
                            crs=parcels.crs)


def _uncertain_reason(row, limit: float, margin: float) -> tuple[str, str]:
    zh, en = [], []
    for crit in row.criterion.split(";"):
        if crit == "near_threshold":
            kind_zh, kind_en = THRESHOLD_KINDS[row.near_kind]
            f = {"element": row.near_element.capitalize(), "ratio": row.near_ratio, "margin": margin,
                     "kind_zh": kind_zh, "kind_en": kind_en}
        else:
            value = row.p_other if crit == "probability" else row.share_other
            f = {"value": value, "limit": limit}
        zh.append(REASONS[crit][0].format(**f))
        en.append(REASONS[crit][1].format(**f))
    return "；".join(zh), "; ".join(en)


# ----------------------------------------------------------------------- crops, unclassified
def crop_exceedance_class1(parcels: gpd.GeoDataFrame,
                           crops: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Crop samples above their limit on class-1 land (points), or without a crops
    layer, class-1 parcels whose ``crop_exceedance`` is True (polygons)."""
    cls1 = (C.as_class(parcels["final_class"].to_numpy()) == C.PRIORITY_PROTECTION).fillna(False)
    cls1 = cls1.to_numpy()
    zh, en = REASONS["crop_exceedance_class1"]
    if crops is None or crops.empty or "exceeds" not in crops:
        hit = cls1 & (_true(parcels["crop_exceedance"]) if "crop_exceedance" in parcels
                      else np.zeros(len(parcels), bool))
        out = parcels.loc[hit, ["parcel_id", "township", "area_mu"]].copy()
        out.insert(0, "flag", "crop_exceedance_class1")
        out["reason_zh"] = zh.format(crop="见农产品点位", grade="-")
        out["reason_en"] = en.format(crop="see crop samples", grade="-")
        return gpd.GeoDataFrame(out.reset_index(drop=True),
                                geometry=parcels.geometry.values[hit], crs=parcels.crs)
    crops = same_crs(crops, parcels, "crops")
    over = crops.loc[_true(crops["exceeds"])]
    pid = _crop_parcels(over, parcels)
    if (lost := pid.isna().to_numpy()).any():
        log.warning("%d over-limit crop sample(s) lie in no parcel, so no parcel's class is "
                    "checked against them: %s", lost.sum(), first_rows(over["sample_id"][lost]))
    on1 = pd.Series(cls1, index=parcels["parcel_id"].astype(str).to_numpy())
    on1 = on1[~on1.index.duplicated()]
    keep = pid.map(on1).fillna(False).astype(bool).to_numpy()
    over = over.loc[keep]
    town = pd.Series(parcels["township"].to_numpy(), index=parcels["parcel_id"].astype(str))
    town = town[~town.index.duplicated()]
    out = pd.DataFrame({"flag": "crop_exceedance_class1",
                        "sample_id": over["sample_id"].astype(str).to_numpy(),
                        "parcel_id": pid[keep].to_numpy(),
                        "township": pid[keep].map(town).to_numpy(),
                        "crop": over["crop"].astype(str).to_numpy() if "crop" in over else "",
                        "crop_grade": (over["crop_grade"].to_numpy() if "crop_grade" in over
                                       else pd.NA)})
    out["reason_zh"] = [zh.format(crop=c, grade=g) for c, g in zip(out["crop"], out["crop_grade"])]
    out["reason_en"] = [en.format(crop=c, grade=g) for c, g in zip(out["crop"], out["crop_grade"])]
    return gpd.GeoDataFrame(out, geometry=over.geometry.values, crs=parcels.crs)


def _true(values: pd.Series) -> np.ndarray:
    """Where ``values`` are true (missing counts as false)."""
    return parse_boolean(values).fillna(False).to_numpy(bool)


def _crop_parcels(crops: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> pd.Series:
    """Parcel id of each crop sample: its ``parcel_id`` when set, else the parcel holding it."""
    pid = (crops["parcel_id"].astype(object) if "parcel_id" in crops
           else pd.Series(None, index=crops.index, dtype=object))
    missing = pid.isna().to_numpy()
    if missing.any():
        tree = shapely.STRtree(parcels.geometry.values)
        c_idx, p_idx = tree.query(crops.geometry.values[missing], predicate="intersects")
        found = pd.Series(parcels["parcel_id"].astype(str).to_numpy()[p_idx],
                          index=np.flatnonzero(missing)[c_idx])
        found = found[~found.index.duplicated()]
        fill = pid.to_numpy(copy=True)   # pandas' copy-on-write hands out read-only views
        fill[found.index] = found.to_numpy()
        pid = pd.Series(fill, index=crops.index)
    return pid.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                   else str(v))


def unclassified_parcels(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Parcels with ``final_class`` <NA>, with the reason taken from their ``rule``."""
    na = C.as_class(parcels["final_class"].to_numpy()).isna().to_numpy()
    rows = parcels.loc[na]
    rule = (rows["rule"].astype(object).fillna("").astype(str) if "rule" in rows
            else pd.Series("", index=rows.index))
    out = pd.DataFrame({"flag": "unclassified", "parcel_id": rows["parcel_id"].to_numpy(),
                        "township": rows["township"].to_numpy(),
                        "area_mu": rows["area_mu"].to_numpy(), "rule": rule.to_numpy()})
    base = rule.str.split(";").str[0]
    texts = [rule_label(r) or ("未分类（原因未记录）", "unclassified (no rule recorded)")
             for r in base]
    out["reason_zh"] = [t[0] for t in texts]
    out["reason_en"] = [t[1] for t in texts]
    return gpd.GeoDataFrame(out, geometry=rows.geometry.values, crs=parcels.crs)


# ----------------------------------------------------------------------- summary
def _summary(parcels, towns, cell_pairs, zones, uncertain, crops, unclassified,
             min_density: float) -> pd.DataFrame:
    """Per-township counts and 亩 per flag, with a county row last."""
    t = towns.set_index("township")[["n_parcels", "farmland_mu", "farmland_km2", "n_samples",
                                     "density_per_km2", "sparse"]].copy()
    empty = cell_pairs.loc[cell_pairs["empty"]]
    t["empty_cells"] = empty.groupby("township").size()
    t["empty_cells_mu"] = empty.groupby("township")["mu"].sum()
    t["thin_zones"] = zones.groupby("township").size()
    t["thin_zones_mu"] = zones.groupby("township")["area_mu"].sum()
    t["uncertain_parcels"] = uncertain.groupby("township").size()
    t["uncertain_mu"] = uncertain.groupby("township")["area_mu"].sum()
    t["crop_exceedance_class1"] = crops.groupby("township").size()
    t["unclassified"] = unclassified.groupby("township").size()
    t["unclassified_mu"] = unclassified.groupby("township")["area_mu"].sum()
    counts = ["empty_cells", "thin_zones", "uncertain_parcels", "crop_exceedance_class1",
              "unclassified"]
    t[counts] = t[counts].fillna(0).astype(int)
    mus = ["empty_cells_mu", "thin_zones_mu", "uncertain_mu", "unclassified_mu"]
    t[mus] = t[mus].fillna(0.0)
    county = t.drop(columns="sparse").sum(numeric_only=True).to_dict()
    county["empty_cells"] = len(empty.drop_duplicates(["ix", "iy"]))
    km2 = county["farmland_km2"]
    county["density_per_km2"] = county["n_samples"] / km2 if km2 > 0 else np.nan
    county["sparse"] = bool(county["density_per_km2"] < min_density)
    table = pd.concat([t.reset_index(), pd.DataFrame([{"township": COUNTY, **county}])],
                      ignore_index=True)
    table["sparse"] = table["sparse"].astype(bool)
    for col in mus + ["farmland_mu", "farmland_km2", "density_per_km2"]:
        table[col] = table[col].astype(float).round(4)
    for col in counts + ["n_parcels", "n_samples"]:
        table[col] = table[col].astype(int)
    return table[list(SUMMARY_HEADERS)]
