"""Why a parcel changed between two runs: the evidence each run holds (samples used,
manifests, crop samples) and the cause and detail text of every changed parcel
(:func:`farmland.runs.diff.diff_runs` writes them)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland.classify.crops import STEP_SETTINGS, step_blocks
from farmland.errors import InputError, first_rows
from farmland.io.values import parse_boolean
from farmland.rate.accounting import TOLERANCE_MU

NEAREST_NEW = 3
_SAMPLE_VALUES = ("ph", "cd", "hg", "as", "pb", "cr", "usable")
_CROP_STEP = re.compile(r";crops:(\d->\d)")
_IDS = 8  # sample ids named in one detail before "(+n more)"

# ---------------------------------------------------------------------- what the runs hold
@dataclass
class Context:
    """What the manifests and sample layers say about the two runs as a whole."""

    layers: bool = False
    #: sample ids present in run A / B (layers), else used by some parcel of the run
    used_a: frozenset[str] = frozenset()
    used_b: frozenset[str] = frozenset()
    #: "rules a → b", "standard …", "interpolator …" (empty: same or unknown)
    manifest_notes: tuple[str, ...] = ()
    parcels_note: str = ""
    variograms_refitted: frozenset[str] = frozenset()
    reach_m: float | None = None
    unit_a: str = "parcel"
    unit_b: str = "parcel"
    new_points: gpd.GeoDataFrame | None = None
    revised: dict[str, str] = field(default_factory=dict)
    #: the ``[crops]`` rules recorded in each manifest (``None``: not recorded)
    crop_rules_a: dict[str, Any] | None = None
    crop_rules_b: dict[str, Any] | None = None

    @classmethod
    def build(cls, ma: dict[str, Any], mb: dict[str, Any], samples_a: pd.DataFrame | None,
              samples_b: pd.DataFrame | None) -> Context:
        ctx = cls(manifest_notes=_manifest_notes(ma, mb), unit_a=_crop_unit(ma),
                  unit_b=_crop_unit(mb), reach_m=_reach(mb) or _reach(ma),
                  crop_rules_a=_crop_rules(ma), crop_rules_b=_crop_rules(mb))
        ctx.parcels_note = _inputs_note(ma, mb, "parcels", "parcel map")
        ctx.variograms_refitted = _refitted(ma, mb)
        if samples_a is None or samples_b is None:
            return ctx
        for name, s in (("A", samples_a), ("B", samples_b)):
            if "sample_id" not in s.columns:
                raise InputError(f"soil samples of run {name} lack the column sample_id",
                                 column="sample_id", fix="pass the samples layer of the run")
        ids_a = samples_a["sample_id"].astype("str")
        ids_b = samples_b["sample_id"].astype("str")
        ctx.layers = True
        ctx.used_a, ctx.used_b = frozenset(ids_a), frozenset(ids_b)
        ctx.new_points = _new_points(samples_b, ids_b, ids_a)
        ctx.revised = _revised(samples_a, samples_b)
        return ctx


def _get(manifest: dict[str, Any], *keys: str) -> Any:
    value: Any = manifest
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _manifest_notes(ma: dict[str, Any], mb: dict[str, Any]) -> tuple[str, ...]:
    """Differences of rules, standard and interpolator (compared only when both say)."""
    notes = []
    ra, rb = _get(ma, "rules", "sha256"), _get(mb, "rules", "sha256")
    if ra and rb and ra != rb:
        notes.append(f"rules {_get(ma, 'rules', 'name') or '?'} {ra[:8]} → "
                     f"{_get(mb, 'rules', 'name') or '?'} {rb[:8]}")
    sa, sb = _get(ma, "standard", "fingerprint"), _get(mb, "standard", "fingerprint")
    if sa and sb and sa != sb:
        notes.append(f"standard {_get(ma, 'standard', 'version') or '?'} {sa[:8]} → "
                     f"{_get(mb, 'standard', 'version') or '?'} {sb[:8]}")
    ia, ib = _get(ma, "parameters", "interpolator"), _get(mb, "parameters", "interpolator")
    if ia and ib and ia != ib:
        notes.append(f"interpolator {ia} → {ib}")
    return tuple(notes)


def _inputs_note(ma: dict[str, Any], mb: dict[str, Any], kind: str, what: str) -> str:
    def hashes(m: dict[str, Any]) -> list[str]:
        files = _get(m, "inputs", kind)
        return [f.get("sha256", "") for f in files if isinstance(f, dict)] \
            if isinstance(files, list) else []
    ha, hb = hashes(ma), hashes(mb)
    if not ha or not hb or ha == hb:
        return ""
    return f"{what} input differs (SHA-256 {', '.join(h[:8] for h in ha)} → " \
           f"{', '.join(h[:8] for h in hb)})"


def _refitted(ma: dict[str, Any], mb: dict[str, Any]) -> frozenset[str]:
    """Variables whose variogram model differs between the manifests."""
    a = _get(ma, "geostatistics", "models") or {}
    b = _get(mb, "geostatistics", "models") or {}
    return frozenset(v for v in set(a) & set(b)
                     if (a[v] or {}).get("text") != (b[v] or {}).get("text"))


def _reach(manifest: dict[str, Any]) -> float | None:
    value = _get(manifest, "rules", "values", "interpolation", "max_distance_m")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _crop_unit(manifest: dict[str, Any]) -> str:
    unit = _get(manifest, "rules", "values", "crops", "unit")
    return unit if isinstance(unit, str) and unit else "parcel"


def _crop_rules(manifest: dict[str, Any]) -> dict[str, Any] | None:
    rules = _get(manifest, "rules", "values", "crops")
    return rules if isinstance(rules, dict) and rules else None


def _usable(samples: pd.DataFrame) -> np.ndarray:
    if "usable" not in samples.columns:
        return np.ones(len(samples), dtype=bool)
    return parse_boolean(samples["usable"]).fillna(True).to_numpy(bool)


def _new_points(samples_b: pd.DataFrame, ids_b: pd.Series,
                ids_a: pd.Series) -> gpd.GeoDataFrame | None:
    """Usable samples of B whose id run A does not have (with geometry), else ``None``."""
    try:
        geometry = samples_b.geometry
    except AttributeError:  # no (active) geometry
        return None
    keep = (~ids_b.isin(set(ids_a))).to_numpy(bool) & _usable(samples_b)
    keep &= ~geometry.isna().to_numpy(bool)
    return gpd.GeoDataFrame({"sample_id": ids_b[keep].to_numpy()},
                            geometry=geometry[keep].to_numpy(), crs=geometry.crs)


def _revised(samples_a: pd.DataFrame, samples_b: pd.DataFrame) -> dict[str, str]:
    """Samples of both runs whose values or usability differ: id → "cd 0.25 → 0.45"."""
    cols = [c for c in _SAMPLE_VALUES if c in samples_a.columns and c in samples_b.columns]
    if not cols:
        return {}
    a = samples_a[["sample_id", *cols]].assign(sample_id=samples_a["sample_id"].astype("str"))
    b = samples_b[["sample_id", *cols]].assign(sample_id=samples_b["sample_id"].astype("str"))
    m = a.drop_duplicates("sample_id").merge(b.drop_duplicates("sample_id"), on="sample_id",
                                             suffixes=("_a", "_b"))
    texts = pd.Series("", index=m.index, dtype=object)
    for col in cols:
        if col == "usable":
            va = parse_boolean(m["usable_a"]).astype("object").to_numpy()
            vb = parse_boolean(m["usable_b"]).astype("object").to_numpy()
            differ = np.array([str(x) != str(y) for x, y in zip(va, vb, strict=True)])
        else:
            va = pd.to_numeric(m[f"{col}_a"], errors="coerce").to_numpy(float, na_value=np.nan)
            vb = pd.to_numeric(m[f"{col}_b"], errors="coerce").to_numpy(float, na_value=np.nan)
            same = np.isclose(va, vb, rtol=1e-9, atol=0.0) | (np.isnan(va) & np.isnan(vb))
            differ = ~same
        if differ.any():
            idx = np.flatnonzero(differ)
            add = [f"{col} {_num(va[i])} → {_num(vb[i])}" for i in idx]
            texts.iloc[idx] = [f"{t}, {x}" if t else x
                               for t, x in zip(texts.iloc[idx], add, strict=True)]
    hit = texts.ne("")
    return dict(zip(m.loc[hit, "sample_id"], texts[hit], strict=True))


def _num(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:g}" if isinstance(x, float) else str(x)


def used_ids(sample_ids: pd.Series) -> frozenset[str]:
    """All sample ids named in a ``sample_ids`` column (split once per distinct text)."""
    texts = pd.Series(pd.unique(sample_ids.dropna().astype("str")), dtype="str")
    ids = texts.str.split(",").explode().str.strip()
    return frozenset(ids[ids.fillna("").ne("")])


# ------------------------------------------------------------------------------ details
def details(c: pd.DataFrame, ctx: Context, geometry: gpd.GeoSeries | None,
             crops_a: pd.DataFrame | None, crops_b: pd.DataFrame | None) -> list[str]:
    """``cause_detail`` of every changed row (Python over the changed rows only)."""
    crop_rows = c["cause"].eq("crop_adjustment")
    crops_a_text = _crop_texts(crops_a, set(c.loc[crop_rows, "crop_unit_a"].dropna()),
                               by_unit=ctx.unit_a != "parcel")
    crops_b_text = _crop_texts(crops_b, set(c.loc[crop_rows, "crop_unit_b"].dropna()),
                               by_unit=ctx.unit_b != "parcel")
    stats_a = _crop_stats(crops_a, ctx.crop_rules_a, by_unit=ctx.unit_a != "parcel")
    stats_b = _crop_stats(crops_b, ctx.crop_rules_b, by_unit=ctx.unit_b != "parcel")
    nearest = _nearest_new(c, ctx, geometry)
    found = "new in run B" if ctx.layers else "used by no parcel of run A"
    lost_note = "not in run B" if ctx.layers else "used by no parcel of run B"
    out = []
    for i, r in enumerate(c.itertuples(index=False)):
        cause = r.cause
        soil = f"soil class {_cls(r.soil_class_a)} → {_cls(r.soil_class_b)}"
        if cause == "new_parcel":
            parts = [(f"not in run A; class {_cls(r.class_b)} in B ({_rule(r.rule_b)}"
                      f"{_samples_of(r.sample_ids_b)})"), ctx.parcels_note]
        elif cause == "removed_parcel":
            parts = [(f"not in run B; class {_cls(r.class_a)} in A ({_rule(r.rule_a)}"
                      f"{_samples_of(r.sample_ids_a)})"), ctx.parcels_note]
        elif cause == "area_changed":
            parts = [(f"class {_cls(r.class_b)} unchanged; area {r.area_a_mu:.2f} → "
                      f"{r.area_b_mu:.2f} 亩"), ctx.parcels_note]
        elif cause == "crop_adjustment":
            step_a, step_b = _crop_step(r.rule_a), _crop_step(r.rule_b)
            ta = crops_a_text.get(r.crop_unit_a, "none")
            tb = crops_b_text.get(r.crop_unit_b, "none")
            parts = [(f"soil class {_cls(r.soil_class_b)} in both runs; crop adjustment "
                      f"{step_a or 'none'} in A → {step_b or 'none'} in B"),
                     _crop_why(step_a or step_b, "B" if step_a else "A",
                               stats_b if step_a else stats_a,
                               r.crop_unit_b if step_a else r.crop_unit_a),
                     f"crop samples of B: {tb}" + ("" if ta == tb else f"; of A: {ta}")]
            if r.gained_ids or r.lost_ids:
                parts.append("soil samples changed without moving the soil class ("
                             + ", ".join(x for x in (
                                 r.gained_ids and f"now {_idlist(r.gained_ids)}",
                                 r.lost_ids and f"no longer {_idlist(r.lost_ids)}") if x)
                             + ")")
        elif cause == "new_samples":
            new = set(r.new_ids)
            parts = [f"new samples {_idlist(r.new_ids)} ({found})"]
            if set(r.gained_ids) - new:
                parts.append(f"also uses {_idlist(sorted(set(r.gained_ids) - new))}")
            if r.lost_ids:
                parts.append(f"no longer uses {_idlist(r.lost_ids)}")
            parts.append(soil)
        elif cause == "removed_samples":
            gone = set(r.gone_ids)
            parts = [f"samples {_idlist(r.gone_ids)} no longer used ({lost_note})"]
            if set(r.lost_ids) - gone:
                parts.append(f"nor {_idlist(sorted(set(r.lost_ids) - gone))}")
            if r.gained_ids:
                parts.append(f"now uses {_idlist(r.gained_ids)}")
            parts.append(soil)
        elif cause == "rules_or_standard":
            parts = [_same_samples(r), *ctx.manifest_notes, soil]
        elif cause == "sample_values":
            ids = sorted(id_set(r.sample_ids_b))
            revised = [f"{s} {ctx.revised[s]}" for s in ids if s in ctx.revised]
            if revised:
                what = "changed: " + "; ".join(revised)
            elif ctx.layers:
                what = "sample values unchanged: the parcel's land use or usability differs"
            else:
                what = "values not compared (no samples layers)"
            parts = [f"classified from its own samples in both runs ({_idlist(ids)}); {what}",
                     soil]
        else:  # interpolation
            parts = [_same_samples(r) + "; class moved with the interpolated surface",
                     nearest.get(i, ""), _refit_note(r, ctx), soil]
        parts += _side_notes(r, cause)
        out.append("; ".join(p for p in parts if p))
    return out


def _same_samples(r: Any) -> str:
    if r.same_ids:
        ids = sorted(id_set(r.sample_ids_b))
        return f"same samples ({_idlist(ids)})" if ids else "no samples in either run"
    text = "samples re-selected among those of both runs"
    if r.gained_ids:
        text += f": now {_idlist(r.gained_ids)}"
    if r.lost_ids:
        text += f", no longer {_idlist(r.lost_ids)}"
    return text


def _refit_note(r: Any, ctx: Context) -> str:
    element = r.driving_element_b if isinstance(r.driving_element_b, str) else \
        r.driving_element_a if isinstance(r.driving_element_a, str) else ""
    refitted = sorted(ctx.variograms_refitted)
    if element and element in ctx.variograms_refitted:
        return f"{element} variogram refitted"
    return f"variograms refitted: {', '.join(refitted)}" if refitted else ""


def _side_notes(r: Any, cause: str) -> list[str]:
    """What else changed for the parcel (crop step, land use, area)."""
    notes = []
    if cause not in ("crop_adjustment", "new_parcel", "removed_parcel"):
        step_a, step_b = _crop_step(r.rule_a), _crop_step(r.rule_b)
        if step_a != step_b:
            notes.append(f"crop adjustment {step_a or 'none'} → {step_b or 'none'}")
    la, lb = r.landuse_a, r.landuse_b
    if isinstance(la, str) and isinstance(lb, str) and la != lb:
        notes.append(f"land use {la} → {lb}")
    if cause not in ("area_changed", "new_parcel", "removed_parcel") \
            and abs(r.area_a_mu - r.area_b_mu) > TOLERANCE_MU:
        notes.append(f"area {r.area_a_mu:.2f} → {r.area_b_mu:.2f} 亩")
    return notes


def _nearest_new(c: pd.DataFrame, ctx: Context,
                 geometry: gpd.GeoSeries | None) -> dict[int, str]:
    """Row position → the nearest new samples of B within reach (interpolation rows)."""
    rows = np.flatnonzero(c["cause"].eq("interpolation").to_numpy(bool))
    if not len(rows):
        return {}
    if not ctx.layers:
        new = len(ctx.used_b - ctx.used_a)
        return dict.fromkeys(rows.tolist(),
                             f"sample locations not known (workspace runs keep no samples "
                             f"layer; {new} sample id(s) used in B by no parcel of A)")
    reach = ctx.reach_m
    points = ctx.new_points
    if geometry is None or points is None or reach is None:
        why = "no reach (max_distance_m) in the manifests" if reach is None else \
            "no geometry"
        return dict.fromkeys(rows.tolist(), f"nearest new samples not looked up ({why})")
    none = f"no new sample within {reach:g} m"
    out = dict.fromkeys(rows.tolist(), none)
    geoms = geometry.iloc[rows]
    have = ~geoms.isna().to_numpy(bool)
    if not len(points) or not have.any():
        return out
    if points.crs is not None and geoms.crs is not None and not points.crs.equals(geoms.crs):
        points = points.to_crs(geoms.crs)
    g = geoms.to_numpy()[have]
    left, right = points.sindex.query(g, predicate="dwithin", distance=reach)
    if not len(left):
        return out
    dist = shapely.distance(g[left], points.geometry.to_numpy()[right])
    hits = pd.DataFrame({"row": rows[have][left], "id": points["sample_id"].to_numpy()[right],
                         "d": dist}).sort_values(["row", "d", "id"], kind="stable")
    hits = hits.groupby("row", sort=False).head(NEAREST_NEW)
    text = hits["id"].astype(str) + " (" + hits["d"].round().astype(int).astype(str) + " m)"
    for row, group in text.groupby(hits["row"].to_numpy(), sort=False):
        out[int(row)] = f"nearest new samples within {reach:g} m: {', '.join(group)}"
    return out


def _crop_texts(crops: pd.DataFrame | None, units: set[str], *, by_unit: bool
                ) -> dict[str, str]:
    """Crop-adjustment unit → "NP1, NP2, NP3 (none exceeds)" for the units asked for."""
    if crops is None or not units or "sample_id" not in crops.columns:
        return {}
    key_col = "unit" if by_unit and "unit" in crops.columns else "parcel_id"
    if key_col not in crops.columns:
        return {}
    key = crops[key_col].astype("str")
    sel = crops.loc[key.isin(units).to_numpy(bool)]
    if sel.empty:
        return {}
    exceeds = (parse_boolean(sel["exceeds"]).fillna(False).to_numpy(bool)
               if "exceeds" in sel.columns else np.zeros(len(sel), bool))
    frame = pd.DataFrame({"key": key[sel.index].to_numpy(),
                          "id": sel["sample_id"].astype("str").to_numpy(), "x": exceeds})
    out = {}
    for k, g in frame.sort_values("id", kind="stable").groupby("key", sort=False):
        over = g.loc[g["x"], "id"].tolist()
        out[k] = (f"{_idlist(g['id'].tolist())} "
                  + (f"(exceeding: {_idlist(over)})" if over else "(none exceeds)"))
    return out


@dataclass(frozen=True)
class _CropStats:
    """``[crops]`` rules; per unit the ``unit_statistics`` columns and ``years``."""

    rules: dict[str, Any]
    units: pd.DataFrame
    years: tuple[int, ...]


def _crop_stats(crops: pd.DataFrame | None, rules: dict[str, Any] | None, *, by_unit: bool
                ) -> _CropStats | None:
    """As classify/crops.py counts them; ``None`` when the samples or rules are unknown."""
    key_col = "unit" if by_unit and crops is not None and "unit" in crops else "parcel_id"
    if crops is None or rules is None or not {"exceeds", key_col} <= set(crops.columns):
        return None
    key = crops[key_col].astype("object")
    keep = key.notna() & ~key.astype("str").isin(["", "nan", "None", "<NA>"])
    graded = "crop_grade" in crops.columns
    g = crops.loc[(keep & crops["crop_grade"].notna() if graded else keep).to_numpy(bool)]
    year = pd.to_numeric(g["year"], errors="coerce") if "year" in g else pd.Series(
        np.nan, index=g.index)
    frame = pd.DataFrame({"year": year.fillna(-1).astype(int).to_numpy(),
                          "x": parse_boolean(g["exceeds"]).fillna(False).to_numpy(bool),
                          "g3": pd.to_numeric(g["crop_grade"]).eq(3).to_numpy(bool) if graded
                          else False}, index=key[g.index].astype("str").to_numpy())
    by = frame.groupby(level=0)
    units = pd.DataFrame({"n": by.size(), "n_exceed": by["x"].sum(),
                          "share_grade1": 1 - by["x"].mean(), "n_years": by["year"].nunique(),
                          "any_grade3": by["g3"].any() if graded else pd.NA,
                          "years": by["year"].agg(lambda y: tuple(sorted(set(y))))})
    return _CropStats(rules, units, tuple(sorted(set(frame["year"]))))


def _years(years: Iterable[int]) -> str:
    return ", ".join("no year" if y < 0 else str(y) for y in years)


def _crop_why(step: str, side: str, stats: _CropStats | None, unit: object) -> str:
    """Why the crop adjustment ``step`` does not apply in run ``side``: the rule
    classify/crops.py ``step_blocks`` finds blocking it, from the run's crop samples and
    ``[crops]`` rules, in words; "" when unknown (an older manifest) or nothing blocks."""
    if stats is None or step not in STEP_SETTINGS:
        return ""
    cfg, u = stats.rules, stats.units
    allow, need = STEP_SETTINGS[step]
    row = u.loc[[str(unit)]] if str(unit) in u.index else pd.DataFrame({  # no samples
        "n": [0], "n_exceed": [0], "any_grade3": [pd.NA], "share_grade1": [np.nan],
        "n_years": [0], "years": [()]})
    try:
        block = str(step_blocks(row, cfg, step, years_in_data=len(stats.years))[0])
    except (KeyError, TypeError):  # rules recorded without a setting the step needs
        return ""
    n, over = int(row["n"].iloc[0]), int(row["n_exceed"].iloc[0])
    years = row["years"].iloc[0]
    why = {
        "not_allowed": f"规则不允许 not allowed by the rules ([crops] {allow} = false)",
        "few_samples": f"农产品样品不足 {n} crop sample(s), {cfg.get(need)} needed ([crops] {need})",
        "no_exceedance": "无超标样品 no crop sample exceeds",
        "exceedance": f"有超标样品 {over} of {n} crop samples exceed",
        "grade3": "有3级样品 a crop sample is of grade 3",
        "share_grade1": (f"一级样品比例不足 grade-1 share {100 * (n - over) / max(n, 1):.0f} % < "
                         f"{100 * float(cfg.get('min_share_grade1_for_3_to_2', 1)):.0f} % "
                         "([crops] min_share_grade1_for_3_to_2)"),
        "years": (f"达标样品仅 {len(years)} 年 compliant samples in {len(years)} year"
                  f"{'' if len(years) == 1 else 's'} only ({_years(years)}); "
                  f"{cfg.get('min_compliant_years')} years needed once the crop data hold "
                  f"more than one year ({_years(stats.years)}) ([crops] min_compliant_years)"),
    }.get(block, "")
    return f"{step} not applied in {side}: {why}" if why else ""


def _idlist(ids: Iterable[str]) -> str:
    return first_rows(list(ids), limit=_IDS)


def _samples_of(value: object) -> str:
    ids = sorted(id_set(value))
    return f", samples {_idlist(ids)}" if ids else ""


def _rule(rule: object) -> str:
    return rule if isinstance(rule, str) and rule else "no rule"


def _cls(value: object) -> str:
    return "unclassified" if pd.isna(value) else str(int(value))


def reason_text(r: dict[str, Any]) -> str:
    """Why one parcel changed, from its rules, samples and soil classes (";"-joined)."""
    if not r["in_a"]:
        return "parcel added"
    if not r["in_b"]:
        return "parcel removed"
    reasons = []
    sa, sb = id_set(r["sample_ids_a"]), id_set(r["sample_ids_b"])
    if sa != sb:
        reasons.append("new soil samples" if sb > sa else "soil samples changed")
    ca, cb = _crop_step(r["rule_a"]), _crop_step(r["rule_b"])
    if ca != cb:
        reasons.append(f"crop adjustment {cb}" if cb else f"crop adjustment {ca} undone")
    base_a, base_b = _base_rule(r["rule_a"]), _base_rule(r["rule_b"])
    if base_a != base_b:
        reasons.append(f"rule changed ({base_a} -> {base_b})")
    if not reasons and class_code(r["soil_class_a"]) != class_code(r["soil_class_b"]):
        reasons.append("soil class changed")
    if abs(r["area_mu_a"] - r["area_mu_b"]) > TOLERANCE_MU:
        reasons.append("area changed")
    return "; ".join(reasons) or "class changed"


def id_set(value: object) -> frozenset[str]:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return frozenset()
    return frozenset(s.strip() for s in str(value).split(",") if s.strip())


def _crop_step(rule: object) -> str:
    hit = _CROP_STEP.search(rule) if isinstance(rule, str) else None
    return hit.group(1) if hit else ""


def _base_rule(rule: object) -> str:
    return rule.split(";")[0] if isinstance(rule, str) else "?"


def class_code(value: object) -> int:
    return 0 if pd.isna(value) else int(value)
