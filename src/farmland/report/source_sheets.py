"""Where the contamination comes from, in ``farmland report`` (issue 17).

When the run folder holds what ``farmland sources`` wrote (``sources.gpkg``,
``clusters.csv``, ``candidates.csv``; or ``farmland report --causes PATH``), the report
gets, before its charts:

- "污染成因 Source clusters": a few sentences (area by cause, which clusters have a sheet,
  the ranking is evidence, not a verdict) and one row per cluster — township, area by
  class, dominant elements, top candidate, type, score, margin, evidence and its sheet;
- "源解析因子 Factor profiles": ``factors.csv`` as written, when present;
- one sheet per cluster of at least :data:`MIN_SHEET_MU` 亩 or among the
  :data:`TOP_BY_AREA` largest, at most :data:`MAX_SHEETS` (largest first), named
  "CL001 东岩乡": the cluster's figures, its elements (median, EF, Pᵢ), its ranked
  candidates with every evidence column, its confirmation samples.

and a short HTML section (:func:`source_section`). Headers are bilingual (Chinese over
English, or English only); cells go through :func:`farmland.report.excel.write_cell` (text
never becomes a formula), HTML text through :func:`html.escape`. The sheets are added to
the saved workbook, as :mod:`farmland.report.control_sheets` does.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet

from farmland.io.write import atomic_write
from farmland.report.excel import (
    COLUMNS,
    FORMATS,
    bilingual,
    check_lang,
    fit_column,
    sheet_name,
    write_cell,
)
from farmland.report.excel import text_width as width_of
from farmland.report.labels import code_list_text
from farmland.report.statements import is_missing
from farmland.runs.source_outputs import SourceTables, cause_keys
from farmland.sources.clusters import SIGNATURE_ELEMENTS
from farmland.vocabulary import CAUSE_TYPES, CONFIRM_MODES

__all__ = ["MAX_SHEETS", "MIN_SHEET_MU", "SOURCE_HEADERS", "TOP_BY_AREA", "add_source_sheets",
           "cluster_sheet_name", "detail_clusters", "source_section"]

#: a cluster of at least this many 亩 gets its own sheet …
MIN_SHEET_MU = 50.0
#: … and so do the largest ones, however small …
TOP_BY_AREA = 20
#: … but no more than this many sheets (largest first)
MAX_SHEETS = 30
#: id lists longer than this are cut (clusters.csv has them all; a cell holds 32 767 characters)
MAX_IDS = 50
OVERVIEW = ("污染成因", "Source clusters")
FACTORS = ("源解析因子", "Factor profiles")
_NUMBER_FORMATS = {**FORMATS, "x2": "0.00", "ph": "0.00"}
_HEADER_FILL = PatternFill("solid", fgColor="E8EEF4")
_BOLD = Font(bold=True)
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\\x00-\x1f]")

#: columns whose headers are the report's own (:data:`farmland.report.excel.COLUMNS`)
_REPORT_COLUMNS = ("township", "other_townships", "area_mu", "area_hm2", "n_parcels",
                   "n_samples", "driving_elements", "name", "priority", "lon", "lat")
#: column → (Chinese, English, kind): the report's columns above, then the source sheets'
#: own. Kinds are number formats of :data:`farmland.report.excel.FORMATS` (plus ``x2``,
#: ``ph``: two decimals) or ``text``. Other columns (factors.csv) keep their names.
SOURCE_HEADERS: dict[str, tuple[str, str, str]] = {
    **{c: COLUMNS[c] for c in _REPORT_COLUMNS},
    "cluster_id": ("聚集区", "Cluster", "text"),
    "area_class2_mu": ("安全利用类（亩）", "Class 2 (mu)", "mu"),
    "area_class3_mu": ("严格管控类（亩）", "Class 3 (mu)", "mu"),
    "dominant_elements": ("主要超标元素", "Dominant elements", "text"),
    "ph_median": ("pH 中位数", "Median pH", "ph"),
    "pi_median_cd": ("Cd Pᵢ 中位数", "Cd Pᵢ median", "x2"),
    "pi_p90_cd": ("Cd Pᵢ P90", "Cd Pᵢ P90", "x2"),
    "signature_basis": ("特征依据", "Signature basis", "text"),
    "zone_gap_m": ("聚集间距（米）", "Zone gap (m)", "metre"),
    "top_candidate_id": ("首位候选", "Top candidate", "text"),
    "top_name": ("名称", "Name", "text"),
    "cause": ("成因类型", "Cause", "text"),
    "top_score": ("得分", "Score", "score"),
    "top_margin": ("领先幅度", "Margin", "score"),
    "top_evidence": ("依据", "Evidence", "text"),
    "sheet": ("明细表", "Detail sheet", "text"),
    "sample_ids": ("样点编号", "Sample IDs", "text"),
    "parcel_ids": ("图斑编号", "Parcel IDs", "text"),
    "rank": ("排序", "Rank", "int"),
    "candidate_id": ("候选编号", "Candidate", "text"),
    "candidate_type": ("类型", "Type", "text"),
    "industry": ("行业", "Industry", "text"),
    "metals": ("特征污染物", "Metals", "text"),
    "score": ("得分", "Score", "score"),
    "distance_m": ("距离（米）", "Distance (m)", "metre"),
    "bearing_deg": ("方位（度）", "Bearing (°)", "int"),
    "near_field_share": ("近场面积占比", "Near-field share", "share"),
    "downwind_share": ("下风向频率", "Downwind share", "share"),
    "downwind_ratio": ("下风向倍数", "Downwind ratio", "x2"),
    "downstream": ("位于下游", "Downstream", "text"),
    "network_distance_m": ("河网距离（米）", "Network distance (m)", "metre"),
    "river": ("河流/灌渠", "River or canal", "text"),
    "along_share": ("沿河面积占比", "Along-river share", "share"),
    "signature_cosine": ("特征相似度", "Signature cosine", "score"),
    "signature_coverage": ("特征覆盖度", "Signature coverage", "score"),
    "karst_share": ("岩溶面积占比", "Karst share", "share"),
    "high_ph_share": ("pH>7.5 样点占比", "High-pH share", "share"),
    "co_enrichment": ("Pb/Zn/As 共富集（倍）", "Co-enrichment (×)", "x2"),
    "evidence": ("依据", "Evidence", "text"),
    "point_id": ("点位编号", "Point", "text"),
    "medium": ("采样介质", "Medium", "text"),
    "mode": ("方式", "Mode", "text"),
    "reason": ("原因", "Reason", "text"),
    "parcel_id": ("图斑编号", "Parcel", "text"),
    "element": ("元素", "Element", "text"),
    "conc": ("中位含量（mg/kg）", "Median (mg/kg)", "conc"),
    "ef": ("富集系数", "Enrichment factor", "x2"),
    "pi_median": ("Pᵢ 中位数", "Pᵢ median", "x2"),
    "pi_p90": ("Pᵢ P90", "Pᵢ P90", "x2"),
    "dominant": ("主要超标", "Dominant", "text"),
}
OVERVIEW_COLUMNS = ["cluster_id", "township", "other_townships", "area_mu", "area_class2_mu",
                    "area_class3_mu", "n_parcels", "n_samples", "dominant_elements", "ph_median",
                    "pi_median_cd", "pi_p90_cd", "top_candidate_id", "top_name", "cause",
                    "top_score", "top_margin", "top_evidence", "sheet"]
FIGURE_ROWS = ["cluster_id", "township", "other_townships", "area_mu", "area_class2_mu",
               "area_class3_mu", "area_hm2", "n_parcels", "n_samples", "dominant_elements",
               "driving_elements", "ph_median", "top_candidate_id", "top_name", "cause",
               "top_score", "top_margin", "top_evidence", "signature_basis", "zone_gap_m",
               "sample_ids", "parcel_ids"]
CANDIDATE_COLUMNS = ["rank", "candidate_id", "candidate_type", "name", "industry", "metals",
                     "score", "distance_m", "bearing_deg", "near_field_share", "downwind_share",
                     "downwind_ratio", "downstream", "network_distance_m", "river", "along_share",
                     "signature_cosine", "signature_coverage", "karst_share", "high_ph_share",
                     "co_enrichment", "evidence"]
CONFIRM_COLUMNS = ["point_id", "candidate_id", "medium", "reason", "priority",
                   "parcel_id", "township", "lon", "lat"]


# Which clusters get a sheet, and its name ---------------------------------------------
def detail_clusters(clusters: pd.DataFrame) -> list[str]:
    """Ids of the clusters with a sheet: ``area_mu`` ≥ :data:`MIN_SHEET_MU` or among the
    :data:`TOP_BY_AREA` largest, at most :data:`MAX_SHEETS`, largest first (ties by id)."""
    area = pd.to_numeric(clusters["area_mu"], errors="coerce").fillna(0.0)
    order = pd.DataFrame({"id": clusters["cluster_id"].astype(str).to_numpy(),
                          "area": area.to_numpy()}).sort_values(
        ["area", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    keep = (order["area"] >= MIN_SHEET_MU) | (order.index < TOP_BY_AREA)
    return order.loc[keep, "id"].head(MAX_SHEETS).tolist()


def cluster_sheet_name(cluster_id: object, township: object, taken: set[str]) -> str:
    """"CL001 东岩乡": valid for Excel (no ``[]:*?/\\``, no leading or trailing quote,
    ≤ 31 characters) and not in ``taken`` (compared case-insensitively); the id alone
    when the township makes it clash."""
    def clean(text: str) -> str:
        return _BAD_SHEET_CHARS.sub("_", text).strip().strip("'").strip()[:31].rstrip("'")

    cid = clean(str(cluster_id)) or "cluster"
    town = "" if is_missing(township) else str(township)
    used = {t.lower() for t in taken}
    for name in (clean(f"{cid} {town}") if town else cid, cid):
        if name and name.lower() not in used:
            return name
    n = 2
    while f"{cid[:27]} ({n})".lower() in used:
        n += 1
    return f"{cid[:27]} ({n})"


# Cells -------------------------------------------------------------------------------
def _ids(text: object) -> object:
    """An id list cut to :data:`MAX_IDS` ids plus "… (+n)"."""
    if is_missing(text):
        return None
    items = [i for i in str(text).split(",") if i.strip()]
    return str(text) if len(items) <= MAX_IDS else ",".join(items[:MAX_IDS]) + \
        f" … (+{len(items) - MAX_IDS})"


def _elements(text: object, lang: str) -> object:
    return None if is_missing(text) else code_list_text("metals", str(text), lang)


def _label(column: str, value: object, lang: str) -> object:
    """Coded values in words: types, modes, yes/no, element lists, long id lists."""
    if is_missing(value):
        return None
    if column in ("cause", "candidate_type") and str(value) in CAUSE_TYPES:
        return bilingual(*CAUSE_TYPES[str(value)][:2], lang)
    if column == "mode" and str(value) in CONFIRM_MODES:
        return bilingual(*CONFIRM_MODES[str(value)][:2], lang)
    if column in ("downstream", "dominant") and isinstance(value, (bool, np.bool_)):
        return bilingual(*(("是", "yes") if value else ("否", "no")), lang)
    if column in ("dominant_elements", "driving_elements", "element"):
        return _elements(value, lang)
    if column in ("sample_ids", "parcel_ids"):
        return _ids(value)
    return value


def _put(ws: Worksheet, row: int, col: int, value: object, kind: str, *, bold: bool = False):
    """One cell: text as text (never a formula), numbers with the kind's format."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    if kind == "text" or isinstance(value, str):
        cell = write_cell(ws, row, col, None if is_missing(value) else str(value))
    else:
        cell = write_cell(ws, row, col, None if is_missing(value) else value)
        if cell.value is not None:
            cell.number_format = _NUMBER_FORMATS.get(kind, "General")
    if bold:
        cell.font = _BOLD
    return cell


def _headers(column: str) -> tuple[str, str, str]:
    """(Chinese, English, kind) of a column; an unknown one (factors.csv) keeps its name in
    the first header row, and its kind (``""``) follows its values."""
    return SOURCE_HEADERS.get(column, (str(column), "", ""))


class _Sheet:
    """Writes blocks down one sheet and fits the columns at the end."""

    def __init__(self, ws: Worksheet, lang: str) -> None:
        self.ws, self.lang, self.row, self.widths = ws, lang, 1, {}

    def _fit(self, col: int, value: object) -> None:
        w = width_of(value) if isinstance(value, str) else 12 if value is not None else 0
        self.widths[col] = max(self.widths.get(col, 0), w)

    def line(self, zh: str, en: str, *, size: int = 11) -> None:
        for text in ((zh, en) if self.lang == "zh" else (en,)):
            write_cell(self.ws, self.row, 1, text).font = Font(bold=True, size=size)
            self.row += 1

    def pairs(self, record: pd.Series, columns: list[str]) -> None:
        """Label / value rows of one record (columns present and not empty)."""
        for column in columns:
            value = _label(column, record.get(column), self.lang)
            if is_missing(value):
                continue
            zh, en, kind = _headers(column)
            label = bilingual(zh, en, self.lang).strip() or zh
            _put(self.ws, self.row, 1, label, "text", bold=True)
            _put(self.ws, self.row, 2, value, kind or "x2")
            self._fit(1, label)
            self.row += 1

    def table(self, frame: pd.DataFrame, columns: list[str], *, empty: tuple[str, str],
              link: dict[str, str] | None = None) -> int:
        """A table with 2 (zh) or 1 (en) header rows; returns the first data row."""
        cols = [c for c in columns if c in frame.columns]
        heads = [_headers(c) for c in cols]
        for j, (zh, en, _) in enumerate(heads, start=1):
            for i, text in enumerate((zh, en) if self.lang == "zh" else (en or zh,)):
                cell = write_cell(self.ws, self.row + i, j, text)
                cell.font, cell.fill = _BOLD, _HEADER_FILL
                cell.alignment = Alignment(vertical="center", wrap_text=False)
                self._fit(j, text)
        self.row += 2 if self.lang == "zh" else 1
        first = self.row
        numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) for c in cols}
        for record in frame[cols].itertuples(index=False):
            for j, (column, value) in enumerate(zip(cols, record, strict=True), start=1):
                kind = _headers(column)[2] or ("x2" if numeric[column] else "text")
                shown = _label(column, value, self.lang)
                cell = _put(self.ws, self.row, j, shown, kind)
                if link and column == "sheet" and shown in link:
                    cell.hyperlink = Hyperlink(ref=cell.coordinate,
                                               location=f"'{link[shown]}'!A1")
                    cell.font = Font(color="0563C1", underline="single")
                self._fit(j, shown)
            self.row += 1
        if frame.empty:
            write_cell(self.ws, self.row, 1, bilingual(*empty, self.lang))
            self.row += 1
        self.row += 1
        return first

    def finish(self) -> None:
        for col, width in self.widths.items():
            fit_column(self.ws, col, width)


# The sheets --------------------------------------------------------------------------
def _overview(ws: Worksheet, clusters: pd.DataFrame, sheets: dict[str, str], lang: str) -> None:
    out = _Sheet(ws, lang)
    area = pd.to_numeric(clusters["area_mu"], errors="coerce").fillna(0.0)
    class3 = pd.to_numeric(clusters.get("area_class3_mu", 0.0), errors="coerce")
    total, n = float(area.sum()), len(clusters)
    out.line(f"污染成因排查：{n} 个污染聚集区（安全利用类和严格管控类连片耕地），合计 {total:,.1f} 亩，"
             f"其中严格管控类 {float(np.nansum(class3)):,.1f} 亩。",
             f"Source investigation: {n} contaminated-land cluster(s) (contiguous class-2/3 "
             f"land), {total:,.1f} mu, of which {float(np.nansum(class3)):,.1f} mu class 3.",
             size=12)
    keys = pd.Series(clusters["cause"].to_numpy(), index=area.index)
    parts = [(zh, en, int((keys == k).sum()), float(area[keys == k].sum()))
             for k, (zh, en, *_) in CAUSE_TYPES.items()]
    out.line("首位候选类型：" + "，".join(f"{zh} {mu:,.1f} 亩（{c} 个）" for zh, _, c, mu in parts)
             + "。",
             "Top candidate type: " + ", ".join(f"{en} {mu:,.1f} mu ({c})"
                                                for _, en, c, mu in parts) + ".")
    left = n - len(sheets)
    out.line(f"明细表：面积 ≥ {MIN_SHEET_MU:g} 亩或面积前 {TOP_BY_AREA} 位的聚集区各一张（至多 "
             f"{MAX_SHEETS} 张），共 {len(sheets)} 张，见末列；其余 {left} 个聚集区无明细表。",
             f"Detail sheets: one per cluster of ≥ {MIN_SHEET_MU:g} mu or among the "
             f"{TOP_BY_AREA} largest (at most {MAX_SHEETS}): {len(sheets)}, named in the last "
             f"column; the other {left} cluster(s) have none.")
    out.line("排序是调查线索，不是结论：每个得分背后的数字见明细表和 candidates.csv。",
             "The ranking is evidence for an investigation, not a verdict: the figures behind "
             "every score are on the detail sheets and in candidates.csv.")
    out.row += 1
    table = clusters.assign(sheet=clusters["cluster_id"].astype(str).map(sheets))
    first = out.table(table, OVERVIEW_COLUMNS, empty=("（无聚集区）", "(no clusters)"),
                      link={v: v for v in sheets.values()})
    ws.freeze_panes = f"B{first}"
    last = get_column_letter(sum(c in table for c in OVERVIEW_COLUMNS))
    ws.auto_filter.ref = f"A{first - 1}:{last}{max(first + len(table) - 1, first - 1)}"
    out.finish()


def _elements_table(record: pd.Series) -> pd.DataFrame:
    """One row per signature element with a figure: median, EF, Pᵢ median and P90."""
    dominant = {e.strip().lower() for e in str(record.get("dominant_elements") or "").split(",")}
    rows = []
    for el in SIGNATURE_ELEMENTS:
        values = {k: record.get(f"{k}_{el}") for k in ("conc", "ef", "pi_median", "pi_p90")}
        if all(is_missing(v) for v in values.values()):
            continue
        rows.append({"element": el, **{k: pd.to_numeric(v, errors="coerce")
                                       for k, v in values.items()}, "dominant": el in dominant})
    return pd.DataFrame(rows, columns=["element", "conc", "ef", "pi_median", "pi_p90",
                                       "dominant"])


def _cluster(ws: Worksheet, record: pd.Series, tables: SourceTables, lang: str) -> None:
    out = _Sheet(ws, lang)
    cid = str(record["cluster_id"])
    town = "" if is_missing(record.get("township")) else str(record["township"])
    out.line(f"{cid} {town} 污染聚集区".replace("  ", " "),
             f"{cid} {town} contaminated-land cluster".replace("  ", " "), size=12)
    out.row += 1
    out.line("概况", "Figures")
    out.pairs(record, FIGURE_ROWS)
    out.row += 1
    out.line("元素：中位含量、富集系数（对聚集区外样点中位数）、单项污染指数 Pᵢ",
             "Elements: median, enrichment factor (over the median outside every cluster), "
             "single-factor index Pᵢ")
    out.table(_elements_table(record), ["element", "conc", "ef", "pi_median", "pi_p90",
                                        "dominant"], empty=("（无元素数据）", "(no element data)"))
    out.line("候选来源（按得分排序）", "Ranked candidate sources")
    cands = tables.candidates
    rows = (cands[cands["cluster_id"].astype(str) == cid].sort_values("rank", kind="stable")
            if cands is not None else pd.DataFrame(columns=CANDIDATE_COLUMNS))
    out.table(rows, CANDIDATE_COLUMNS, empty=(
        "（无候选：未找到 candidates.csv 或本聚集区无候选）",
        "(no candidates: no candidates.csv, or none for this cluster)"))
    out.line("核实采样点", "Confirmation samples")
    conf = tables.confirm
    rows = (conf[conf["cluster_id"].astype(str) == cid].sort_values("point_id", kind="stable")
            if conf is not None else pd.DataFrame(columns=CONFIRM_COLUMNS))
    out.table(rows, CONFIRM_COLUMNS, empty=(
        "（无：面积不足 50 亩、首位得分低于 0.2，或未找到 sources.gpkg）",
        "(none: below 50 mu, top score below 0.2, or no sources.gpkg)"))
    out.finish()


def _factors(ws: Worksheet, factors: pd.DataFrame, lang: str) -> None:
    out = _Sheet(ws, lang)
    out.line("源解析因子（factors.csv 原样列出）", "Factor profiles (factors.csv as written)")
    out.row += 1
    out.table(factors, list(factors.columns), empty=("（无因子）", "(no factors)"))
    out.finish()


def add_source_sheets(path: str | os.PathLike | Workbook, tables: SourceTables | None, *,
                      lang: str = "zh") -> list[str]:
    """Add the source sheets to the report workbook ``path`` (in place, atomically), before
    its charts sheet.

    Parameters
    ----------
    path
        ``report.xlsx`` of :func:`farmland.report.excel.write_excel_report` (or its
        workbook before it is saved: changed in memory only).
    tables
        :func:`farmland.runs.source_outputs.read_cause_tables`; ``None`` adds nothing.
    lang
        ``"zh"`` (Chinese over English) or ``"en"``.

    Returns
    -------
    list of str
        The names of the sheets added, in order.
    """
    check_lang(lang)
    if tables is None:
        return []
    clusters = tables.clusters.assign(cause=cause_keys(tables.clusters))
    wb = path if isinstance(path, Workbook) else load_workbook(path)
    charts = sheet_name("charts", lang)
    at = wb.sheetnames.index(charts) if charts in wb.sheetnames else len(wb.sheetnames)
    names = [bilingual(*OVERVIEW, lang)]
    if tables.factors is not None:
        names.append(bilingual(*FACTORS, lang))
    taken = set(wb.sheetnames) | set(names)
    sheets: dict[str, str] = {}
    by_id = clusters.drop_duplicates("cluster_id").set_index(
        clusters.drop_duplicates("cluster_id")["cluster_id"].astype(str))
    for cid in detail_clusters(clusters):
        sheets[cid] = cluster_sheet_name(cid, by_id.loc[cid].get("township"), taken)
        taken.add(sheets[cid])
    _overview(wb.create_sheet(names[0], at), clusters, sheets, lang)
    if tables.factors is not None:
        _factors(wb.create_sheet(names[1], at + 1), tables.factors, lang)
    for i, (cid, name) in enumerate(sheets.items(), start=len(names)):
        _cluster(wb.create_sheet(name, at + i), by_id.loc[cid], tables, lang)
    if not isinstance(path, Workbook):
        with atomic_write(Path(path), overwrite=True) as tmp:
            wb.save(tmp)
    return [*names, *sheets.values()]


# HTML ----------------------------------------------------------------------------------
def source_section(tables: SourceTables | None, lang: str = "zh", *, top: int = 15) -> str:
    """Escaped HTML section: the area by cause and the ``top`` largest clusters with their
    top candidate; ``""`` without source outputs."""
    if tables is None:
        return ""
    e = html.escape
    clusters = tables.clusters.assign(cause=cause_keys(tables.clusters))
    area = pd.to_numeric(clusters["area_mu"], errors="coerce").fillna(0.0)
    total = float(area.sum()) or 1.0
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{fill}"></span>'
        f"{e(bilingual(zh, en, lang))}</td>"
        f'<td class="num">{int((clusters["cause"] == k).sum())}</td>'
        f'<td class="num">{float(area[clusters["cause"] == k].sum()):,.1f}</td>'
        f'<td class="num">{100 * float(area[clusters["cause"] == k].sum()) / total:.1f} %</td>'
        "</tr>" for k, (zh, en, fill, _) in CAUSE_TYPES.items())
    head = "".join(f"<th>{e(bilingual(z, n, lang))}</th>" for z, n in (
        ("首位候选类型", "Top candidate type"), ("聚集区", "Clusters"), ("面积（亩）", "Area (mu)"),
        ("占比", "Share")))
    intro = bilingual(
        f"{len(clusters)} 个污染聚集区，合计 {float(area.sum()):,.1f} 亩。排序是调查线索，不是结论。",
        f"{len(clusters)} contaminated-land cluster(s), {float(area.sum()):,.1f} mu. The "
        "ranking is evidence for an investigation, not a verdict.", lang)
    largest = clusters.assign(_a=area).sort_values(["_a", "cluster_id"],
                                                   ascending=[False, True]).head(top)
    cols = ["cluster_id", "township", "area_mu", "area_class3_mu", "dominant_elements",
            "top_name", "cause", "top_score", "top_margin", "top_evidence"]
    cols = [c for c in cols if c in largest]
    names = {c: ("首位候选", "Top candidate") if c == "top_name" else _headers(c)[:2] for c in cols}
    thead = "".join(f"<th>{e(bilingual(*names[c], lang))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_html_cell(c, r[c], lang) for c in cols) + "</tr>"
                   for _, r in largest.iterrows())
    title = e(bilingual("污染成因排查", "Where the contamination comes from", lang))
    more = bilingual(f"面积最大的 {len(largest)} 个，完整列表见 Excel“污染成因”表。",
                     f"The {len(largest)} largest; all of them on the 'Source clusters' sheet.",
                     lang)
    return (f"<section><h2>{title}</h2><p>{e(intro)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>{e(more)}</p><table><thead><tr>{thead}</tr></thead><tbody>{body}</tbody>"
            "</table></section>")


def _html_cell(column: str, value: object, lang: str) -> str:
    shown = _label(column, value, lang)
    if is_missing(shown):
        return "<td>—</td>"
    kind = _headers(column)[2]
    if isinstance(shown, (int, float, np.number)) and not isinstance(shown, bool):
        text = f"{float(shown):,.1f}" if kind == "mu" else f"{float(shown):.2f}"
        return f'<td class="num">{text}</td>'
    return f"<td>{html.escape(str(shown))}</td>"
