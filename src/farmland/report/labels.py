"""Words for the coded values of the report's tables: lists of element codes ("cd,pb"),
the classification's QA flag codes and the outlier checks. Used by
:func:`farmland.report.excel.display_value` (and so by the HTML report) and by the source
sheets, so a code reads the same on every sheet.

These are report-side tables: the QA flags, the element names and the outlier checks
have no entry in :mod:`farmland.vocabulary` yet; when they get one (the map shows the
same codes), this module should take them from there.
"""

from __future__ import annotations

import re

__all__ = ["CHECK_LABELS", "ELEMENT_NAMES", "LIST_LABELS", "QA_FLAG_LABELS", "code_list_text"]

#: element code → Chinese name ("cd" reads "Cd 镉", the spelling of the source sheets and
#: of the cause map); the class elements, the screening ones, and pH
ELEMENT_NAMES: dict[str, str] = {"cd": "镉", "pb": "铅", "hg": "汞", "as": "砷", "cr": "铬",
                                 "cu": "铜", "ni": "镍", "zn": "锌"}
#: QA flag codes of the classification (farmland.classify.parcels and .point_evidence;
#: docs/schema.md ``qa_flags``) → (Chinese, English)
QA_FLAG_LABELS: dict[str, tuple[str, str]] = {
    "own_class_points_below_80pct": ("本类点位占比低于 80 %", "own-class points below 80 %"),
    "own_class_points_below_50pct": ("本类点位占比低于 50 %", "own-class points below 50 %"),
    "class1_with_class2_point": ("优先保护类含安全利用类点位", "class 1 with a class-2 point"),
    "single_point_unit": ("仅一个点位", "one sample only"),
    "crop_exceedance_on_class1": ("优先保护类农产品超标", "crop exceedance on class 1"),
    "unusable_samples_inside": ("含不可用点位", "unusable samples inside"),
    **{f"evidence_not_point_class_{c}": (f"综合证据类别与点位类别（{c} 类）不同",
                                         f"evidence differs from the points' class {c}")
       for c in (1, 2, 3)},
}
#: ``check`` of a suspect soil value (farmland.classify.outliers) → (Chinese, English)
CHECK_LABELS: dict[str, tuple[str, str]] = {
    "global": ("远超管制值", "far above any intervention value"),
    "ph_range": ("pH 超出合理范围", "pH outside the plausible range"),
    "spatial": ("局部突高", "local spike"),
    "units": ("疑似单位错误", "suspected unit error"),
    "loo": ("留一交叉验证偏离", "leave-one-out outlier"),
}
_ELEMENTS = {**{el: (f"{el.capitalize()} {zh}", el.capitalize())
                for el, zh in ELEMENT_NAMES.items()}, "ph": ("pH", "pH")}
#: columns holding a list of codes ("cd,pb", "single_point_unit;crop_exceedance_on_class1"):
#: column → (code → (text in a zh report, text in an en report), separator)
LIST_LABELS: dict[str, tuple[dict[str, tuple[str, str]], str]] = {
    "driving_elements": (_ELEMENTS, ", "), "element": (_ELEMENTS, ", "),
    "qa_flags": ({k: (f"{zh} {en}", en) for k, (zh, en) in QA_FLAG_LABELS.items()}, "; "),
}


def code_list_text(column: str, text: str, lang: str) -> str:
    """A list of codes of a :data:`LIST_LABELS` column in words: "cd,pb" → "Cd 镉, Pb 铅",
    "single_point_unit" → "仅一个点位 one sample only" (``lang="en"``: "Cd, Pb", "one sample
    only"). An unknown code is shown as itself."""
    labels, sep = LIST_LABELS[column]
    codes = [c.strip() for c in re.split(r"[,;，、；]", text) if c.strip()]
    pick = 0 if lang == "zh" else 1
    return sep.join(labels[c.lower()][pick] if c.lower() in labels else c for c in codes)
