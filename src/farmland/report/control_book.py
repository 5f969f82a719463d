"""The strict-control workbook (``control_notice.xlsx``): the zone notice for the
government (管控区公告), the grain-lot screening list for the grain bureau (粮食批次筛查),
the closed-loop coverage by township and the contradictions. Headers are Chinese over
English, written by :func:`farmland.report.control_sheets.write_control_table` (the one
writer of the control tables, also used by the report); text never becomes a formula."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd
from openpyxl import Workbook

from farmland.io.write import atomic_write

__all__ = ["CONTROL_HEADERS", "write_control_workbook"]

#: column → (Chinese, English) header; a column already named "中文 English" is split at
#: its first space
CONTROL_HEADERS: dict[str, tuple[str, str]] = {
    "township": ("乡镇", "Township"), "village": ("村", "Village"),
    "parcel_id": ("图斑编号", "Parcel"), "area_mu": ("面积（亩）", "Area (mu)"),
    "n_class3": ("严格管控类图斑数", "Class-3 parcels"),
    "class3_mu": ("严格管控类面积（亩）", "Class-3 area (mu)"),
    "none_mu": ("未启动（亩）", "Not started (mu)"),
    "notified_mu": ("已告知划定（亩）", "Notified (mu)"),
    "inspected_mu": ("已巡查（亩）", "Inspected (mu)"),
    "harvest_checked_mu": ("已收获核查（亩）", "Harvest checked (mu)"),
    "closed_mu": ("已闭环（亩）", "Closed (mu)"),
    "meets_min_mu": ("达最低环节（亩）", "At minimum stage (mu)"),
    "n_contradictions": ("矛盾数", "Contradictions"),
    "n_not_class3": ("其中台账图斑非严格管控类", "Of which on ledger parcels not class 3"),
    "coverage_min": ("最低环节覆盖率", "Minimum-stage coverage"),
    "coverage_closed": ("闭环率", "Closed share"), "target": ("目标", "Target"),
    "unclosed_mu": ("未闭环（亩）", "Not closed (mu)"),
    "kind": ("类型", "Kind"), "kind_zh": ("类型（中文）", "Kind (Chinese)"),
    "date": ("日期", "Date"), "detail": ("说明", "Detail"),
    "loop_status_zh": ("闭环状态", "Loop status"), "problem": ("缺失或未通过环节", "Missing or failed"),
}
def write_control_workbook(path: str | os.PathLike, sheets: Mapping[str, pd.DataFrame], *,
                           overwrite: bool = False) -> None:
    """One sheet per ``sheets`` item (name → table), written atomically."""
    wb = Workbook()
    wb.remove(wb.active)
    from farmland.report.control_sheets import write_control_table

    for name, frame in sheets.items():
        frame = frame.drop(columns=[c for c in ("geometry",) if c in frame.columns])
        write_control_table(wb.create_sheet(name[:31]), frame, list(frame.columns), lang="zh")
    with atomic_write(path, overwrite=overwrite) as tmp:
        wb.save(tmp)
