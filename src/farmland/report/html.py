"""One-file HTML summary report: class areas, rate against the target, gap, charts.

The file is self-contained: inline CSS, charts embedded as base64 PNG data URIs,
no script and no external URL (a Content-Security-Policy meta tag forbids loading
anything else), so it can be mailed or opened offline. Every text value is
HTML-escaped. Headers, units and value labels come from :mod:`farmland.report.excel`.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from farmland import __version__
from farmland import classes as C
from farmland.io.values import parse_boolean
from farmland.io.write import atomic_write, final_path
from farmland.report.excel import (
    COLUMNS,
    bilingual,
    chart_paths,
    check_lang,
    display_value,
    rate_statement,
)
from farmland.report.statements import county_row

log = logging.getLogger(__name__)

CLASS_COLUMNS = ["township", "n_parcels", "class1_mu", "class2_mu", "class3_mu",
                 "unclassified_mu", "total_mu", "class1_pct", "class2_pct", "class3_pct",
                 "unclassified_pct"]
RATE_COLUMNS = ["name", "area2_mu", "area3_mu", "numerator_mu", "denominator_mu", "rate",
                "target", "met", "gap_mu"]
#: text format per column kind (numbers); other kinds are shown as text
TEXT_FORMATS = {"int": "{:,.0f}", "mu": "{:,.1f}", "hm2": "{:,.2f}", "share": "{:.1%}",
                "pct100": "{:.1f} %", "conc": "{:.3f}", "deg": "{:.6f}", "metre": "{:,.1f}",
                "year": "{:.0f}", "class": "{:.0f}", "score": "{:.3f}"}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",
"WenQuanYi Micro Hei","WenQuanYi Zen Hei",SimHei,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em;line-height:1.5}
h1{font-size:1.6em;border-bottom:3px solid #2e9e4f;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#e8eef4;font-weight:600;vertical-align:bottom}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:700;background:#f6f6f6}
.verdict{font-size:1.1em;font-weight:700;padding:.6em 1em;border-left:6px solid #999}
.verdict.met{border-color:#2e9e4f;background:#eef8f1}
.verdict.notmet{border-color:#d7301f;background:#fdeeec}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption,.meta{color:#666;font-size:.85em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def cell_text(column: str, value: object, lang: str) -> tuple[str, bool]:
    """(text, is_number) of one table cell, formatted by the column's kind."""
    shown = display_value(column, value, lang)
    kind = COLUMNS.get(column, ("", "", ""))[2]
    if shown is None:
        return "—", False
    if isinstance(shown, (int, float)) and not isinstance(shown, bool) and kind in TEXT_FORMATS:
        return TEXT_FORMATS[kind].format(shown), True
    return str(shown), isinstance(shown, (int, float))


def html_table(frame: pd.DataFrame, columns: Sequence[str], lang: str, *,
               total: Sequence[bool] | None = None) -> str:
    """An escaped HTML table of ``columns`` (those present) with bilingual headers."""
    cols = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{_header(c, lang)}</th>" for c in cols)
    rows = []
    for i, record in enumerate(frame[cols].to_dict(orient="records")):
        cells = []
        for c in cols:
            text, number = cell_text(c, record[c], lang)
            cells.append(f'<td class="num">{_e(text)}</td>' if number else f"<td>{_e(text)}</td>")
        cls = ' class="total"' if total is not None and total[i] else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _header(column: str, lang: str) -> str:
    zh, en, _ = COLUMNS.get(column, (column, column, ""))
    return f"{_e(zh)}<br>{_e(en)}" if lang == "zh" else _e(en)


def class_summary(class_table: pd.DataFrame, lang: str) -> list[str]:
    """One sentence per language: county farmland area and its split into classes.

    Every figure is the table's own value in the table's own format (:func:`cell_text`):
    rounded once, so the sentence and the table never disagree.
    """
    total = class_table.iloc[-1]

    def shown(column: str) -> str:
        return cell_text(column, total[column], "en")[0]

    parts_zh, parts_en = [], []
    for key, code in (("class1", 1), ("class2", 2), ("class3", 3), ("unclassified", None)):
        mu, share = shown(f"{key}_mu"), shown(f"{key}_pct")
        share = "—" if share == "—" else share
        parts_zh.append(f"{C.label_zh(code)} {mu} 亩（{share}）")
        parts_en.append(f"{C.label_en(code).lower()} {mu} mu ({share})")
    all_mu, all_hm2 = shown("total_mu"), shown("total_hm2")
    zh = f"全县耕地 {all_mu} 亩（{all_hm2} 公顷）：{'，'.join(parts_zh)}。"
    en = f"County farmland {all_mu} mu ({all_hm2} hm²): {', '.join(parts_en)}."
    return [zh, en] if lang == "zh" else [en]


def _legend(lang: str) -> str:
    items = [f'<span class="swatch" style="background:{C.colour(code)}"></span>'
             f"{_e(bilingual(C.label_zh(code), C.label_en(code), lang))}"
             for code in (1, 2, 3, None)]
    return f"<p>{' &nbsp; '.join(items)}</p>"


def _rate_section(rate_table: pd.DataFrame, gap_plan: pd.DataFrame | None, lang: str) -> str:
    lines = rate_statement(rate_table, lang, gap_plan=gap_plan)
    county = rate_table["level"].astype("str").eq("county") if "level" in rate_table else None
    row = county_row(rate_table)
    met = parse_boolean(pd.Series([row.get("met")])).iloc[0]
    state = "" if math.isnan(float(row["rate"])) or pd.isna(met) else (
        " met" if met else " notmet")
    n_head = 2 if lang == "zh" else 1
    verdict = "<br>".join(_e(t) for t in lines[:n_head])
    rest = "".join(f"<li>{_e(t)}</li>" for t in lines[n_head:])
    title = _e(bilingual("安全利用率", "Safe-utilisation rate", lang))
    return (f"<section><h2>{title}</h2><p class=\"verdict{state}\">{verdict}</p>"
            f"<ul>{rest}</ul>"
            f"{html_table(rate_table, ['level', *RATE_COLUMNS], lang, total=_bool_list(county))}"
            "</section>")


def _bool_list(mask: pd.Series | None) -> list[bool] | None:
    return None if mask is None else mask.tolist()


def _charts_section(charts: Mapping[str, Path], lang: str) -> str:
    figures = []
    for caption, path in charts.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
                       f"<figcaption>{_e(caption)}</figcaption></figure>")
    return f"<section><h2>{_e(bilingual('图表', 'Charts', lang))}</h2>{''.join(figures)}</section>"


def write_html_report(
    path: str | os.PathLike,
    *,
    title: str,
    class_table: pd.DataFrame,
    rate_table: pd.DataFrame | None = None,
    charts: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike] | None = None,
    notes: str | Sequence[str] | None = None,
    gap_plan: pd.DataFrame | None = None,
    extra_sections: Sequence[str] = (),
    lang: str = "zh",
    overwrite: bool = False,
) -> Path:
    """Write the one-file HTML summary report.

    Parameters
    ----------
    path
        ``.html`` file to write (atomically; UTF-8).
    title
        Report title (escaped like every other text).
    class_table
        :func:`farmland.classify.summary.class_area_table` output (亩; last row = county total).
    rate_table
        ``safe_utilisation_rate(...).table``: the report states plainly whether the
        county meets the target and the gap in 亩 and hm².
    charts
        PNG files (list, captioned by file name, or ``{caption: path}``), embedded as
        base64 data URIs.
    notes
        Free text (one string or a list of paragraphs), shown last.
    gap_plan
        :func:`farmland.rate.gap.close_gap` output: adds the number and area of gap parcels.
    extra_sections
        Further ``<section>`` blocks of already escaped HTML, placed after the rate
        (e.g. :func:`farmland.report.control_sheets.control_section`).
    lang
        ``"zh"`` (bilingual) or ``"en"``.
    overwrite
        Replace an existing file; otherwise :class:`~farmland.errors.OutputExistsError`.

    Returns
    -------
    pathlib.Path
    """
    check_lang(lang)
    images = chart_paths(charts)
    sections = [
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"meta\">farmland {_e(__version__)}</p>",
        f"<section><h2>{_e(bilingual('类别面积', 'Class area', lang))}</h2>"
        + "".join(f"<p>{_e(t)}</p>" for t in class_summary(class_table, lang))
        + _legend(lang)
        + html_table(class_table, CLASS_COLUMNS, lang,
                     total=[i == len(class_table) - 1 for i in range(len(class_table))])
        + "</section>",
    ]
    if rate_table is not None:
        sections.append(_rate_section(rate_table, gap_plan, lang))
    sections.extend(s for s in extra_sections if s)
    if images:
        sections.append(_charts_section(images, lang))
    if notes:
        paragraphs = [notes] if isinstance(notes, str) else list(notes)
        sections.append(f"<section><h2>{_e(bilingual('说明', 'Notes', lang))}</h2>"
                        + "".join(f"<p>{_e(p)}</p>" for p in paragraphs) + "</section>")
    document = (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(sections) + "</body></html>\n")
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(document, encoding="utf-8")
    log.info("wrote %s", final_path(path))
    return Path(path)
