"""PNG charts for the reports (matplotlib, Agg, no pyplot state).

Every function draws one chart, writes it atomically to ``path`` (temporary file,
then rename; an existing file is replaced only with ``overwrite=True``) and returns
the path. Labels are bilingual (Chinese then English) with ``lang="zh"`` and English
with ``lang="en"``. Chinese needs a CJK font (:mod:`farmland.report.fonts`); without one
the charts use English labels, and names that cannot be drawn (Chinese township
names) become ``T01``, ``T02`` … in table order, logged — never tofu boxes.

Areas are in 亩 (mu), distances in metres, concentrations in mg/kg. Class colours
come from :data:`farmland.classes.PALETTE`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from farmland import classes as C
from farmland.errors import InputError
from farmland.io.write import atomic_write, final_path
from farmland.report.fonts import (
    CJKFont,
    chart_rc,
    find_cjk_font,
    quiet_weight_fallback,
    renderable,
)

log = logging.getLogger(__name__)

DPI = 100
#: class-area columns in stacking order with their class code (None = unclassified)
CLASS_COLUMNS = (("class1_mu", 1), ("class2_mu", 2), ("class3_mu", 3), ("unclassified_mu", None))
NA_TEXT = ("无污染耕地", "n/a")
#: PNG metadata: no software version, so the same chart gives the same bytes
PNG_METADATA = {"Software": None}
_THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")


@dataclass(frozen=True)
class Labels:
    """How text is written on one chart: bilingual when Chinese can be drawn."""

    font: CJKFont | None
    bilingual: bool

    def t(self, zh: str, en: str) -> str:
        """``"zh en"`` when bilingual, else ``en``."""
        return f"{zh} {en}" if self.bilingual else en

    def text(self, value: object) -> str:
        """``value`` as text with the characters no available font has removed (logged)."""
        text = str(value)
        if renderable(text, self.font):
            return text
        kept = "".join(ch for ch in text if renderable(ch, self.font))
        log.warning("chart text %r has characters no installed font can draw; shown as %r",
                    text, kept)
        return re.sub(r"\s+", " ", kept).strip()

    def names(self, values: Sequence[object]) -> list[str]:
        """Category names; names that cannot be drawn become ``T01``, ``T02`` … (logged)."""
        names = [str(v) for v in values]
        if all(renderable(n, self.font) for n in names):
            return names
        codes = [f"T{i + 1:02d}" for i in range(len(names))]
        log.warning("no CJK font: chart names shown as codes: %s",
                    ", ".join(f"{c}={n}" for c, n in zip(codes, names)))
        return codes


def chart_labels(lang: str) -> Labels:
    """Label settings for ``lang`` (``"zh"`` bilingual, ``"en"`` English)."""
    if lang not in ("zh", "en"):
        raise InputError("unknown report language", value=lang, fix="use 'zh' or 'en'")
    font = find_cjk_font()
    return Labels(font=font, bilingual=lang == "zh" and font is not None)


@contextmanager
def _chart(labels: Labels, width: float, height: float):
    """A fresh figure drawn with the chart fonts (rc settings scoped to the block)."""
    with matplotlib.rc_context(chart_rc(labels.font)), quiet_weight_fallback():
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        yield fig


def save_png(fig: Figure, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; refuse to replace without ``overwrite``."""
    with atomic_write(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA)
    log.info("wrote chart %s", final_path(path))
    return Path(path)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {', '.join(missing)}", column=missing[0],
                         value=list(frame.columns), fix="pass the table farmland computes")


# -- class area ---------------------------------------------------------------------------
def class_area_chart(class_table: pd.DataFrame, path: str | os.PathLike, *, lang: str = "zh",
                     overwrite: bool = False) -> Path:
    """Stacked horizontal bars of 亩 per class per township.

    Parameters
    ----------
    class_table
        :func:`farmland.classify.summary.class_area_table` output (``township``, ``class1_mu`` …
        ``unclassified_mu``, ``total_mu``); the last row (county total) is not drawn
        unless it is the only row.
    path
        PNG file to write.
    lang
        ``"zh"`` (bilingual labels) or ``"en"``.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    _require(class_table, ["township", *(c for c, _ in CLASS_COLUMNS)], "class area table")
    rows = class_table.iloc[:-1] if len(class_table) > 1 else class_table
    lab = chart_labels(lang)
    names = lab.names(rows["township"].tolist())
    y = np.arange(len(rows))
    with _chart(lab, 8.0, 1.9 + 0.34 * len(rows)) as fig:
        ax = fig.add_subplot()
        left = np.zeros(len(rows))
        for column, code in CLASS_COLUMNS:
            values = pd.to_numeric(rows[column], errors="coerce").fillna(0.0).to_numpy(float)
            if code is None and not values.any():
                continue
            ax.barh(y, values, left=left, color=C.colour(code), height=0.7,
                    label=lab.t(C.label_zh(code), C.label_en(code)))
            left += values
        for yi, total in zip(y, left):
            ax.annotate(f"{total:,.0f}", (total, yi), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=7.5)
        ax.set_yticks(y, names, fontsize=8.5)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(_THOUSANDS)
        ax.set_xlim(0, max(left.max(initial=0.0), 1.0) * 1.12)
        ax.set_xlabel(lab.t("面积（亩）", "Area (mu)"))
        ax.set_title(lab.t("各乡镇耕地土壤环境质量类别面积", "Farmland class area by township"))
        fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return save_png(fig, path, overwrite=overwrite)


# -- safe-utilisation rate -------------------------------------------------------------------
def rate_rows(rate_table: pd.DataFrame) -> pd.DataFrame:
    """Township rows of a rate table followed by the county row(s)."""
    _require(rate_table, ["name", "rate"], "rate table")
    if "level" not in rate_table.columns:
        return rate_table
    county = rate_table["level"].astype("str").eq("county")
    return pd.concat([rate_table.loc[~county], rate_table.loc[county]])


def rate_chart(rate_table: pd.DataFrame, path: str | os.PathLike, *,
               target: float | None = None, lang: str = "zh", overwrite: bool = False) -> Path:
    """Safe-utilisation rate per township (and the county, last) against the target line.

    Parameters
    ----------
    rate_table
        ``farmland.rate.accounting.safe_utilisation_rate(...).table`` (``level``, ``name``, ``rate``
        as a share 0..1, NaN = undefined, ``target``).
    target
        Target share; ``None`` takes the table's ``target`` column, else 0.91.
        Bars at or above it are green, below it red; undefined rates (no class-2/3
        land) are written "无污染耕地 n/a".

    Returns
    -------
    pathlib.Path
    """
    rows = rate_rows(rate_table)
    if target is None:
        target = float(rows["target"].iloc[0]) if "target" in rows and len(rows) else 0.91
    lab = chart_labels(lang)
    rate = pd.to_numeric(rows["rate"], errors="coerce").to_numpy(float) * 100
    y = np.arange(len(rows))
    met = rate >= 100 * target - 1e-9
    with _chart(lab, 8.0, 1.7 + 0.34 * len(rows)) as fig:
        ax = fig.add_subplot()
        ax.barh(y, np.nan_to_num(rate), height=0.7,
                color=np.where(met, C.colour(1), C.colour(3)))
        for yi, r in zip(y, rate):
            text = lab.t(*NA_TEXT) if np.isnan(r) else f"{r:.1f} %"
            ax.annotate(text, (0 if np.isnan(r) else r, yi), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=7.5,
                        color="#555555" if np.isnan(r) else "black",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6,
                              "alpha": 0.8})
        line = ax.axvline(100 * target, color="#333333", linestyle="--", linewidth=1.2,
                          label=lab.t(f"目标 {100 * target:.0f} %", f"target {100 * target:.0f} %"))
        ax.set_yticks(y, lab.names(rows["name"].tolist()), fontsize=8.5)
        county = (rows["level"].astype("str").eq("county").to_numpy(bool)
                  if "level" in rows.columns else np.zeros(len(rows), bool))
        for tick, is_county in zip(ax.get_yticklabels(), county):
            tick.set_fontweight("bold" if is_county else "normal")
        if county.any() and not county.all():
            ax.axhline(np.argmax(county) - 0.5, color="#bbbbbb", linewidth=0.8)
        ax.invert_yaxis()
        handles = [Patch(color=C.colour(1), label=lab.t("达标", "met")),
                   Patch(color=C.colour(3), label=lab.t("未达标", "not met")), line]
        ax.set_xlim(0, 112)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f} %"))
        ax.set_xlabel(lab.t("安全利用率", "Safe-utilisation rate"))
        ax.set_title(lab.t("各乡镇受污染耕地安全利用率", "Safe-utilisation rate by township"))
        fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8,
                   frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return save_png(fig, path, overwrite=overwrite)


# -- geostatistics ----------------------------------------------------------------------------
def variogram_chart(lags: Sequence[float], gamma: Sequence[float],
                    model: Callable[[np.ndarray], np.ndarray] | None, path: str | os.PathLike,
                    title: str, *, counts: Sequence[int] | None = None, lang: str = "zh",
                    nugget_fixed: bool = False, overwrite: bool = False) -> Path:
    """Empirical semivariances (points, sized by pair count) and the fitted model (line).

    Parameters
    ----------
    lags, gamma
        Mean pair distance per lag bin (metres) and semivariance (squared value units,
        e.g. of log mg/kg).
    model
        Callable ``γ(h)`` (e.g. :class:`farmland.geostats.variogram.VariogramModel`) or ``None``;
        an anisotropic model's lags are distances of its kriging space (said on the axis);
        a model of linear-trend residuals (``trend``) is said in the legend, and ``gamma``
        must then be the residuals' semivariances.
    title
        Chart title (e.g. ``"Cd 半变异函数 variogram"``).
    counts
        Pairs per bin (optional, sets the point size).
    nugget_fixed
        The model's nugget was fixed at the measurement error (``[interpolation] nugget =
        "measurement"``), not fitted: said in the legend.
    """
    lab = chart_labels(lang)
    lags = np.asarray(lags, dtype=float)
    gamma = np.asarray(gamma, dtype=float)
    if lags.shape != gamma.shape:
        raise InputError("lags and gamma differ in length", value=(len(lags), len(gamma)))
    sizes = 25.0 if counts is None else 10 + 60 * np.sqrt(np.asarray(counts, float)
                                                          / max(np.max(counts), 1))
    with _chart(lab, 6.4, 4.2) as fig:
        ax = fig.add_subplot()
        ax.scatter(lags, gamma, s=sizes, color="#2b6cb0", zorder=3,
                   label=lab.t("实验半方差", "empirical"))
        if model is not None:
            h = np.linspace(0, max(np.nanmax(lags, initial=0.0), 1.0) * 1.05, 200)
            describe = getattr(model, "describe", None)
            name = describe() if callable(describe) else lab.t("拟合模型", "fitted model")
            if getattr(model, "trend", "none") == "linear":   # the points are residuals too
                name = replace(model, trend="none").describe() + "\n" + lab.t(
                    "扣除线性趋势后的残差", "residuals of a linear trend")
            if nugget_fixed:
                name += "\n" + lab.t("块金值取测量误差（固定）", "nugget fixed at the measurement error")
            ax.plot(h, np.asarray(model(h), dtype=float), color="#c05621", label=name)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_formatter(_THOUSANDS)
        if getattr(model, "ratio", 1.0) != 1.0:   # lags of the model's kriging space
            ax.set_xlabel(lab.t("各向异性折算距离（米，按主轴计）",
                                "Anisotropy-scaled lag (m, major axis)"))
        else:
            ax.set_xlabel(lab.t("距离（米）", "Lag distance (m)"))
        ax.set_ylabel(lab.t("半方差 γ", "Semivariance γ"))
        ax.set_title(lab.text(title))
        ax.legend(fontsize=8)
        return save_png(fig, path, overwrite=overwrite)


def crossval_chart(observed: Sequence[float], predicted: Sequence[float],
                   path: str | os.PathLike, title: str, *, unit: str = "mg/kg",
                   lang: str = "zh", overwrite: bool = False) -> Path:
    """Cross-validation scatter, log-log, with the 1:1 line, n, ME and RMSE.

    Pairs with a non-positive or missing value cannot be drawn on log axes; they are
    left out of the plot (logged) but kept in ME and RMSE.
    """
    lab = chart_labels(lang)
    obs = np.asarray(observed, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    finite = np.isfinite(obs) & np.isfinite(pred)
    drawable = finite & (obs > 0) & (pred > 0)
    if (finite & ~drawable).any():
        log.info("cross-validation chart: %d pair(s) <= 0 not drawn on log axes",
                 int((finite & ~drawable).sum()))
    err = pred[finite] - obs[finite]
    me, rmse = (float(err.mean()), float(np.sqrt((err**2).mean()))) if err.size else (np.nan,) * 2
    with _chart(lab, 5.2, 5.0) as fig:
        ax = fig.add_subplot()
        ax.scatter(obs[drawable], pred[drawable], s=14, alpha=0.7, color="#2b6cb0")
        both = np.concatenate([obs[drawable], pred[drawable]])
        lo, hi = (both.min() / 1.25, both.max() * 1.25) if both.size else (0.01, 1.0)
        ax.plot([lo, hi], [lo, hi], color="#444444", linestyle="--", linewidth=1, label="1:1")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
        ax.set_xlabel(lab.t(f"实测值（{unit}）", f"Observed ({unit})"))
        ax.set_ylabel(lab.t(f"预测值（{unit}）", f"Predicted ({unit})"))
        ax.set_title(lab.text(title))
        ax.text(0.03, 0.97, f"n = {int(finite.sum())}\nME = {me:.3g}\nRMSE = {rmse:.3g}",
                transform=ax.transAxes, va="top", fontsize=8)
        ax.legend(loc="lower right", fontsize=8)
        return save_png(fig, path, overwrite=overwrite)


# -- sampling coverage ----------------------------------------------------------------------------
def coverage_from_effect(effect: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Before/after mean distance (m) to the nearest sample per township from a plan-effect table.

    ``effect`` has ``township``, ``mean_dist_before_m``, ``mean_dist_after_m``.
    """
    _require(effect, ["township", "mean_dist_before_m", "mean_dist_after_m"], "plan effect table")
    idx = effect["township"].astype("str")
    return (pd.Series(effect["mean_dist_before_m"].to_numpy(float), index=idx),
            pd.Series(effect["mean_dist_after_m"].to_numpy(float), index=idx))


def coverage_chart(before: pd.Series, after: pd.Series, path: str | os.PathLike, *,
                   lang: str = "zh", overwrite: bool = False) -> Path:
    """Mean distance from farmland to the nearest soil sample per township, before/after a plan.

    Parameters
    ----------
    before, after
        Metres, indexed by township (see :func:`coverage_from_effect`); ``after`` is
        aligned to ``before``'s order.
    """
    after = after.reindex(before.index)
    lab = chart_labels(lang)
    y = np.arange(len(before))
    with _chart(lab, 8.0, 1.9 + 0.42 * len(before)) as fig:
        ax = fig.add_subplot()
        ax.barh(y - 0.2, before.to_numpy(float), height=0.4, color="#9e9e9e",
                label=lab.t("加密前", "before"))
        ax.barh(y + 0.2, after.to_numpy(float), height=0.4, color="#2b6cb0",
                label=lab.t("加密后", "after"))
        ax.set_yticks(y, lab.names([str(i) for i in before.index]), fontsize=8.5)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(_THOUSANDS)
        ax.set_xlabel(lab.t("耕地到最近土壤点位的平均距离（米）",
                            "Mean distance from farmland to the nearest sample (m)"))
        ax.set_title(lab.t("加密采样前后的点位覆盖", "Sample coverage before and after the plan"))
        ax.legend(fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        return save_png(fig, path, overwrite=overwrite)
