"""Words for the coded values of the report's tables: lists of element codes ("cd,pb"),
the classification's QA flag codes and the outlier checks. Used by
:func:`farmland.report.excel.display_value` (and so by the HTML report) and by the source
sheets, so a code reads the same on every sheet.

The words of the codes the maps show too (elements, crops, sparse-data flags, QA flags)
live in :mod:`farmland.vocabulary`, re-exported here; the outlier checks are the
report's own.
"""

from __future__ import annotations

from farmland.classify.outliers import ACTIONS, HOT_SPOT, KEPT_ACTION
from farmland.vocabulary import (
    CROP_LABELS,
    ELEMENT_NAMES,
    FLAG_LABELS,
    LIST_LABELS,
    QA_FLAG_LABELS,
    code_list_text,
)

__all__ = ["ACTION_LABELS", "CHECK_LABELS", "CROP_LABELS", "ELEMENT_NAMES", "FLAG_LABELS", "LIST_LABELS",
           "QA_FLAG_LABELS", "code_list_text"]

#: ``check`` of a suspect soil value (farmland.classify.outliers) → (Chinese, English)
CHECK_LABELS: dict[str, tuple[str, str]] = {
    "global": ("远超管制值", "far above any intervention value"),
    "ph_range": ("pH 超出合理范围", "pH outside the plausible range"),
    "spatial": ("局部突高", "local spike"),
    "units": ("疑似单位错误", "suspected unit error"),
    "loo": ("留一交叉验证偏离", "leave-one-out outlier"),
}

#: ``action`` of a suspect soil value (farmland.classify.outliers) → (Chinese, English)
ACTION_LABELS: dict[str, tuple[str, str]] = {
    ACTIONS["flag"]: ("仅用于本样点定类，不参与插值与变异函数", ACTIONS["flag"]),
    ACTIONS["exclude"]: ("已剔除", ACTIONS["exclude"]),
    ACTIONS["keep"]: ("仅报告", ACTIONS["keep"]),
    KEPT_ACTION: ("多项同时偏高，作为真实高值点保留，参与插值与变异函数", KEPT_ACTION),
    f"{ACTIONS['keep']}: {HOT_SPOT}": ("仅报告（多项同时偏高的高值点）",
                                       f"{ACTIONS['keep']}: {HOT_SPOT}"),
}
