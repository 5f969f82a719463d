"""The strict-control workbook (``control_notice.xlsx``): the zone notice for the
government (管控区公告), the grain-lot screening list for the grain bureau (粮食批次筛查),
the closed-loop coverage by township and the contradictions. Headers are Chinese over
English; text never becomes a formula (:func:`farmland.report.excel.write_cell`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from farmland.io.write import atomic_write
from farmland.report.excel import MAX_WIDTH, text_width, write_cell

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
    "coverage_min": ("最低环节覆盖率", "Minimum-stage coverage"),
    "coverage_closed": ("闭环率", "Closed share"), "target": ("目标", "Target"),
    "unclosed_mu": ("未闭环（亩）", "Not closed (mu)"),
    "kind": ("类型", "Kind"), "kind_zh": ("类型（中文）", "Kind (Chinese)"),
    "date": ("日期", "Date"), "detail": ("说明", "Detail"),
    "loop_status_zh": ("闭环状态", "Loop status"), "problem": ("缺失或未通过环节", "Missing or failed"),
}
_SHARES = frozenset({"coverage_min", "coverage_closed", "target"})
_BOLD = Font(bold=True)
_FILL = PatternFill("solid", fgColor="DDEBF7")


def write_control_workbook(path: str | os.PathLike, sheets: Mapping[str, pd.DataFrame], *,
                           overwrite: bool = False) -> None:
    """One sheet per ``sheets`` item (name → table), written atomically."""
    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in sheets.items():
        ws = wb.create_sheet(name[:31])
        _write(ws, frame)
    with atomic_write(path, overwrite=overwrite) as tmp:
        wb.save(tmp)


def _headers(column: str) -> tuple[str, str]:
    if column in CONTROL_HEADERS:
        return CONTROL_HEADERS[column]
    zh, _, en = str(column).partition(" ")
    return zh, en


def _write(ws, frame: pd.DataFrame) -> None:
    frame = pd.DataFrame(frame.drop(columns=[c for c in ("geometry",) if c in frame.columns]))
    widths = []
    for j, column in enumerate(frame.columns, start=1):
        heads = _headers(column)
        for i, head in enumerate(heads, start=1):
            cell = write_cell(ws, i, j, head)
            cell.font, cell.fill = _BOLD, _FILL
            cell.alignment = Alignment(vertical="center")
        width = max(text_width(h) for h in heads)
        share = column in _SHARES
        for i, value in enumerate(frame[column].tolist(), start=3):
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                shown, kind = None, "text"
            elif isinstance(value, pd.Timestamp):
                shown, kind = f"{value:%Y-%m-%d}", "text"
            elif isinstance(value, (bool,)) or not isinstance(value, (int, float)):
                shown, kind = str(value), "text"
            else:
                shown, kind = value, ("share" if share else "mu" if isinstance(value, float)
                                      else "int")
            write_cell(ws, i, j, shown, kind=kind)
            width = max(width, text_width(shown) if isinstance(shown, str) else 10)
        widths.append(width)
    if frame.empty:
        write_cell(ws, 3, 1, "（无记录） (no rows)")
    last = frame.iloc[-1, 0] if len(frame) and len(frame.columns) else None
    if isinstance(last, str) and last.startswith(("全县", "合计")):
        for j in range(1, len(frame.columns) + 1):
            ws.cell(row=2 + len(frame), column=j).font = _BOLD
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(width + 2, MAX_WIDTH)
    ws.freeze_panes = "A3"
