"""Where the contamination comes from, on a farmland map (``farmland map --causes``,
issue 17).

Four layers of the ``sources.gpkg`` of ``farmland sources``
(:func:`farmland.runs.source_outputs.read_cause_layers`):

- ``clusters``: the contaminated-land clusters (contiguous class-2/3 land) filled by the
  type of their top-ranked candidate (:data:`farmland.vocabulary.CAUSE_TYPES`: enterprise
  near field, irrigation water, geogenic), grey "unexplained" when the best score is
  below :data:`UNEXPLAINED_BELOW` (the score under which ``farmland sources`` proposes no
  confirmation sample; :func:`farmland.runs.source_outputs.cause_keys`); the legend gives the 亩 per type. The tooltip carries the figures
  an investigation starts from: area by class, dominant elements, Cd Pᵢ, pH, the top
  candidate with its score, margin and evidence.
- ``candidate_links``: thin lines from a candidate to its cluster, rank 1 solid and ranks
  2–3 dashed, in the outline colour of the candidate's type. Lower ranks are not drawn,
  nor candidates scoring below :data:`MIN_LINK_SCORE` (on the demo county, 203 of the
  231 links of ranks 1–3 score below 0.2, most below 0.01: drawn, they hid the few
  credible ones; the cluster tooltip still names its top candidate and score).
- ``hotspots``: the samples whose Cd is a significant Gi* hot spot, as small rings.
- ``confirm``: the confirmation samples, one colour per mode
  (:data:`farmland.vocabulary.CONFIRM_MODES`).

Text reaches the page as JSON and becomes tooltip text through ``textContent``, like every
other layer (:mod:`farmland.maps.layers`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from farmland.maps.spec import LayerSpec
from farmland.runs.source_outputs import UNEXPLAINED_BELOW, cause_keys
from farmland.vocabulary import CAUSE_TYPES, CONFIRM_MODES, code_list_text

__all__ = ["CAUSES_TITLE", "CAUSE_SPECS", "HOT_ELEMENT", "MAX_LINK_RANK", "MIN_LINK_SCORE",
           "UNEXPLAINED_BELOW", "candidate_text", "cause_areas",
           "cause_columns", "cause_keys", "cause_rows", "elements_text", "factor_shares_text",
           "link_legend", "mode_counts", "shown_area"]

#: title of a map drawn with ``--causes``
CAUSES_TITLE = "污染成因排查 Where the cadmium comes from"
#: candidate ranks drawn as links: the first solid, the others dashed
MAX_LINK_RANK = 3
#: candidates scoring below this get no link (the score that names a cause)
MIN_LINK_SCORE = UNEXPLAINED_BELOW
#: the element whose Gi* hot spots are drawn
HOT_ELEMENT = "cd"
#: the route of a candidate id "E01~irrigation" → (Chinese, English)
ROUTE_WORDS = {"irrigation": ("经灌溉渠", "via irrigation")}
#: a candidate that is no enterprise (its id is its type) → (Chinese, English)
NON_ENTERPRISE = {"geogenic": ("地质高背景", "geogenic")}
_DASH = "5 4"

CLUSTERS_SPEC = LayerSpec(
    "污染聚集区 Contaminated-land clusters",
    {"weight": 1.5, "opacity": 0.9, "fillOpacity": 0.9},
    (("聚集区 Cluster", ("cluster_id",), "text"),
     ("乡镇 Township", ("_townships",), "text"),
     ("面积 Area", ("area_mu",), "mu"),
     ("安全利用类 / 严格管控类 Class 2 / class 3", ("area_class2_mu", "area_class3_mu"), "mu"),
     ("图斑 / 样点 Parcels / samples", ("n_parcels", "n_samples"), "int"),
     ("主要超标元素 Dominant elements", ("_dominant",), "text"),
     ("Cd Pᵢ 中位数 / P90 median / P90", ("pi_median_cd", "pi_p90_cd"), "p"),
     ("pH 中位数 Median pH", ("ph_median",), "p"),
     ("首位候选 Top candidate", ("_top",), "text"),
     ("类型 Type", ("_top_type",), "text"),
     ("得分 / 领先 Score / margin", ("top_score", "top_margin"), "p"),
     ("依据 Evidence", ("top_evidence",), "text"),
     ("因子贡献 Factor shares", ("_factors",), "text")),
    by="_cause",
    styles={k: {"fillColor": fill, "color": line} for k, (_, _, fill, line) in CAUSE_TYPES.items()},
    symbol="swatches",
    zoomed=((15, {"weight": 2.5}),))

LINKS_SPEC = LayerSpec(
    "候选来源连线 Candidate links",
    {"color": "#555555", "weight": 1.2, "opacity": 0.9},
    (("聚集区 → 候选 Cluster → candidate", ("_link",), "text"),
     ("名称 Name", ("name",), "text"),
     ("类型 Type", ("_type",), "text"),
     ("排序 Rank", ("rank",), "int"),
     ("得分 Score", ("score",), "p")),
    by="_style",
    styles={f"{k}:{r}": {"color": line, "weight": 1.8 if r == 1 else 1.2,
                         **({} if r == 1 else {"dashArray": _DASH})}
            for k, (_, _, _, line) in CAUSE_TYPES.items() for r in (1, 2)},
    symbol="line")

HOTSPOTS_SPEC = LayerSpec(
    "镉热点 Cd hot spots (Gi*)",
    {"radius": 3, "color": "#b2182b", "weight": 1.5, "fillColor": "#ffffff", "fillOpacity": 1.0},
    (("样点 Sample", ("sample_id",), "text"), ("元素 Element", ("_element",), "text"),
     ("含量 Value", ("value",), "mgkg"), ("Gi* z", ("gi_z",), "p"),
     ("q (FDR)", ("gi_q",), "q"), ("局部 Moran 象限 LISA quadrant", ("quadrant",), "text")),
    zoomed=((14, {"radius": 5, "weight": 2}),))

CONFIRM_SPEC = LayerSpec(
    "核实采样点 Confirmation samples",
    {"radius": 5, "color": "#ffffff", "weight": 1.5, "fillColor": "#444444", "fillOpacity": 1.0},
    (("点号 Point", ("point_id",), "text"), ("聚集区 Cluster", ("_clusters",), "text"),
     ("候选 Candidate", ("_candidate",), "text"), ("介质 Medium", ("medium",), "text"),
     ("原因 Reason", ("reason",), "text"),
     ("优先级 Priority", ("priority",), "int"), ("图斑 Parcel", ("parcel_id",), "text"),
     ("乡镇 Township", ("township",), "text")),
    by="mode", styles={k: {"fillColor": c} for k, (_, _, c) in CONFIRM_MODES.items()},
    symbol="dots",
    zoomed=((14, {"radius": 7}),))

#: the cause layers, keyed like the ``make_map`` arguments
CAUSE_SPECS: dict[str, LayerSpec] = {"clusters": CLUSTERS_SPEC, "candidate_links": LINKS_SPEC,
                                     "hotspots": HOTSPOTS_SPEC, "confirm": CONFIRM_SPEC}


def _blank(value: object) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or not str(
        value).strip()


def _text(gdf: pd.DataFrame, column: str) -> list[str | None]:
    """A column as stripped text, ``None`` where missing, blank or absent."""
    if column not in gdf:
        return [None] * len(gdf)
    return [None if _blank(v) else str(v).strip() for v in gdf[column]]


def _numbers(gdf: pd.DataFrame, column: str) -> np.ndarray:
    if column not in gdf:
        return np.full(len(gdf), np.nan)
    return pd.to_numeric(gdf[column], errors="coerce").to_numpy(dtype=float)


def _type_label(kind: str | None) -> str | None:
    if kind is None:
        return None
    zh, en, *_ = CAUSE_TYPES.get(kind, (kind, kind))
    return f"{zh} {en}"


def elements_text(text: str | None) -> str | None:
    """"cd,pb" → "Cd 镉, Pb 铅" (the report's spelling, :data:`farmland.vocabulary.
    LIST_LABELS`); an unknown code is shown as itself."""
    if text is None or not str(text).strip():
        return None
    return code_list_text("metals", str(text), "zh") or None



def candidate_text(candidate_id: str | None, kind: str | None = None) -> str | None:
    """A candidate id in words: "E01~irrigation" → "E01 经灌溉渠 via irrigation",
    "geogenic" → "地质高背景 geogenic", "E01" → "E01" (the enterprise's own id; with
    ``kind="enterprise"``: "E01 企业近场 near field"). Several ids ("E01,E02~irrigation",
    a confirmation point serving two clusters) are each put in words, joined by "; "."""
    if candidate_id is None:
        return None
    parts = []
    for cid in (c.strip() for c in str(candidate_id).split(",") if c.strip()):
        sid, _, route = cid.partition("~")
        if cid in NON_ENTERPRISE:
            parts.append(" ".join(NON_ENTERPRISE[cid]))
        elif route:
            parts.append(f"{sid} {' '.join(ROUTE_WORDS.get(route, (route, '')))}".strip())
        elif kind == "enterprise":
            parts.append(f"{sid} 企业近场 near field")
        else:
            parts.append(sid)
    return "; ".join(parts) or None


def factor_shares_text(names: list[str], shares, labels: list[str | None]) -> str | None:
    """"F1 Cu-Ni-Cr-Zn 2 % · F5 Cd 96 %": each factor's share of the cluster's Cd with its
    label (the elements that mark its profile) where known, in factor order."""
    return " · ".join(f"{n} {lab} {100 * v:.0f} %" if lab else f"{n} {100 * v:.0f} %"
                      for n, v, lab in zip(names, shares, labels, strict=True)
                      if np.isfinite(v)) or None


def _cluster_columns(gdf: pd.DataFrame, out: pd.DataFrame) -> None:
    keys = cause_keys(gdf)
    out["_cause"] = keys
    towns = [t if not o else f"{t} (+{o})" for t, o in zip(
        _text(gdf, "township"), _text(gdf, "other_townships"), strict=True)]
    out["_townships"] = towns
    out["_dominant"] = [elements_text(t) for t in _text(gdf, "dominant_elements")]
    tops = []
    for name, cid in zip(_text(gdf, "top_name"), _text(gdf, "top_candidate_id"), strict=True):
        shown = name or candidate_text(cid)
        sid = cid.split("~")[0] if cid else None
        if name and sid and sid not in name and cid not in CAUSE_TYPES:
            shown = f"{name} ({candidate_text(cid)})"
        tops.append(shown)
    out["_top"] = tops
    labels = []
    for kind, key in zip(_text(gdf, "top_candidate_type"), keys, strict=True):
        label = _type_label(kind)
        if key == "unexplained" and label is not None:
            label += f"（得分 < {UNEXPLAINED_BELOW:g}，未明 score below {UNEXPLAINED_BELOW:g}: " \
                     "unexplained）"
        labels.append(label)
    out["_top_type"] = labels
    shares = sorted(c for c in gdf.columns if re.fullmatch(r"factor_\w+_share", str(c)))
    if shares:
        values = np.column_stack([_numbers(gdf, c) for c in shares])
        # factor_F1_cd_share: F1's share of the cluster's Cd; its label in factor_F1_label
        # (written to sources.gpkg), else main_factor_label for the main factor
        names = [re.sub(r"_cd$", "", c[len("factor_"):-len("_share")]) for c in shares]
        main = _text(gdf, "main_factor")
        main_label = _text(gdf, "main_factor_label")
        own = {n: _text(gdf, f"factor_{n}_label") for n in names}
        out["_factors"] = [
            factor_shares_text(names, row, [own[n][i] or (main_label[i] if main[i] == n else None)
                                            for n in names])
            for i, row in enumerate(values)]


def cause_columns(key: str, gdf: pd.DataFrame, out: pd.DataFrame) -> None:
    """Add the shown columns of a cause layer that are derived from ``gdf``'s columns to
    ``out``: style keys, bilingual type and mode, element names, the link text."""
    if key == "clusters":
        _cluster_columns(gdf, out)
    elif key == "candidate_links":
        kinds = _text(gdf, "candidate_type")
        rank = _numbers(gdf, "rank")
        out["_style"] = [f"{k}:{1 if r == 1 else 2}" for k, r in zip(kinds, rank, strict=True)]
        out["_type"] = [_type_label(k) for k in kinds]
        out["_link"] = [f"{c} → {candidate_text(s)}" for c, s in zip(
            _text(gdf, "cluster_id"), _text(gdf, "candidate_id"), strict=True)]
    elif key == "hotspots":
        out["_element"] = [elements_text(e) for e in _text(gdf, "element")]
    elif key == "confirm":  # the medium names the mode in words; a row without one gets it
        out["_candidate"] = [candidate_text(c) for c in _text(gdf, "candidate_id")]
        out["_clusters"] = [None if c is None else ", ".join(
            x.strip() for x in c.split(",") if x.strip()) for c in _text(gdf, "cluster_id")]
        out["medium"] = [m or (None if k is None else " ".join(CONFIRM_MODES.get(k, (k, k))[:2]))
                         for m, k in zip(_text(gdf, "medium"), _text(gdf, "mode"), strict=True)]


def cause_rows(key: str, gdf: pd.DataFrame) -> pd.DataFrame:
    """The rows of a cause layer that are drawn: links of rank ≤ :data:`MAX_LINK_RANK` and
    score ≥ :data:`MIN_LINK_SCORE` (a link without a score is kept), the Cd Gi* hot spots;
    every row of the other layers (and of any other overlay)."""
    if key == "candidate_links":
        score = _numbers(gdf, "score")
        keep = (_numbers(gdf, "rank") <= MAX_LINK_RANK) & ~(score < MIN_LINK_SCORE)
        return gdf[keep]
    if key == "hotspots":
        element = pd.Series(_text(gdf, "element"), dtype=object).str.lower()
        hot = pd.Series(_text(gdf, "hotspot"), dtype=object).str.lower()
        return gdf[((element == HOT_ELEMENT) & (hot == "hot")).fillna(False).to_numpy(bool)]
    return gdf


def cause_areas(clusters: pd.DataFrame) -> list[tuple[str, str, str, str, int, float]]:
    """``(type, Chinese, English, fill colour, clusters, 亩)`` for each cause type in order
    (zero when absent). The area is ``_shown_mu`` (the part drawn on a township map) when
    present, else ``area_mu``."""
    column = "_shown_mu" if "_shown_mu" in clusters else "area_mu"
    area = np.nan_to_num(_numbers(clusters, column))
    keys = np.array(cause_keys(clusters), dtype=object)
    return [(k, zh, en, fill, int((keys == k).sum()), float(area[keys == k].sum()))
            for k, (zh, en, fill, _) in CAUSE_TYPES.items()]


def link_legend() -> list[tuple[str, str, str]]:
    """``(CSS border, Chinese, English)`` of the two kinds of link."""
    floor = f"{MIN_LINK_SCORE:g}"
    return [("2px solid #555555", f"首位候选（得分 ≥ {floor}）", f"rank 1 (score ≥ {floor})"),
            ("2px dashed #555555", f"第 2–{MAX_LINK_RANK} 位候选（得分 ≥ {floor}）",
             f"ranks 2–{MAX_LINK_RANK} (score ≥ {floor})")]


def mode_counts(confirm: pd.DataFrame) -> list[tuple[str, str, str, int]]:
    """``(colour, Chinese, English, points)`` for each confirmation mode present."""
    modes = pd.Series(_text(confirm, "mode"), dtype=object)
    return [(c, zh, en, int((modes == k).sum())) for k, (zh, en, c) in CONFIRM_MODES.items()
            if (modes == k).any()]


def shown_area(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Clusters cut to a township (``after``, same index as ``before``) with ``_shown_mu``:
    ``area_mu`` times the share of the geometry kept."""
    full = before.geometry.area.reindex(after.index).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(full > 0, after.geometry.area.to_numpy() / full, 1.0)
    return after.assign(_shown_mu=np.nan_to_num(_numbers(after, "area_mu")) * share)
