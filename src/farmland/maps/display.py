"""Display text and numbers of map tooltips: lab precision, plan reasons, change flows.

- **Lab precision.** A concentration or pH is shown with the number of decimals the lab
  reported for that element: the fewest decimals (at most :data:`MAX_LAB_DECIMALS`)
  that write every value of the column exactly, so ``151.7`` and ``36.9`` give one
  decimal for Pb and ``0.167``, ``0.010`` three for Cd (the trailing zero comes back).
  A column that is not lab-rounded (unit conversions, averages) falls back to
  :data:`FALLBACK_SIGNIFICANT` significant digits per value (concentrations) or to the
  format's fixed decimals (pH: 2).
- **Plan reasons.** The planner writes the uncertainty-mode reason as
  ``"<basis>（变化概率低）: p(change)=0.07 / <basis en> (low chance …), p(change)=0.07"``
  with the category of the number (:func:`farmland.vocabulary.p_change_level`). The map
  shows the basis name and the number with the same category.
- **Change flows** of ``farmland diff``: a flow text (``"1→2"``, ``"2->unclassified"``)
  or the class pair, reduced to one of the keys of :data:`FLOWS`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from farmland.runs import diff as run_diff
from farmland.sampling.modes import UNCERTAINTY_REASONS
from farmland.vocabulary import (
    FLOWS,
    LIST_LABELS,
    PLAN_MODE_LABELS,
    code_list_text,
    p_change_level,
    rule_text,
)

#: decimals tried when inferring a lab's reporting precision
MAX_LAB_DECIMALS = 4
#: significant digits of a concentration column that is not lab-rounded
FALLBACK_SIGNIFICANT = 3

#: basis of a planned point's p(change): the planner's own bilingual names
PLAN_BASIS_LABELS: dict[str, tuple[str, str]] = UNCERTAINTY_REASONS
#: planning modes (farmland.sampling.modes.MODES) → bilingual text
MODE_LABELS = {k: f"{zh} {en}" for k, (zh, en) in PLAN_MODE_LABELS.items()}

_P_CHANGE = re.compile(r"p\(change\)\s*=\s*([0-9]*\.?[0-9]+)")
_BASIS_BY_ZH = {zh: key for key, (zh, _) in UNCERTAINTY_REASONS.items()}
#: basis names of plans written before the planner named the p_class basis neutrally
_OLD_BASIS = {"不确定性高": UNCERTAINTY_REASONS["p_class"][0]}


# Coded columns -----------------------------------------------------------------------
def coded(column: str, values: pd.Series) -> pd.Series:
    """``values`` of a coded column (elements "cd,pb", crops, sparse-data flags; the
    report's words, :data:`farmland.vocabulary.LIST_LABELS`) in the report's bilingual words,
    e.g. "Cd 镉, Pb 铅", "稻谷 rice"; any other column as it is."""
    if column not in LIST_LABELS or column == "qa_flags":   # qa_flags: the parcels' _qa_flags
        return values
    codes, distinct = pd.factorize(values.to_numpy(dtype=object))   # once per distinct value
    words = np.array([code_list_text(column, v, "zh") if isinstance(v, str) and v.strip()
                      else None for v in distinct] + [None], dtype=object)
    return pd.Series(words[codes], index=values.index, dtype=object)   # code -1 → None


#: metals shown in the sample popups (:data:`farmland.maps.layers.LAYER_SPECS`)
POPUP_METALS = ("cd", "hg", "as", "pb", "cr")


def not_detected(gdf: pd.DataFrame) -> pd.Series | None:
    """Per sample the metals reported as not detected without a value ("Hg 汞"), so a popup
    says ND where the value row is empty, instead of reading as "not measured"; ``None``
    when the layer records no censored value."""
    found = [el for el in POPUP_METALS if f"{el}_censored" in gdf and el in gdf]
    if not found:
        return None
    codes = np.full(len(gdf), "", dtype=object)
    for el in found:   # "hg," per metal not detected, then the last comma dropped
        nd = (gdf[f"{el}_censored"].astype("boolean").fillna(False).to_numpy(bool)
              & gdf[el].isna().to_numpy())
        codes[nd] = codes[nd] + f"{el},"
    text = pd.Series(codes, index=gdf.index).str.rstrip(",")
    return coded("driving_elements", text.where(text != "", None))


# Lab precision -----------------------------------------------------------------------
def lab_decimals(values: pd.Series) -> int | None:
    """Fewest decimals (≤ :data:`MAX_LAB_DECIMALS`) writing every finite value exactly;
    ``None`` when the values carry more digits (not lab-rounded); 0 for no values."""
    v = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    v = v[np.isfinite(v)]
    if not len(v):
        return 0
    tol = 1e-9 * np.maximum(1.0, np.abs(v))
    for d in range(MAX_LAB_DECIMALS + 1):
        if np.all(np.abs(np.round(v, d) - v) <= tol):
            return d
    return None


def round_significant(values: pd.Series, digits: int = FALLBACK_SIGNIFICANT) -> pd.Series:
    """Each value rounded to ``digits`` significant digits (missing stays missing)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    mag = np.floor(np.log10(np.abs(v.where(v != 0))))
    scale = 10.0 ** (digits - 1 - mag.fillna(0))
    return (np.round(v * scale) / scale).where(v != 0, v)


# Plan reasons ------------------------------------------------------------------------
def plan_reason(reason: object) -> tuple[str | None, str | None]:
    """(reason text, p(change) text) of a planned point for the tooltip.

    An uncertainty-mode reason becomes its basis under a neutral bilingual name, and
    the p(change) text "0.07 · 低 low"; any other reason is shown as written."""
    if not isinstance(reason, str) or not reason.strip():
        return None, None
    hit = _P_CHANGE.search(reason)
    if hit is None:
        return reason, None
    p = float(hit.group(1))
    zh, en = p_change_level(p)
    head = reason.split(":")[0].split("：")[0].split("（")[0].strip()
    basis = _BASIS_BY_ZH.get(head) or _BASIS_BY_ZH.get(_OLD_BASIS.get(head, ""))
    text = " ".join(PLAN_BASIS_LABELS[basis]) if basis in PLAN_BASIS_LABELS else reason
    return text, f"{hit.group(1)} · {zh} {en}"


# Change flows ------------------------------------------------------------------------
def flow_text(flow: object, key: str) -> str:
    """Tooltip text of a flow: the flow as written and its bilingual meaning."""
    zh, en, _ = FLOWS[key]
    shown = flow.strip() if isinstance(flow, str) and flow.strip() else key
    return f"{shown}（{zh} {en}）"


def cause_text(cause: object) -> object:
    """A change's cause code (``new_samples`` …) in the bilingual words of
    ``farmland.runs.diff.CAUSE_LABELS``; a rule code through the rule vocabulary; any
    other text as written."""
    if not isinstance(cause, str) or not cause.strip():
        return None
    labels = getattr(run_diff, "CAUSE_LABELS", {})
    if cause in labels:
        return labels[cause]
    if re.fullmatch(r"[a-z_]+:[a-z_0-9>\-]+(;[a-z_]+:[a-z_0-9>\-]+)*", cause):
        return rule_text(cause)
    return cause
