"""The boxes over a farmland map: title with the rate summary, and the legends.

Every text taken from the data (title, township name) is ``html.escape``d here; layer
names and class labels are fixed strings.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.template import Template

from farmland import classes
from farmland.maps.causes import cause_areas, link_legend, mode_counts
from farmland.maps.control import status_areas
from farmland.maps.layers import LAYER_SPECS
from farmland.maps.units import n_counties
from farmland.vocabulary import FLOWS

#: safe-utilisation target shown when the rate summary gives none (domain.md §4)
DEFAULT_TARGET = 0.91


class Panel(MacroElement):
    """A fixed box of already-escaped HTML over the map (title, legend)."""

    _template = Template("""
        {% macro html(this, kwargs) %}{{ this.markup }}{% endmacro %}
    """)

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "farmland_panel"
        self.markup = markup


def area_mu_by_class(parcels: pd.DataFrame) -> dict[int | None, float]:
    """Area per final class in 亩 (``area_mu``, else geometry area in the metric CRS).

    Returns
    -------
    dict
        ``{1: mu, 2: mu, 3: mu, None: mu}``, ``None`` = unclassified.
    """
    if "area_mu" in parcels:
        area = pd.to_numeric(parcels["area_mu"], errors="coerce").astype(float)
        if area.isna().any():
            geom_mu = parcels.geometry.area * classes.MU_PER_M2
            area = area.fillna(geom_mu)
    else:
        area = parcels.geometry.area * classes.MU_PER_M2
    codes = classes.as_class(parcels["final_class"].to_numpy())
    return {code: float(area.to_numpy()[(codes == code).fillna(False).to_numpy()].sum())
            if code is not None else float(area.to_numpy()[codes.isna().to_numpy()].sum())
            for code in (*classes.CLASS_CODES, None)}


def title_html(title: str, parcels: pd.DataFrame, township: str | None,
               rate: Mapping[str, float] | None) -> str:
    """Escaped HTML of the title and summary box."""
    esc = html.escape
    total = sum(area_mu_by_class(parcels).values())
    counties = n_counties(parcels) if township is None else 1
    scope = (f"乡镇详图 Township detail: {esc(str(township))}" if township is not None
             else "全县总览 County overview" if counties == 1
             else f"{counties} 县总览 Overview of {counties} counties")
    lines = [f'<div class="fl-box fl-title" id="fl-title"><h1>{esc(title)}</h1>',
             (f'<div class="fl-sub">{scope} · 图斑 {len(parcels):,} parcels · '
              f"{total:,.1f} 亩 mu</div>")]
    if rate is not None:
        lines.append(_rate_line(rate, township))
    lines.append("</div>")
    return "\n".join(lines)


def _rate_line(rate: Mapping[str, float], township: str | None) -> str:
    value, target = rate.get("rate"), rate.get("target")
    target = DEFAULT_TARGET if target is None or pd.isna(target) else float(target)
    who = "县" if township is None else "乡镇"
    who_en = "County" if township is None else "Township"
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return (f'<div>{who}安全利用率 {who_en} safe-utilisation rate: — '
                f"(无二、三类耕地 no class 2/3 land)</div>")
    value = float(value)
    css = "fl-rate-ok" if value >= target else "fl-rate-low"
    text = (f'<div>{who}安全利用率 {who_en} safe-utilisation rate: '
            f'<span class="{css}">{value * 100:.1f} %</span> · 目标 target {target * 100:.4g} %')
    gap = rate.get("gap_mu")
    if gap is not None and not pd.isna(gap) and 0 < float(gap) < np.inf:
        text += f" · 差距 gap {float(gap):,.1f} 亩 mu"
    return text + "</div>" + _evidence_line(rate)


def _evidence_line(rate: Mapping[str, float]) -> str:
    """The three accounting readings and what backs the counted safe-use area (when the
    rate summary has them)."""
    keys = ("rate_official", "rate_parcel_verified", "rate_measures_only")
    parts = [rate.get(f"evidence_{k}_mu") for k in ("own", "rate", "none")]
    if any(rate.get(k) is None for k in keys) or any(p is None for p in parts):
        return ""
    readings = " · ".join(f"{name} {100 * float(rate[k]):.1f} %" for name, k in zip(
        ("核算 official", "仅自有样品 own samples only", "仅措施 measures only"), keys,
        strict=True))
    total = sum(float(p) for p in parts)
    if total > 0:
        backing = " · ".join(f"{name} {100 * float(p) / total:.0f} %" for name, p in zip(
            ("自有样品 own samples", "达标率 compliance rate", "无数据 no crop data"), parts,
            strict=True))
        backing = f"<div class=\"fl-sub\">计入面积依据 evidence: {backing}</div>"
    else:
        backing = ""
    return f"<div class=\"fl-sub\">三种口径 readings: {readings}</div>{backing}"


def legend_box(title: str, rows: list[str]) -> str:
    """The legend box of every map: its title opens and closes it (it can cover the
    county on a small screen), open at first."""
    return ('<div class="fl-box fl-legend" id="fl-legend"><details open><summary>'
            f"{title}</summary><table>{''.join(rows)}</table></details></div>")


def legend_html(parcels: pd.DataFrame, overlays: list[str], *,
                loop: pd.DataFrame | None = None,
                causes: Mapping[str, pd.DataFrame] | None = None) -> str:
    """Escaped HTML of the legend: classes with their area (亩), then the overlays shown;
    under the closed-loop layer, its five statuses with their area (亩) and share of the
    class-3 parcels in ``loop``; under the cause layers (``causes``: their drawn rows), the
    cluster types with their area (亩) and share, the two kinds of link, the sampling
    modes with their number of points."""
    esc = html.escape
    areas = area_mu_by_class(parcels)
    total = sum(areas.values()) or 1.0
    rows = []
    for code in (*classes.CLASS_CODES, None):
        rows.append(
            f'<tr><td><span class="fl-sw" style="background:{classes.PALETTE[code]}"></span></td>'
            f"<td>{esc(classes.LABEL_ZH[code])}</td><td>{esc(classes.LABEL_EN[code])}</td>"
            f'<td class="fl-num">{areas[code]:,.1f} 亩</td>'
            f'<td class="fl-num">{100 * areas[code] / total:.1f} %</td></tr>')
    for key in overlays:
        rows.append(f"<tr><td>{_symbol(key)}</td>"
                    f'<td colspan="4">{esc(LAYER_SPECS[key].name)}</td></tr>')
        if key == "crops":
            rows.append(f"<tr><td>{_symbol('crops', exceed=True)}</td>"
                        '<td colspan="4">超标 exceeds limit</td></tr>')
        if key == "loop" and loop is not None:
            rows.extend(_status_rows(loop))
        if causes is not None and key in causes:
            rows.extend(_cause_rows(key, causes[key]))
    return legend_box("图例 Legend · 面积 area (亩 mu)", rows)


def _status_rows(loop: pd.DataFrame) -> list[str]:
    """One legend row per loop status: swatch, Chinese, English, 亩, share of the loop."""
    esc = html.escape
    areas = status_areas(loop)
    total = sum(mu for *_, mu in areas) or 1.0
    return [f'<tr class="fl-status"><td><span class="fl-sw" style="background:{colour}"></span>'
            f"</td><td>{esc(zh)}</td><td>{esc(en)}</td>"
            f'<td class="fl-num">{mu:,.1f} 亩</td><td class="fl-num">{100 * mu / total:.1f} %</td>'
            "</tr>" for _, zh, en, colour, _, mu in areas]


def _cause_rows(key: str, rows: pd.DataFrame) -> list[str]:
    """Legend rows under a cause layer: cluster types (亩, share), link kinds, modes."""
    esc = html.escape
    if key == "clusters":
        areas = cause_areas(rows)
        total = sum(mu for *_, mu in areas) or 1.0
        return [f'<tr class="fl-cause"><td><span class="fl-sw" style="background:{fill}">'
                f"</span></td><td>{esc(zh)}</td><td>{esc(en)} ({n})</td>"
                f'<td class="fl-num">{mu:,.1f} 亩</td>'
                f'<td class="fl-num">{100 * mu / total:.1f} %</td></tr>'
                for _, zh, en, fill, n, mu in areas]
    if key == "candidate_links":
        return [f'<tr class="fl-cause"><td><span class="fl-sw" style="background:none;'
                f'border:none;border-top:{border};height:0;vertical-align:middle"></span></td>'
                f'<td>{esc(zh)}</td><td colspan="3">{esc(en)}</td></tr>'
                for border, zh, en in link_legend()]
    if key == "confirm":
        return [f'<tr class="fl-cause"><td><span class="fl-dot" style="background:{colour};'
                f'border:1px solid #ffffff"></span></td><td>{esc(zh)}</td>'
                f'<td colspan="2">{esc(en)}</td><td class="fl-num">{n} 点</td></tr>'
                for colour, zh, en, n in mode_counts(rows)]
    return []


def _symbol(key: str, *, exceed: bool = False) -> str:
    spec = LAYER_SPECS[key]
    base = dict(spec.base)
    if exceed:
        base.update(spec.styles["true"])
    if spec.symbol == "line":
        dash = "dashed" if base.get("dashArray") else "solid"
        return (f'<span class="fl-sw" style="background:none;border:2px {dash} '
                f'{base["color"]}"></span>')
    if spec.symbol == "fill":
        return "".join(f'<span class="fl-sw" style="background:{classes.PALETTE[c]};width:6px">'
                       "</span>" for c in (*classes.CLASS_CODES, None))
    if spec.symbol == "swatches":
        return "".join(f'<span class="fl-sw" style="background:{st["fillColor"]};width:6px">'
                       "</span>" for value, st in spec.styles.items() if value != "null")
    if spec.symbol == "dots":
        return "".join(f'<span class="fl-dot" style="background:{st["fillColor"]};'
                       f'border:1px solid {base["color"]}"></span>'
                       for value, st in spec.styles.items() if value != "null")
    if spec.symbol == "classdots":
        return "".join(f'<span class="fl-dot" style="background:{classes.PALETTE[c]};'
                       f'border:1px solid {base["color"]}"></span>' for c in classes.CLASS_CODES)
    fill = base.get("fillColor", "#9e9e9e")
    return (f'<span class="fl-dot" style="background:{fill};'
            f'border:{min(float(base.get("weight", 1)), 3)}px solid {base["color"]}"></span>')


def flows_legend_html(keys: pd.Series, area_mu: pd.Series, overlays: list[str]) -> str:
    """Escaped HTML of a change-map legend: each flow present with its colour, bilingual
    meaning, number of parcels and area (亩), then the overlays shown."""
    esc = html.escape
    area = pd.to_numeric(area_mu, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    keys = keys.to_numpy(dtype=object)
    rows = []
    for key, (zh, en, colour) in FLOWS.items():
        hit = keys == key
        if not hit.any():
            continue
        rows.append(
            f'<tr><td><span class="fl-sw" style="background:{colour}"></span></td>'
            f"<td>{esc(key if key[0] in '123U' else '')}</td><td>{esc(zh)}</td><td>{esc(en)}</td>"
            f'<td class="fl-num">{int(hit.sum()):,}</td>'
            f'<td class="fl-num">{area[hit].sum():,.1f} 亩</td></tr>')
    for key in overlays:
        rows.append(f"<tr><td>{_symbol(key)}</td>"
                    f'<td colspan="5">{esc(LAYER_SPECS[key].name)}</td></tr>')
    return legend_box("图例 Legend · 类别变化 class changes (图斑数 parcels · 面积 area)", rows)


def diff_title_html(title: str, n_changed: int, area_mu: float, subtitle: str | None) -> str:
    """Escaped HTML of a change map's title box."""
    esc = html.escape
    lines = [f'<div class="fl-box fl-title" id="fl-title"><h1>{esc(title)}</h1>']
    if subtitle:
        lines.append(f'<div class="fl-sub">{esc(subtitle)}</div>')
    lines.append(f'<div class="fl-sub">变化图斑 {n_changed:,} changed parcels · '
                 f"{area_mu:,.1f} 亩 mu</div></div>")
    return "\n".join(lines)
