"""Excel report (openpyxl): one sheet per table, bilingual headers, charts as images.

Numbers are stored as numbers with number formats (亩 ``#,##0.0``, hm² ``#,##0.00``,
shares ``0.0%``); header rows are frozen, columns fitted to their content (a CJK
character counts double width) and filtered. Text from the input data (parcel ids,
township names, reasons) is always written as text: a value starting with ``=``,
``+``, ``-`` or ``@`` gets the quote prefix and can never become a formula.

The workbook is written to a temporary file and renamed into place; an existing
file is replaced only with ``overwrite=True``. Column headers, units and value
labels are data (:data:`COLUMNS`, :data:`VALUE_LABELS`), shared with
:mod:`farmland.report.html`.
"""

from __future__ import annotations

import logging
import math
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from farmland import __version__
from farmland import classes as C
from farmland.errors import InputError
from farmland.io.write import atomic_write, final_path, refuse_existing
from farmland.report.labels import ACTION_LABELS, CHECK_LABELS, LIST_LABELS, code_list_text
from farmland.report.statements import is_missing, rate_statement
from farmland.vocabulary import PLAN_MODE_LABELS, rule_label, rule_text

log = logging.getLogger(__name__)

LANGS = ("zh", "en")
#: number format per column kind; kinds missing here are text
FORMATS = {"int": "#,##0", "mu": "#,##0.0", "hm2": "#,##0.00", "share": "0.0%",
           "pct100": "0.0%", "conc": "0.000", "deg": "0.000000", "metre": "#,##0.0",
           "year": "0", "class": "0", "score": "0.000", "num": "General", "text": "@"}
NUMERIC_KINDS = frozenset(FORMATS) - {"text"}
#: cell text starting with one of these could be read as a formula (ASCII and full width)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
MAX_WIDTH = 60
CHART_WIDTH_PX = 900
ROW_HEIGHT_PX = 20

_AREA = {"class1": ("优先保护类", "Priority protection"), "class2": ("安全利用类", "Safe utilisation"),
         "class3": ("严格管控类", "Strict control"), "unclassified": ("未分类", "Unclassified"),
         "total": ("合计", "Total"), "area2": ("安全利用类面积", "Class-2 area"),
         "area3": ("严格管控类面积", "Class-3 area"), "achieved2": ("安全利用达标", "Class-2 achieved"),
         "unverified2": ("有措施无农产品数据", "Class-2 treated, no crop data"),
         "verified2": ("自有农产品样品达标", "Class-2 own crop samples comply"),
         "by_rate2": ("按达标率计入面积", "Class-2 counted at compliance rate (area)"),
         "uncontrolled3": ("严格管控未落实", "Class-3 uncontrolled"),
         "loop_incomplete3": ("管控措施未闭环", "Class-3 loop below the minimum stage"),
         "contradicted3": ("管控但粮食超标", "Class-3 controlled, food crop exceeds"),
         "evidence_own": ("依据自有样品", "Evidence: own samples"),
         "evidence_rate": ("依据达标率", "Evidence: compliance rate"),
         "evidence_none": ("无农产品依据", "Evidence: no crop data"),
         "gain": ("计入面积", "Counted gain"),
         "exceed2": ("农产品超标", "Class-2 crop exceedance"),
         "controlled3": ("严格管控落实", "Class-3 controlled"),
         "numerator": ("已安全利用合计", "Numerator"),
         "denominator": ("受污染耕地合计", "Denominator"), "gap": ("缺口", "Gap"),
         "area": ("面积", "Area"), "cumulative": ("累计面积", "Cumulative area")}
_ELEMENTS = {"cd": "镉", "pb": "铅", "hg": "汞", "as": "砷", "cr": "铬"}

#: canonical column -> (Chinese header, English header, kind)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "township": ("乡镇", "Township", "text"), "n_parcels": ("图斑数", "Parcels", "int"),
    "level": ("级别", "Level", "text"), "name": ("名称", "Name", "text"),
    "n_parcels_2": ("安全利用类图斑数", "Class-2 parcels", "int"),
    "n_parcels_3": ("严格管控类图斑数", "Class-3 parcels", "int"),
    "rate": ("安全利用率", "Rate", "share"), "target": ("目标", "Target", "share"),
    "rate_official": ("安全利用率（核算口径）", "Rate (official)", "share"),
    "rate_parcel_verified": ("安全利用率（仅自有样品）", "Rate (parcel-verified)", "share"),
    "rate_measures_only": ("安全利用率（仅措施）", "Rate (measures only)", "share"),
    "class3_control": ("严格管控落实率", "Class-3 control", "share"),
    "met": ("是否达标", "Target met", "text"), "scope": ("范围", "Scope", "text"),
    "parcel_id": ("图斑编号", "Parcel ID", "text"), "final_class": ("类别", "Class", "class"),
    "class_label": ("类别名称", "Class label", "text"),
    "proposed_measure_class": ("建议措施", "Proposed measure", "text"),
    "rate_after": ("实施后安全利用率", "Rate after", "share"),
    "reaches_target": ("达到目标", "Reaches target", "text"),
    "zone_id": ("管控区编号", "Zone ID", "text"),
    "other_townships": ("涉及其他乡镇", "Other townships", "text"),
    "n_samples": ("土壤点位数", "Soil samples", "int"),
    "driving_elements": ("超标元素", "Driving elements", "text"),
    "parcel_ids": ("图斑编号列表", "Parcel IDs", "text"),
    "point_id": ("点位编号", "Point ID", "text"), "lon": ("经度", "Longitude", "deg"),
    "lat": ("纬度", "Latitude", "deg"), "x": ("X 坐标（米）", "X (m)", "metre"),
    "y": ("Y 坐标（米）", "Y (m)", "metre"), "mode": ("布点方式", "Mode", "text"),
    "reason": ("布点原因", "Reason", "text"), "priority": ("优先级", "Priority", "int"),
    "gap_reason": ("纳入原因", "Reason", "text"),
    "zone_gap_m": ("连片间距（米）", "Zone gap (m)", "metre"),
    "expected_benefit": ("预计减少错分（亩）", "Expected misclassified removed (mu)", "mu"),
    "sample_id": ("样品编号", "Sample ID", "text"), "crop": ("作物", "Crop", "text"),
    "crop_grade": ("农产品等级", "Crop grade", "int"), "year": ("年份", "Year", "year"),
    "rule": ("判定规则", "Rule", "text"), "qa_flags": ("质量检查标记", "QA flags", "text"),
    "element": ("项目", "Item", "text"), "value": ("数值", "Value", "num"),
    "check": ("检查", "Check", "text"),
    "detail": ("说明", "Detail", "text"), "fix": ("处理建议", "How to fix", "text"),
    "action": ("处理方式", "Action", "text"),
    **{f"{k}_mu": (f"{zh}（亩）", f"{en} (mu)", "mu") for k, (zh, en) in _AREA.items()},
    **{f"{k}_hm2": (f"{zh}（公顷）", f"{en} (hm²)", "hm2") for k, (zh, en) in _AREA.items()},
    **{f"{k}_pct": (f"{zh}占比", f"{en} share", "pct100") for k, (zh, en) in _AREA.items()},
    **{el: (f"{zh}（mg/kg）", f"{el.capitalize()} (mg/kg)", "conc") for el, zh in _ELEMENTS.items()},
}
_YES_NO = {True: ("是", "yes"), False: ("否", "no")}
#: column -> value -> (Chinese, English); ``None`` is the label of a missing value
VALUE_LABELS: dict[str, dict[object, tuple[str, str]]] = {
    "level": {"county": ("全县", "county"), "township": ("乡镇", "township")},
    "met": {True: ("达标", "met"), False: ("未达标", "not met"), None: ("无污染耕地", "n/a")},
    "reaches_target": _YES_NO, "check": CHECK_LABELS, "action": ACTION_LABELS,
    "mode": PLAN_MODE_LABELS,
    "proposed_measure_class": {"safe_use": ("安全利用措施", "safe use"),
                               "strict_control": ("严格管控措施", "strict control")},
}

#: a table's own name for a column whose shared header would mislead on its sheet:
#: table key → {column: column of :data:`COLUMNS`} (the gap plan's reason is not a
#: sampling point's)
SHEET_COLUMNS: dict[str, dict[str, str]] = {"gap_plan": {"reason": "gap_reason"}}

#: columns holding classification rule codes, labelled by farmland.vocabulary.rule_label
#: (the same text as the map tooltips)
RULE_COLUMNS = frozenset({"rule", "rule_a", "rule_b"})

#: table key -> (Chinese sheet name, English sheet name)
SHEETS: dict[str, tuple[str, str]] = {
    "class_table": ("类别面积", "Class area"), "rate_table": ("安全利用率", "Rate"),
    "gap_plan": ("缺口地块", "Gap parcels"), "zones": ("严格管控区", "Zones"),
    "plan": ("加密布点", "Sampling plan"), "crop_exceedances": ("农产品超标", "Crop exceedances"),
    "qa_flags": ("质量检查", "QA flags"), "outliers": ("可疑数值", "Suspect values"),
    "charts": ("图表", "Charts"),
}
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF4")
_BOLD = Font(bold=True)


# -- text helpers (shared with report_html) -------------------------------------------------
def check_lang(lang: str) -> None:
    """Refuse a report language other than ``"zh"`` (bilingual) and ``"en"``."""
    if lang not in LANGS:
        raise InputError("unknown report language", value=lang, fix="use 'zh' or 'en'")


def bilingual(zh: str, en: str, lang: str) -> str:
    """``"zh en"`` for ``lang="zh"``, ``en`` for ``"en"``."""
    return f"{zh} {en}" if lang == "zh" else en


def sheet_name(key: str, lang: str) -> str:
    """Sheet name of a table, e.g. ``"类别面积 Class area"`` (``"Class area"`` in English)."""
    return bilingual(*SHEETS[key], lang)


def column_header(column: str, lang: str) -> tuple[str, str]:
    """(first, second) header row of ``column``: (Chinese, English), or (English, "")."""
    zh, en, _ = COLUMNS.get(column, (column, column, ""))
    return (zh, en) if lang == "zh" else (en, "")


def display_value(column: str, value: object, lang: str) -> object:
    """Cell value: labelled text for coded columns, a Python number or text otherwise."""
    labels = VALUE_LABELS.get(column)
    missing = is_missing(value)
    if column in RULE_COLUMNS and not missing and rule_label(value) is not None:
        return rule_text(value) if lang == "zh" else rule_label(value)[1]
    if column in LIST_LABELS and isinstance(value, str) and value.strip():
        return code_list_text(column, value, lang)
    if labels is not None:
        key = None if missing else (bool(value) if isinstance(value, (bool, np.bool_)) else value)
        if key in labels:
            return bilingual(*labels[key], lang)
    if missing:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # Excel has no infinity
    if isinstance(value, (bool, int, float)):
        return value
    return str(value)


# -- cells ------------------------------------------------------------------------------------
def text_width(text: str) -> int:
    """Display width of ``text``: East Asian wide/full-width characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


#: a text wider than a column of :data:`MAX_WIDTH` wraps when it holds at most this many
#: characters; a longer one (a list of parcel ids) stays on one line, to be copied, not read
WRAP_MAX_CHARS = 600


def fit_column(ws: Worksheet, col: int, width: float, *, first_row: int = 1) -> None:
    """Column ``col`` as wide as ``width`` (its widest text) + 2, at most :data:`MAX_WIDTH`.
    In a column that hits the limit, a text cell from ``first_row`` on that is wider than
    the column wraps, top-aligned, so a neighbouring cell does not cut it off
    (:data:`WRAP_MAX_CHARS`). The one place the report's writers size columns."""
    ws.column_dimensions[get_column_letter(col)].width = min(width + 2, MAX_WIDTH)
    if width + 2 <= MAX_WIDTH:
        return
    for (cell,) in ws.iter_rows(min_row=first_row, min_col=col, max_col=col):
        text = cell.value
        if isinstance(text, str) and len(text) <= WRAP_MAX_CHARS and text_width(text) > MAX_WIDTH - 2:
            cell.alignment = Alignment(horizontal=cell.alignment.horizontal, vertical="top",
                                       wrap_text=True)


def write_cell(ws: Worksheet, row: int, col: int, value: object, *, kind: str = "text"):
    """Write one cell; text never becomes a formula, numbers get the kind's format."""
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.value = text
        if text.startswith(FORMULA_PREFIXES):
            cell.data_type = "s"  # openpyxl made "=..." a formula; keep it literal text
            cell.quotePrefix = True
        if kind == "text":
            cell.number_format = FORMATS["text"]
    else:
        cell.value = value
        if value is not None and kind in NUMERIC_KINDS:
            cell.number_format = FORMATS[kind]
    return cell


def _formatted_width(value: object, kind: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return text_width(value)
    if kind in ("share", "pct100"):
        return 7
    if isinstance(value, float):
        return len(f"{value:,.3f}") if kind in ("conc", "score", "deg") else len(f"{value:,.2f}")
    return len(f"{value:,}")


def _prepare(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Drop geometry; add a class label beside ``final_class``; shares in % become 0..1."""
    out = pd.DataFrame(frame.drop(columns=[c for c in ("geometry",) if c in frame.columns]))
    for column in out.columns:
        if COLUMNS.get(column, ("", "", ""))[2] == "pct100":
            out[column] = (pd.to_numeric(out[column], errors="coerce") / 100.0).round(10)
    if "final_class" in out.columns and "class_label" not in out.columns:
        labels = [bilingual(C.label_zh(c), C.label_en(c), lang) for c in out["final_class"]]
        out.insert(out.columns.get_loc("final_class") + 1, "class_label", labels)
    return out.drop(columns=[c for c in ("class_label_zh", "class_label_en") if c in out.columns])


def write_table(ws: Worksheet, frame: pd.DataFrame, *, lang: str, start_row: int = 1,
                bold_rows: Sequence[bool] | None = None) -> None:
    """Write ``frame`` with 1 (en) or 2 (zh) header rows from ``start_row``; freeze, filter, fit."""
    frame = _prepare(frame, lang)
    n_head = 2 if lang == "zh" else 1
    widths = []
    for j, column in enumerate(frame.columns, start=1):
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        kind = COLUMNS.get(column, ("", "", "" if numeric else "text"))[2]
        heads = column_header(column, lang)[:n_head]
        for i, head in enumerate(heads):
            cell = write_cell(ws, start_row + i, j, head)
            cell.font, cell.fill = _BOLD, _HEADER_FILL
            cell.alignment = Alignment(vertical="center")
        width = max(text_width(h) for h in heads)
        for i, value in enumerate(frame[column].tolist()):
            shown = display_value(column, value, lang)
            if kind == "text" and shown is not None and not isinstance(shown, str):
                shown = str(shown)  # ids and names stay text even when they look numeric
            cell = write_cell(ws, start_row + n_head + i, j, shown, kind=kind)
            if bold_rows is not None and bold_rows[i]:
                cell.font = _BOLD
            width = max(width, _formatted_width(shown, kind))
        widths.append(width)
    first_data = start_row + n_head
    if frame.empty:
        write_cell(ws, first_data, 1, bilingual("（无记录）", "(no rows)", lang))
    for j, width in enumerate(widths, start=1):
        fit_column(ws, j, width, first_row=first_data)
    ws.freeze_panes = f"A{first_data}"
    last_row = max(first_data + len(frame) - 1, first_data - 1)
    ws.auto_filter.ref = f"A{first_data - 1}:{get_column_letter(max(len(widths), 1))}{last_row}"


# -- sheets -----------------------------------------------------------------------------------
def _class_sheet(ws: Worksheet, table: pd.DataFrame, lang: str) -> None:
    needed = ["township", "class1_mu", "class2_mu", "class3_mu", "unclassified_mu", "total_mu"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"class area table lacks column(s) {', '.join(missing)}",
                         column=missing[0], fix="pass farmland.classify.summary.class_area_table(parcels)")
    bold = [i == len(table) - 1 for i in range(len(table))]
    write_table(ws, table, lang=lang, bold_rows=bold)


def _rate_sheet(ws: Worksheet, table: pd.DataFrame, lang: str,
                gap_plan: pd.DataFrame | None) -> None:
    lines = rate_statement(table, lang, gap_plan=gap_plan)
    verdict_lines = 2 if lang == "zh" else 1
    for i, line in enumerate(lines, start=1):
        write_cell(ws, i, 1, line).font = Font(bold=True, size=12 if i <= verdict_lines else 11)
    bold = (table["level"].astype("str").eq("county").tolist() if "level" in table.columns
            else None)
    write_table(ws, table, lang=lang, start_row=len(lines) + 2, bold_rows=bold)


def _charts_sheet(ws: Worksheet, charts: Mapping[str, Path]) -> None:
    row = 1
    for caption, path in charts.items():
        write_cell(ws, row, 1, caption).font = _BOLD
        image = Image(str(path))
        if image.width > CHART_WIDTH_PX:
            image.height = round(image.height * CHART_WIDTH_PX / image.width)
            image.width = CHART_WIDTH_PX
        ws.add_image(image, f"A{row + 1}")
        row += math.ceil(image.height / ROW_HEIGHT_PX) + 3


def chart_paths(charts: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike] | None
                ) -> dict[str, Path]:
    """Charts as ``{caption: path}`` (a sequence is captioned by file name); must exist."""
    if charts is None:
        return {}
    items = (charts.items() if isinstance(charts, Mapping)
             else ((Path(p).stem, p) for p in charts))
    out = {str(caption): Path(p) for caption, p in items}
    for path in out.values():
        if not path.is_file():
            raise InputError("chart image not found", file=path,
                             fix="draw the charts with farmland.report.charts first")
    return out


def write_excel_report(
    path: str | os.PathLike,
    *,
    class_table: pd.DataFrame,
    rate_table: pd.DataFrame | None = None, gap_plan: pd.DataFrame | None = None,
    zones: pd.DataFrame | None = None, plan: pd.DataFrame | None = None,
    crop_exceedances: pd.DataFrame | None = None, qa_flags: pd.DataFrame | None = None,
    outliers: pd.DataFrame | None = None,
    charts: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike] | None = None,
    lang: str = "zh", overwrite: bool = False, extend: Callable[[Workbook], object] | None = None,
) -> Path:
    """Write the Excel report: one sheet per table given, then the charts.

    Parameters
    ----------
    path
        ``.xlsx`` file to write (atomically).
    class_table
        :func:`farmland.classify.summary.class_area_table` output (亩, hm², % share); the last
        row, the county total, is bold.
    rate_table
        ``safe_utilisation_rate(...).table`` (rate as a share 0..1, NaN = undefined).
        The sheet opens with plain sentences: target met or not, gap in 亩 and hm².
    gap_plan, zones, plan, crop_exceedances, qa_flags, outliers
        Gap parcels (:func:`farmland.rate.gap.close_gap`), strict-control zones, planned
        sampling points, crop samples above their limit, parcels with QA flags, suspect
        soil values (:mod:`farmland.classify.outliers`; a sheet only when there are some).
        GeoDataFrames are written without geometry. Unknown columns are kept with
        their own name as header.
    charts
        PNG files (a list, captioned by file name, or ``{caption: path}``) placed on
        the "图表 Charts" sheet.
    lang
        ``"zh"``: Chinese header row with an English row below it, bilingual sheet
        names and labels; ``"en"``: English only.
    overwrite
        Replace an existing file; otherwise :class:`~farmland.errors.OutputExistsError`.
    extend
        Called with the workbook before its one save (sheets of other tables added).

    Returns the path written.
    """
    check_lang(lang)
    path = Path(path)
    refuse_existing([path], overwrite=overwrite)
    images = chart_paths(charts)
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.creator = f"farmland {__version__}"
    wb.properties.title = bilingual("耕地土壤环境质量类别划分报告", "Farmland classification report", lang)
    _class_sheet(wb.create_sheet(sheet_name("class_table", lang)), class_table, lang)
    if rate_table is not None:
        _rate_sheet(wb.create_sheet(sheet_name("rate_table", lang)), rate_table, lang, gap_plan)
    tables = {"gap_plan": gap_plan, "zones": zones, "plan": plan,
              "crop_exceedances": crop_exceedances, "qa_flags": qa_flags,
              "outliers": outliers if outliers is not None and len(outliers) else None}
    for key, frame in tables.items():
        if frame is not None:
            frame = frame.rename(columns=SHEET_COLUMNS.get(key, {}))
            write_table(wb.create_sheet(sheet_name(key, lang)), frame, lang=lang)
    if images:
        _charts_sheet(wb.create_sheet(sheet_name("charts", lang)), images)
    if extend is not None:
        extend(wb)
    with atomic_write(path, overwrite=overwrite) as tmp:
        wb.save(tmp)
    log.info("wrote %s (%s)", final_path(path), ", ".join(wb.sheetnames))
    return path
