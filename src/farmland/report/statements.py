"""The plain sentences over the rate table of the report (Excel sheet and HTML): is the
county target met, the gap, the three accounting readings, townships below target and
what the gap plan proposes."""

from __future__ import annotations

import math

import pandas as pd

from farmland.io.values import parse_boolean

__all__ = ["county_row", "is_missing", "rate_statement"]


def is_missing(value: object) -> bool:
    """True for None, NaN and pandas NA/NaT."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _target(share: float) -> str:
    return f"{100 * share:.4g} %"


def county_row(rate_table: pd.DataFrame) -> pd.Series:
    """The county row of a rate table (``level == "county"``, else the first row)."""
    if "level" in rate_table.columns:
        county = rate_table.loc[rate_table["level"].astype("str").eq("county")]
        if len(county):
            return county.iloc[0]
    return rate_table.iloc[0]


def rate_statement(rate_table: pd.DataFrame, lang: str, *,
                   gap_plan: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences: is the county target met, the gap, townships below target, gap plan."""
    row = county_row(rate_table)
    rate, target, gap = float(row["rate"]), float(row["target"]), float(row.get("gap_mu", 0.0))
    met = parse_boolean(pd.Series([row.get("met")])).iloc[0]
    if math.isnan(rate):
        zh = "全县无安全利用类和严格管控类耕地，安全利用率不适用。"
        en = "The county has no class-2 or class-3 farmland: the safe-utilisation rate does not apply."
    elif (rate >= target) if is_missing(met) else bool(met):
        zh = f"全县受污染耕地安全利用率 {_pct(rate)}，目标 {_target(target)}：已达标。"
        en = (f"County safe-utilisation rate {_pct(rate)} against a target of "
              f"{_target(target)}: target met.")
    else:
        zh = (f"全县受污染耕地安全利用率 {_pct(rate)}，目标 {_target(target)}：未达标，"
              f"缺口 {gap:,.1f} 亩（{gap / 15:,.2f} 公顷）。")
        en = (f"County safe-utilisation rate {_pct(rate)} against a target of "
              f"{_target(target)}: target NOT met, short by {gap:,.1f} mu ({gap / 15:,.2f} hm²).")
    lines = [(zh, en), *_evidence_lines(row), _township_line(rate_table)]
    if gap_plan is not None and len(gap_plan):
        lines.append(_gap_plan_line(gap_plan, gap))
    return [text for zh, en in lines for text in ((zh, en) if lang == "zh" else (en,))]


def _gap_plan_line(plan: pd.DataFrame, gap: float) -> tuple[str, str]:
    """What the gap plan proposes (class 3 first), and whether it closes the gap."""
    cls = pd.to_numeric(plan.get("final_class"), errors="coerce")
    n3, n2 = int((cls == 3).sum()), int((cls != 3).sum())
    mu3 = float(plan.loc[(cls == 3).to_numpy(bool), "area_mu"].sum())
    mu2 = float(plan.loc[(cls != 3).to_numpy(bool), "area_mu"].sum())
    gain = float(plan["gain_mu"].sum()) if "gain_mu" in plan else mu2 + mu3
    closes = bool(parse_boolean(plan["reaches_target"]).fillna(False).iloc[-1]) if (
        "reaches_target" in plan) else gain >= gap
    zh3 = f"全部 {n3} 个未管控的严格管控类图斑（{mu3:,.1f} 亩）在先，其后 " if n3 else ""
    en3 = f"all {n3} uncontrolled class-3 parcels ({mu3:,.1f} mu) first, then " if n3 else ""
    zh = (f"补齐方案（见“缺口地块”表）：{zh3}{n2} 个安全利用类图斑（{mu2:,.1f} 亩），"
          f"合计计入 {gain:,.1f} 亩")
    en = (f"Gap plan (see the 'Gap parcels' sheet): {en3}{n2} class-2 parcels "
          f"({mu2:,.1f} mu), counting {gain:,.1f} mu")
    if closes:
        return zh + "，可补足缺口。", en + "; it closes the gap."
    short = max(gap - gain, 0.0)
    return (zh + f"；措施本身补不足缺口，尚差约 {short:,.1f} 亩（缺少农产品达标证据的面积无法计入）。",
            en + f"; measures alone cannot close the gap: about {short:,.1f} mu short (land "
            "without crop-compliance evidence cannot count).")


def _evidence_lines(row: pd.Series) -> list[tuple[str, str]]:
    """The three accounting readings, the evidence behind C and the class-3 control."""
    if "rate_official" not in row or "evidence_own_mu" not in row:
        return []
    readings = [float(row[f"rate_{m}"]) for m in ("official", "parcel_verified", "measures_only")]
    if any(math.isnan(r) for r in readings):
        return []
    own, by_rate, none = (float(row[f"evidence_{k}_mu"]) for k in ("own", "rate", "none"))
    total = own + by_rate + none
    share = (lambda x: f"{100 * x / total:.1f} %") if total > 0 else (lambda x: "—")
    off, ver, meas = (_pct(r) for r in readings)
    lines = [(f"三种核算口径：核算口径 {off}，仅自有样品 {ver}，仅措施 {meas}。",
              f"The three readings: official {off}, parcel-verified {ver}, measures only {meas}."),
             ((f"计入的安全利用面积 {total:,.1f} 亩中，依据自有农产品样品 {own:,.1f} 亩（{share(own)}），"
               f"依据乡镇或全县农产品达标率 {by_rate:,.1f} 亩（{share(by_rate)}），无农产品数据 "
               f"{none:,.1f} 亩（{share(none)}）。"),
              (f"Of the {total:,.1f} mu of safe-use land counted, {own:,.1f} mu ({share(own)}) rest "
               f"on own crop samples, {by_rate:,.1f} mu ({share(by_rate)}) on a township or county "
               f"compliance rate, {none:,.1f} mu ({share(none)}) on no crop data."))]
    control = float(row.get("class3_control", math.nan))
    if not math.isnan(control):
        lines.append((f"严格管控类耕地落实管控 {_pct(control)}（原则上应为 100 %）。",
                      f"Class-3 land under control: {_pct(control)} (in principle 100 %)."))
    return lines


def _township_line(rate_table: pd.DataFrame) -> tuple[str, str]:
    towns = rate_table
    if "level" in rate_table.columns:
        towns = rate_table.loc[rate_table["level"].astype("str").eq("township")]
    rate = pd.to_numeric(towns["rate"], errors="coerce")
    met = parse_boolean(towns["met"]).fillna(False) if "met" in towns else rate >= towns["target"]
    below = towns.loc[(rate.notna() & ~met).to_numpy(bool)]
    n_na = int(rate.isna().sum())
    na_zh = f"；{n_na} 个乡镇无受污染耕地" if n_na else ""
    na_en = f"; {n_na} without class-2/3 farmland" if n_na else ""
    if below.empty:
        return (f"各乡镇均已达标{na_zh}。", f"No township is below the target{na_en}.")
    names = [str(n) for n in below["name"]]
    en = f"{len(below)} township(s) below the target: {', '.join(names)}{na_en}."
    return (f"未达标乡镇 {len(below)} 个：{'、'.join(names)}{na_zh}。", en)
