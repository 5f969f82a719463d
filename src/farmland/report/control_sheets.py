"""The strict-control closed loop in ``farmland report`` (issue 18).

When the run folder holds what ``farmland control`` wrote (``control_townships.csv``,
``control_contradictions.csv``), the report gets two more sheets, "严格管控闭环 Closed
loop" (class-3 area per township by loop status, coverage) and "闭环矛盾 Loop
contradictions", placed before the charts, and a short HTML section (the county's
coverage and the contradictions by kind).

Headers are those of the control workbook (:data:`farmland.report.control_book.CONTROL_HEADERS`);
cells go through :func:`farmland.report.excel.write_cell` (text never becomes a formula)
and HTML text through :func:`html.escape`. The sheets are added to the workbook
:func:`farmland.report.excel.write_excel_report` wrote (read back with openpyxl, which
keeps its charts, and saved atomically).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from farmland.control.loop import CONTRADICTION_KINDS
from farmland.control.stages import STATUS_COLOURS, STATUS_LABELS
from farmland.io.write import atomic_write
from farmland.report.control_book import CONTROL_HEADERS
from farmland.report.excel import (
    bilingual,
    check_lang,
    fit_column,
    sheet_name,
    text_width,
    write_cell,
)

__all__ = ["CONTRADICTION_COLUMNS", "CONTROL_SHEETS", "CONTROL_TABLES", "TOWNSHIP_COLUMNS",
           "add_control_sheets", "control_section", "write_control_table"]

#: report table key → (Chinese, English) sheet name
CONTROL_SHEETS: dict[str, tuple[str, str]] = {
    "control_townships": ("严格管控闭环", "Closed loop"),
    "control_contradictions": ("闭环矛盾", "Loop contradictions"),
}
#: the report tables of the closed loop (keys of :func:`farmland.report.tables.load_tables`)
CONTROL_TABLES = tuple(CONTROL_SHEETS)
TOWNSHIP_COLUMNS = ["township", "n_class3", "class3_mu",
                    *(f"{s}_mu" for s in STATUS_LABELS), "meets_min_mu", "coverage_min",
                    "coverage_closed", "unclosed_mu", "n_contradictions", "n_not_class3"]
CONTRADICTION_COLUMNS = ["parcel_id", "township", "village", "kind", "date", "detail"]
_SHARES = frozenset({"coverage_min", "coverage_closed", "target"})
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF4")
_BOLD = Font(bold=True)


def _kind(column: str, values: pd.Series) -> str:
    """Cell format of a column: by its name for the control tables, else by its dtype."""
    if column in _SHARES:
        return "share"
    if column.endswith("_mu"):
        return "mu"
    if column.startswith("n_") or pd.api.types.is_integer_dtype(values):
        return "int"
    return "mu" if pd.api.types.is_float_dtype(values) else "text"


def _headers(column: str) -> tuple[str, str]:
    """(Chinese, English) header: the control-table name, or a column already named
    "中文 English" split at its first space."""
    if column in CONTROL_HEADERS:
        return CONTROL_HEADERS[column]
    zh, _, en = str(column).partition(" ")
    return zh, en or zh


def _kind_label(kind: object, lang: str) -> object:
    """A contradiction kind in words ("已闭环但农产品超标 loop closed but …")."""
    if not isinstance(kind, str) or kind not in CONTRADICTION_KINDS:
        return kind
    return bilingual(*CONTRADICTION_KINDS[kind], lang)


def _cell(value: object, kind: str) -> object:
    """A Python value for a cell (``None`` for a missing one; text columns stay text)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    if kind == "text":
        return str(value)
    if kind == "int":
        return int(value)
    return float(value)


def write_control_table(ws: Worksheet, frame: pd.DataFrame, columns: list[str], *,
                        lang: str) -> None:
    """``columns`` of ``frame`` (those present) with the control-workbook headers (Chinese
    over English, or English only); a last row named "全县 …" is bold."""
    cols = [c for c in columns if c in frame.columns]
    n_head = 2 if lang == "zh" else 1
    last = frame.iloc[-1][cols[0]] if len(frame) and cols else None
    bold_last = isinstance(last, str) and last.startswith(("全县", "合计"))
    for j, column in enumerate(cols, start=1):
        zh, en = _headers(column)
        heads = (zh, en) if lang == "zh" else (en,)
        for i, head in enumerate(heads, start=1):
            cell = write_cell(ws, i, j, head)
            cell.font, cell.fill = _BOLD, _HEADER_FILL
            cell.alignment = Alignment(vertical="center")
        kind, width = _kind(column, frame[column]), max(text_width(h) for h in heads)
        for i, value in enumerate(frame[column].tolist()):
            value = _kind_label(value, lang) if column == "kind" else value
            shown = _cell(value, kind)
            cell = write_cell(ws, n_head + 1 + i, j, shown, kind=kind)
            if bold_last and i == len(frame) - 1:
                cell.font = _BOLD
            width = max(width, text_width(shown) if isinstance(shown, str) else 12)
        fit_column(ws, j, width, first_row=n_head + 1)
    if frame.empty:
        write_cell(ws, n_head + 1, 1, bilingual("（无记录）", "(no rows)", lang))
    ws.freeze_panes = f"A{n_head + 1}"
    ws.auto_filter.ref = (f"A{n_head}:{get_column_letter(max(len(cols), 1))}"
                          f"{max(n_head + len(frame), n_head)}")


def add_control_sheets(path: str | os.PathLike | Workbook, townships: pd.DataFrame | None,
                       contradictions: pd.DataFrame | None, *, lang: str = "zh") -> list[str]:
    """Add the closed-loop sheets to the report workbook ``path`` (in place, atomically),
    before its charts sheet; a table that is ``None`` gets no sheet.

    Parameters
    ----------
    path
        ``report.xlsx`` of :func:`farmland.report.excel.write_excel_report`, or its
        workbook before it is saved (``extend``: changed in memory, not saved here).
    townships
        ``control_townships.csv`` of ``farmland control`` (county row last).
    contradictions
        ``control_contradictions.csv`` (``parcel_id, township, village, kind, date, detail``).
    lang
        ``"zh"`` (Chinese headers over English ones) or ``"en"``.

    Returns
    -------
    list of str
        The names of the sheets added.
    """
    check_lang(lang)
    tables = {"control_townships": (townships, TOWNSHIP_COLUMNS),
              "control_contradictions": (contradictions, CONTRADICTION_COLUMNS)}
    tables = {k: v for k, v in tables.items() if v[0] is not None}
    if not tables:
        return []
    wb = path if isinstance(path, Workbook) else load_workbook(path)
    charts = sheet_name("charts", lang)
    at = wb.sheetnames.index(charts) if charts in wb.sheetnames else len(wb.sheetnames)
    added = []
    for key, (frame, columns) in tables.items():
        name = bilingual(*CONTROL_SHEETS[key], lang)
        write_control_table(wb.create_sheet(name, at + len(added)), frame, columns, lang=lang)
        added.append(name)
    if not isinstance(path, Workbook):
        with atomic_write(Path(path), overwrite=True) as tmp:
            wb.save(tmp)
    return added


def control_section(townships: pd.DataFrame | None, contradictions: pd.DataFrame | None,
                    lang: str = "zh") -> str:
    """Escaped HTML section: the county's class-3 area by loop status and its coverage,
    then the contradictions by kind; ``""`` without a township table."""
    if townships is None or townships.empty:
        return ""
    e = html.escape
    c = townships.iloc[-1]
    total = float(c["class3_mu"])

    def pct(v: object) -> str:
        return "—" if v is None or pd.isna(v) else f"{100 * float(v):.1f} %"

    zh = (f"全县严格管控类耕地 {total:,.1f} 亩（{int(c['n_class3'])} 个图斑）：已闭环 "
          f"{float(c['closed_mu']):,.1f} 亩（{pct(c['coverage_closed'])}），达到最低环节 "
          f"{float(c['meets_min_mu']):,.1f} 亩（{pct(c['coverage_min'])}，计入安全利用率），"
          f"未闭环 {float(c['unclosed_mu']):,.1f} 亩；目标 100 %。")
    en = (f"County class-3 farmland {total:,.1f} mu ({int(c['n_class3'])} parcels): "
          f"{float(c['closed_mu']):,.1f} mu closed ({pct(c['coverage_closed'])}), "
          f"{float(c['meets_min_mu']):,.1f} mu at the minimum stage ({pct(c['coverage_min'])}, "
          f"counted in the rate), {float(c['unclosed_mu']):,.1f} mu not closed; target 100 %.")
    lines = [zh, en] if lang == "zh" else [en]
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{STATUS_COLOURS[s]}"></span>'
        f"{e(bilingual(zh_s, en_s, lang))}</td>"
        f'<td class="num">{float(c[f"{s}_mu"]):,.1f}</td>'
        f'<td class="num">{pct(float(c[f"{s}_mu"]) / total if total > 0 else None)}</td></tr>'
        for s, (zh_s, en_s) in STATUS_LABELS.items())
    head = "".join(f"<th>{e(bilingual(z, n, lang))}</th>" for z, n in (
        ("闭环状态", "Loop status"), ("面积（亩）", "Area (mu)"), ("占比", "Share")))
    title = e(bilingual("严格管控类耕地闭环", "Strict-control closed loop", lang))
    return (f"<section><h2>{title}</h2>" + "".join(f"<p>{e(t)}</p>" for t in lines)
            + f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            + _contradiction_lines(contradictions, lang) + "</section>")


def _contradiction_lines(contradictions: pd.DataFrame | None, lang: str) -> str:
    if contradictions is None:
        return ""
    e = html.escape
    counts = contradictions["kind"].value_counts() if "kind" in contradictions else pd.Series()
    intro = bilingual(f"闭环矛盾 {len(contradictions)} 条（见“闭环矛盾”表）",
                      f"{len(contradictions)} loop contradiction(s) (see the "
                      "'Loop contradictions' sheet)", lang)
    if not len(counts):
        return f"<p>{e(intro)}</p>"
    head = "".join(f"<th>{e(bilingual(z, n, lang))}</th>" for z, n in (
        ("类型", "Kind"), ("条数", "Count")))
    rows = "".join(f'<tr><td>{e(str(_kind_label(k, lang)))}</td><td class="num">{int(n)}</td>'
                   "</tr>" for k, n in counts.sort_index().items())
    return (f"<p>{e(intro)}</p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
            "</table>")
