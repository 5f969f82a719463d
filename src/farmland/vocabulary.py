"""Labels shared by every table, chart, map and message: the county row, a missing
township and the classification rule codes. One spelling each, bilingual, so "全县" and
"全县 County" (or a rule's Chinese name in the map and in the report) cannot drift apart."""

from __future__ import annotations

import re

import pandas as pd

__all__ = [
    "ACCOUNTING_STATUSES",
    "CAUSE_TYPES",
    "CONFIRM_MODES",
    "COUNTY",
    "CROP_LABELS",
    "CROP_STEP_LABELS",
    "ELEMENT_NAMES",
    "FLAG_LABELS",
    "FLOWS",
    "LIST_LABELS",
    "LOOP_STATUSES_STYLE",
    "PLAN_MODE_LABELS",
    "QA_FLAG_LABELS",
    "RULE_LABELS",
    "UNKNOWN_TOWNSHIP",
    "code_list_text",
    "flow_key",
    "p_change_level",
    "qa_flags_text",
    "rule_label",
    "rule_text",
    "townships_of",
]

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
    "points:evidence": ("点位与邻域证据综合", "own samples weighed with the neighbourhood"),
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


#: QA flag codes of the classification (farmland.classify.parcels and .point_evidence;
#: docs/schema.md ``qa_flags``) → (Chinese, English)
QA_FLAG_LABELS: dict[str, tuple[str, str]] = {
    "own_class_points_below_80pct": ("本类点位占比低于 80 %", "own-class points below 80 %"),
    "own_class_points_below_50pct": ("本类点位占比低于 50 %", "own-class points below 50 %"),
    "class1_with_class2_point": ("优先保护类含安全利用类点位", "class 1 with a class-2 point"),
    "single_point_unit": ("仅一个点位", "one sample only"),
    "crop_exceedance_on_class1": ("优先保护类农产品超标", "crop exceedance on class 1"),
    "unusable_samples_inside": ("含不可用点位", "unusable samples inside"),
    "suspect_value_inside": ("含可疑数值点位", "a suspect value inside"),
    **{f"evidence_not_point_class_{c}": (f"综合证据类别与点位类别（{c} 类）不同",
                                         f"evidence differs from the points' class {c}")
       for c in (1, 2, 3)},
}


def qa_flags_text(value: object) -> str | None:
    """A ``qa_flags`` value (``;``-joined codes) as bilingual text, e.g. "仅一个点位 one
    sample only；含可疑数值点位 a suspect value inside"; unknown codes as they are; ``None``
    for none."""
    if value is None or pd.isna(value) or not str(value).strip():
        return None
    texts = []
    for code in str(value).split(";"):
        zh, en = QA_FLAG_LABELS.get(code, (code, code))
        texts.append(zh if zh == en else f"{zh} {en}")
    return "；".join(texts)


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


# Change flows of farmland diff (the map legend and the QGIS style of changes.gpkg)
#: flow key → (Chinese, English, colour): worse in warm, better in blue, in legend order
FLOWS: dict[str, tuple[str, str, str]] = {
    "1→2": ("优先保护→安全利用", "priority → safe use", "#fdae61"),
    "2→3": ("安全利用→严格管控", "safe use → strict", "#f46d43"),
    "1→3": ("优先保护→严格管控", "priority → strict", "#a50026"),
    "2→1": ("安全利用→优先保护", "safe use → priority", "#74add1"),
    "3→2": ("严格管控→安全利用", "strict → safe use", "#4575b4"),
    "3→1": ("严格管控→优先保护", "strict → priority", "#313695"),
    "U→1": ("未分类→优先保护", "unclassified → priority", "#bcbddc"),
    "U→2": ("未分类→安全利用", "unclassified → safe use", "#807dba"),
    "U→3": ("未分类→严格管控", "unclassified → strict", "#54278f"),
    "→U": ("变为未分类", "became unclassified", "#969696"),
    "+": ("新增图斑", "parcel added", "#1b9e77"),
    "-": ("删除图斑", "parcel removed", "#4d4d4d"),
    "=": ("类别未变（面积变化）", "same class, area changed", "#ffffbf"),
    "?": ("其他变化", "other change", "#e7298a"),
}
_ABSENT = {"absent", "不存在", "none", "added", "removed", "新增", "删除", "∅"}
_UNCLASSIFIED = {"u", "unclassified", "未分类", "na", "<na>", "nan", "null", ""}


def _end(text: object) -> str | None:
    """One side of a flow: "1"/"2"/"3", "U" (unclassified), "∅" (absent), None (unknown)."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return "U"
    t = str(text).strip().lower()
    t = t.split()[0] if t else t
    if t in ("1", "2", "3", "1.0", "2.0", "3.0"):
        return t[0]
    if t in _UNCLASSIFIED:
        return "U"
    if t in _ABSENT:
        return "∅"
    return None


def flow_key(flow: object = None, class_a: object = None, class_b: object = None) -> str:
    """Key of :data:`FLOWS` from a flow text ("1→2", "2->unclassified", "absent→1") or,
    when there is none, from the two classes (missing = unclassified)."""
    if isinstance(flow, str) and flow.strip():
        parts = re.split(r"\s*(?:→|->|—>|=>)\s*", flow.strip(), maxsplit=1)
        a, b = (_end(parts[0]), _end(parts[1])) if len(parts) == 2 else (None, None)
    else:
        a, b = _end(class_a), _end(class_b)
    if a is None or b is None:
        return "?"
    if a == "∅":
        return "+" if b != "∅" else "?"
    if b == "∅":
        return "-"
    if a == b:
        return "="
    if b == "U":
        return "→U"
    return f"{a}→{b}"


#: per-parcel accounting statuses of the safe-utilisation rate → (Chinese, English, colour)
ACCOUNTING_STATUSES: dict[str, tuple[str, str, str]] = {
    "achieved_verified": ("安全利用达标（自有样品）", "safe use, own crop samples comply",
                          "#1a9850"),
    "achieved_by_rate": ("安全利用（按达标率计入）", "safe use, counted at the compliance rate",
                         "#91cf60"),
    "unverified": ("有措施无农产品数据", "treated, no crop data", "#fee08b"),
    "exceeded": ("有措施但农产品超标", "treated, crop above its limit", "#f46d43"),
    "no_measure": ("安全利用类无措施", "class 2 without a measure", "#fdae61"),
    "controlled": ("严格管控已落实", "strict control in place", "#4575b4"),
    "controlled_but_exceeding": ("管控但粮食超标", "controlled, food crop exceeded",
                                 "#762a83"),
    "loop_incomplete": ("管控措施未闭环", "strict measure, closed loop below the minimum stage",
                        "#fc8d59"),
    "uncontrolled": ("严格管控未落实", "class 3 uncontrolled", "#d7301f"),
    "class1": ("优先保护类", "priority protection", "#e5e5e5"),
    "unclassified": ("未分类", "unclassified", "#9e9e9e"),
}

# Strict-control closed loop (farmland.control.stages, the map's loop layer, control.gpkg)
#: loop status of a class-3 parcel → (Chinese, English, colour), from not started to
#: closed: magenta through purple and blue to teal, none of them a class colour
LOOP_STATUSES_STYLE: dict[str, tuple[str, str, str]] = {
    "none": ("未启动", "not started", "#c51b7d"),
    "notified": ("已告知划定", "notified and designated", "#9e6ebd"),
    "inspected": ("已巡查", "inspected", "#6b9bd1"),
    "harvest_checked": ("已收获核查", "harvest checked", "#2166ac"),
    "closed": ("已闭环", "closed", "#01665e"),
}

# Where the contamination comes from (farmland sources; the map's clusters and confirm
# layers, the report's source sheets)
#: type of a cluster's top-ranked candidate → (Chinese, English, fill colour, line colour);
#: "unexplained" is a cluster whose best score is too low to name a cause. Pale purple,
#: blue and tan and a light grey fill (none of them a class or loop-status colour), each
#: outlined in a darker shade of its hue (also the colour of its candidate links)
CAUSE_TYPES: dict[str, tuple[str, str, str, str]] = {
    "enterprise": ("企业近场", "enterprise near field", "#c2a5cf", "#762a83"),
    "irrigation": ("灌溉水", "irrigation water", "#92c5de", "#1f78b4"),
    "geogenic": ("地质高背景", "geogenic (parent material)", "#dfc27d", "#8c510a"),
    "unexplained": ("未明", "unexplained", "#d9d9d9", "#969696"),
}
#: confirmation sample mode (farmland.sources.confirm) → (Chinese, English, colour): dark,
#: saturated colours that stand out on the pale cluster fills
#: modes of the sampling planner (farmland.sampling.modes) → (Chinese, English)
PLAN_MODE_LABELS: dict[str, tuple[str, str]] = {
    "uncertainty": ("不确定性", "uncertainty"), "coverage": ("空间覆盖", "coverage"),
    "sources": ("污染源", "sources"), "combined": ("综合", "combined"),
    "random": ("随机", "random")}
CONFIRM_MODES: dict[str, tuple[str, str, str]] = {
    "water": ("灌溉水+底泥", "irrigation water and sediment", "#08519c"),
    "soil": ("表层土壤样带", "topsoil transect", "#d95f02"),
    "deposition": ("大气沉降", "atmospheric deposition", "#54278f"),
    "profile": ("土壤剖面+母质", "soil profile and parent material", "#543005"),
}


#: element code → Chinese name ("cd" reads "Cd 镉", the spelling of the source sheets and
#: of the cause map); the class elements, the screening ones, and pH
ELEMENT_NAMES: dict[str, str] = {"cd": "镉", "pb": "铅", "hg": "汞", "as": "砷", "cr": "铬",
                                 "cu": "铜", "ni": "镍", "zn": "锌"}
_ELEMENTS = {**{el: (f"{el.capitalize()} {zh}", el.capitalize())
                for el, zh in ELEMENT_NAMES.items()}, "ph": ("pH", "pH")}
#: crop codes of the crop samples (farmland.standards.vocabulary.CROPS) → (Chinese, English)
CROP_LABELS: dict[str, tuple[str, str]] = {
    "rice": ("稻谷", "rice"), "milled_rice": ("大米", "milled rice"), "wheat": ("小麦", "wheat"),
    "maize": ("玉米", "maize"), "leafy_veg": ("叶菜类蔬菜", "leafy vegetables"),
    "root_veg": ("根茎类蔬菜", "root vegetables"), "tuber_veg": ("块茎类蔬菜", "tubers"),
    "other_veg": ("其他蔬菜", "other vegetables")}
#: sparse-data flags of farmland.sampling.flags (the ``flag`` column) → (Chinese, English)
FLAG_LABELS: dict[str, tuple[str, str]] = {
    "empty_cell": ("无土壤点位网格", "cell without soil samples"),
    "sparse_township": ("点位密度不足乡镇", "under-sampled township"),
    "thin_zone": ("点位不足连片区", "thin class-2/3 zone"),
    "uncertain_parcel": ("类别不确定图斑", "uncertain parcel"),
    "crop_exceedance_class1": ("优先保护类农产品超标", "crop exceedance on class 1"),
    "unclassified": ("未分类图斑", "unclassified parcel")}


def _both(labels: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """(Chinese with English, English) of bilingual labels, as a zh report shows them."""
    return {k: (f"{zh} {en}", en) for k, (zh, en) in labels.items()}


#: columns holding a list of codes ("cd,pb", "single_point_unit;crop_exceedance_on_class1"):
#: column → (code → (text in a zh report or map, text in an en report), separator)
LIST_LABELS: dict[str, tuple[dict[str, tuple[str, str]], str]] = {
    **dict.fromkeys(("driving_elements", "driving_element", "element", "metals"),
                    (_ELEMENTS, ", ")),
    "qa_flags": (_both(QA_FLAG_LABELS), "; "), "crop": (_both(CROP_LABELS), ", "),
    "flag": (_both(FLAG_LABELS), "; "),
}


def code_list_text(column: str, text: str, lang: str) -> str:
    """A list of codes of a :data:`LIST_LABELS` column in words: "cd,pb" → "Cd 镉, Pb 铅",
    "single_point_unit" → "仅一个点位 one sample only" (``lang="en"``: "Cd, Pb", "one sample
    only"). An unknown code is shown as itself."""
    labels, sep = LIST_LABELS[column]
    codes = [c.strip() for c in re.split(r"[,;，、；]", text) if c.strip()]
    pick = 0 if lang == "zh" else 1
    return sep.join(labels[c.lower()][pick] if c.lower() in labels else c for c in codes)
