"""Words for the coded values of the report's tables: lists of element codes ("cd,pb"),
the classification's QA flag codes and the outlier checks. Used by
:func:`farmland.report.excel.display_value` (and so by the HTML report) and by the source
sheets, so a code reads the same on every sheet.

The QA flags' words live in :mod:`farmland.vocabulary` (the map's tooltips use them
too); the element names and the outlier checks are the report's own.
"""

from __future__ import annotations

import re

from farmland.vocabulary import QA_FLAG_LABELS

__all__ = ["CHECK_LABELS", "ELEMENT_NAMES", "LIST_LABELS", "QA_FLAG_LABELS", "code_list_text"]

#: element code → Chinese name ("cd" reads "Cd 镉", the spelling of the source sheets and
#: of the cause map); the class elements, the screening ones, and pH
ELEMENT_NAMES: dict[str, str] = {"cd": "镉", "pb": "铅", "hg": "汞", "as": "砷", "cr": "铬",
                                 "cu": "铜", "ni": "镍", "zn": "锌"}
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
