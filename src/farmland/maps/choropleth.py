"""The themes of the province overview map: how a county or township is coloured.

Each unit (county, township) of :func:`farmland.maps.overview.make_overview` is drawn
once per theme, as one of the page's exclusive base layers:

- ``class``: share of the farmland area in class 2 or 3 (受污染耕地占比), in
  :data:`CLASS_EDGES` bins;
- ``rate``: the safe-utilisation rate of :mod:`farmland.rate` against the target: met,
  within :data:`NEAR_PP` percentage points below it, further below, or undefined (no
  class-2/3 land, or no measures ledger given);
- ``evidence``: share of the area classified from its own soil samples (rule
  ``points:…``) rather than interpolated, in :data:`EVIDENCE_EDGES` bins.

The bin of a unit travels as a short code (``_bin_<theme>``) that picks its fill from
the layer's style table on the client, like the class code of a parcel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farmland.maps.spec import LayerSpec

#: the themes, in the order of the layer control
THEMES = ("rate", "class", "evidence")
LEVELS = {"county": ("县", "Counties"), "township": ("乡镇", "Townships")}
THEME_NAMES = {"class": ("二三类占比", "class 2+3 share"),
               "rate": ("安全利用率", "safe-utilisation rate"),
               "evidence": ("自有样点定类占比", "classed from own samples")}

#: class-2/3 share bins (% of the unit's farmland area): upper edges
CLASS_EDGES = (5.0, 15.0, 30.0, 50.0)
CLASS_COLOURS = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")
#: own-sample share bins (% of the area): upper edges
EVIDENCE_EDGES = (5.0, 10.0, 20.0, 40.0)
EVIDENCE_COLOURS = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
#: a rate at most this many percentage points below the target is "near"
NEAR_PP = 5.0
RATE_COLOURS = {"met": "#1a9850", "near": "#fee08b", "low": "#d73027", "none": "#bdbdbd"}

_TIP_ROWS = (
    ("县 County", ("county_name",), "text"),
    ("乡镇 Township", ("township",), "text"),
    ("代码 Code", ("code",), "text"),
    ("图斑 Parcels", ("n_parcels",), "int"),
    ("面积 Area", ("area_mu",), "mu"),
    ("一/二/三类/未分类 Class 1/2/3/unclassified", ("share_1", "share_2", "share_3", "share_na"),
     "pct"),
    ("安全利用率 Safe-utilisation rate", ("rate_pct",), "pct"),
    ("目标 Target", ("target_pct",), "pct"),
    ("差距 Gap", ("gap_mu",), "mu"),
    ("计入面积有自有农产品样品 Counted area backed by own crop samples", ("crop_own_pct",), "pct"),
    ("自有样点定类面积 Area classed from own soil samples", ("own_pct",), "pct"),
    ("土壤样点 Soil samples", ("n_samples",), "int"),
    ("样点密度 Samples per 1 000 亩", ("density",), "p"),
    ("县图 County map", ("_href",), "link"),
)


def _bin_codes(edges: tuple[float, ...]) -> list[str]:
    return [f"b{i}" for i in range(len(edges) + 1)]


def _styles(theme: str) -> dict[str, dict[str, object]]:
    if theme == "rate":
        return {k: {"fillColor": c} for k, c in RATE_COLOURS.items()}
    edges, colours = ((CLASS_EDGES, CLASS_COLOURS) if theme == "class"
                      else (EVIDENCE_EDGES, EVIDENCE_COLOURS))
    out = {code: {"fillColor": c} for code, c in zip(_bin_codes(edges), colours, strict=True)}
    return {**out, "null": {"fillColor": RATE_COLOURS["none"]}}


def _spec(level: str, theme: str) -> LayerSpec:
    zh, en = LEVELS[level]
    tzh, ten = THEME_NAMES[theme]
    weight = 1.6 if level == "county" else 0.8
    return LayerSpec(f"{zh} · {tzh} {en} · {ten}",
                     {"color": "#333333", "weight": weight, "opacity": 0.9, "fillOpacity": 0.8},
                     _TIP_ROWS, by=f"_bin_{theme}", styles=_styles(theme), symbol="fill")


#: one layer per level and theme, keys ``<level>_<theme>``, and the county borders on top
OVERVIEW_SPECS: dict[str, LayerSpec] = {
    **{f"{level}_{theme}": _spec(level, theme) for level in LEVELS for theme in THEMES},
    "county_lines": LayerSpec(
        "县界 County borders", {"color": "#000000", "weight": 2.2, "opacity": 1.0, "fill": False},
        (_TIP_ROWS[0], _TIP_ROWS[2], _TIP_ROWS[-1]), symbol="line")}


def bins(values: pd.Series, edges: tuple[float, ...]) -> pd.Series:
    """Bin code (``b0`` … ``bN``) of each percentage; missing stays missing."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    codes = np.array(_bin_codes(edges), dtype=object)[np.searchsorted(edges, v, side="right")
                                                      .clip(0, len(edges))]
    return pd.Series(np.where(np.isnan(v), None, codes), index=values.index, dtype=object)


def rate_bins(rate_pct: pd.Series, target_pct: pd.Series) -> pd.Series:
    """``met`` (rate ≥ target), ``near`` (≤ :data:`NEAR_PP` points below), ``low``,
    ``none`` (undefined)."""
    r = pd.to_numeric(rate_pct, errors="coerce").to_numpy(dtype=float)
    t = pd.to_numeric(target_pct, errors="coerce").to_numpy(dtype=float)
    out = np.where(r >= t - 1e-9, "met", np.where(r >= t - NEAR_PP, "near", "low"))
    return pd.Series(np.where(np.isnan(r), "none", out), index=rate_pct.index, dtype=object)


def theme_columns(units: pd.DataFrame) -> pd.DataFrame:
    """``units`` with the bin column of every theme (``_bin_class`` …)."""
    out = units.copy()
    out["_bin_class"] = bins(out["share_2"].fillna(0) + out["share_3"].fillna(0), CLASS_EDGES)
    out["_bin_evidence"] = bins(out["own_pct"], EVIDENCE_EDGES)
    out["_bin_rate"] = rate_bins(out["rate_pct"], out["target_pct"])
    return out


def legend_rows(theme: str, target_pct: float) -> list[tuple[str, str]]:
    """``(colour, bilingual label)`` of each bin of ``theme``, for the legend."""
    if theme == "rate":
        t = f"{target_pct:.4g}"
        near = f"{target_pct - NEAR_PP:.4g}"
        return [(RATE_COLOURS["met"], f"达标 met: ≥ {t} %"),
                (RATE_COLOURS["near"], f"接近 near: {near}–{t} %"),
                (RATE_COLOURS["low"], f"偏低 low: < {near} %"),
                (RATE_COLOURS["none"], "无二三类或无措施台账 undefined / no ledger")]
    edges, colours = ((CLASS_EDGES, CLASS_COLOURS) if theme == "class"
                      else (EVIDENCE_EDGES, EVIDENCE_COLOURS))
    lows = (0.0, *edges)
    labels = [f"{lo:g}–{hi:g} %" for lo, hi in zip(lows, edges, strict=False)]
    labels.append(f"≥ {edges[-1]:g} %")
    return list(zip(colours, labels, strict=True))
