"""Labels shared by every table, chart, map and message: the county row, a missing
township and the classification rule codes. One spelling each, bilingual, so "全县" and
"全县 County" (or a rule's Chinese name in the map and in the report) cannot drift apart."""

from __future__ import annotations

import pandas as pd

__all__ = ["COUNTY", "CROP_STEP_LABELS", "RULE_LABELS", "UNKNOWN_TOWNSHIP", "rule_label",
           "rule_text", "townships_of"]

#: name of the county total row in every per-township table
COUNTY = "全县 County"
#: township of a parcel or sample that has none
UNKNOWN_TOWNSHIP = "未知乡镇 unknown"


def townships_of(parcels: pd.DataFrame) -> pd.Series:
    """The parcels' ``township`` as text, :data:`UNKNOWN_TOWNSHIP` where missing or blank."""
    if "township" not in parcels:
        return pd.Series(UNKNOWN_TOWNSHIP, index=parcels.index, dtype=object)
    t = parcels["township"].astype(object)
    return t.where(t.notna() & (t.astype(str).str.strip() != ""), UNKNOWN_TOWNSHIP).astype(str)


#: ``rule`` codes of the classification (farmland.classify.parcels) → (Chinese, English)
RULE_LABELS: dict[str, tuple[str, str]] = {
    "points:strict_override": ("点位严格管控优先", "point strict-control override"),
    "points:majority": ("点位多数", "point majority"),
    "interpolated:area_majority": ("插值面积多数", "interpolated area majority"),
    "unclassified:too_far": ("距可用点位过远未分类", "unclassified: too far from usable samples"),
    "unclassified:no_usable_samples": ("无可用点位未分类", "unclassified: no usable samples"),
    "unclassified:no_estimate": ("插值无结果未分类", "unclassified: no interpolated estimate"),
    "unclassified:too_few_samples": ("点位过少未分类", "unclassified: too few samples to interpolate"),
}
#: crop-adjustment steps appended to a rule (``;crops:2->1``, farmland.classify.crops)
CROP_STEP_LABELS: dict[str, tuple[str, str]] = {
    "crops:2->1": ("农产品未超标 2→1", "crops within limits 2→1"),
    "crops:3->2": ("农产品达标 3→2", "crops compliant 3→2"),
    "crops:1->2": ("农产品超标 1→2", "crop exceedance 1→2"),
}


def rule_label(rule: object) -> tuple[str, str] | None:
    """(Chinese, English) of a ``rule`` value such as
    ``"interpolated:area_majority;crops:2->1"``; the steps are joined by "；" / "; ".
    An unknown code is shown as itself in both languages; ``None`` for a missing or
    blank rule."""
    if not isinstance(rule, str) or not rule.strip():
        return None
    zh, en = [], []
    for step in (s.strip() for s in rule.split(";")):
        if step:
            z, e = RULE_LABELS.get(step) or CROP_STEP_LABELS.get(step) or (step, step)
            zh.append(z)
            en.append(e)
    return "；".join(zh), "; ".join(en)


def rule_text(rule: object) -> str | None:
    """A ``rule`` value as one bilingual text, e.g. "插值面积多数 interpolated area majority"."""
    label = rule_label(rule)
    if label is None:
        return None
    return label[0] if label[0] == label[1] else f"{label[0]} {label[1]}"


#: chance that a sample changes a parcel's class: lower bound → (Chinese, English),
#: highest bound first (the planner's reasons and the map's tooltips use the same words)
P_CHANGE_LEVELS: tuple[tuple[float, str, str], ...] = (
    (0.3, "高", "high"), (0.1, "中", "medium"), (0.0, "低", "low"))


def p_change_level(p: float) -> tuple[str, str]:
    """(Chinese, English) category of a p(change) value (:data:`P_CHANGE_LEVELS`)."""
    for bound, zh, en in P_CHANGE_LEVELS:
        if p >= bound:
            return zh, en
    return P_CHANGE_LEVELS[-1][1:]

