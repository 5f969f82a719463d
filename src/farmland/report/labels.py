"""Words for the coded values of the report's tables: lists of element codes ("cd,pb"),
the classification's QA flag codes and the outlier checks. Used by
:func:`farmland.report.excel.display_value` (and so by the HTML report) and by the source
sheets, so a code reads the same on every sheet.

The words of the codes the maps show too (elements, crops, sparse-data flags, QA flags)
live in :mod:`farmland.vocabulary`, re-exported here, and those of the outlier actions
(which the map shows too) beside the actions in :mod:`farmland.classify.outliers`; the
outlier checks are the report's own.
"""

from __future__ import annotations

from farmland.classify.outliers import ACTION_LABELS
from farmland.vocabulary import (
    CROP_LABELS,
    ELEMENT_NAMES,
    FLAG_LABELS,
    LIST_LABELS,
    QA_FLAG_LABELS,
    code_list_text,
)

__all__ = ["ACTION_LABELS", "CHECK_LABELS", "CROP_LABELS", "ELEMENT_NAMES", "FLAG_LABELS",
           "LIST_LABELS", "QA_FLAG_LABELS", "code_list_text"]

#: ``check`` of a suspect soil value (farmland.classify.outliers) → (Chinese, English)
CHECK_LABELS: dict[str, tuple[str, str]] = {
    "global": ("远超管制值", "far above any intervention value"),
    "ph_range": ("pH 超出合理范围", "pH outside the plausible range"),
    "spatial": ("局部突高", "local spike"),
    "units": ("疑似单位错误", "suspected unit error"),
    "loo": ("留一交叉验证偏离", "leave-one-out outlier"),
}
