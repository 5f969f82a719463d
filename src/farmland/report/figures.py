"""The report's charts: which can be drawn from the tables, and where they go."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from farmland.geostats.quality import sample_arrays
from farmland.geostats.trend import residuals
from farmland.geostats.variogram import VariogramModel, empirical_variogram
from farmland.report import charts
from farmland.report.excel import bilingual
from farmland.standards import CLASS_ELEMENTS

__all__ = ["CHART_FILES", "draw_charts"]

GEOSTAT_ELEMENTS = CLASS_ELEMENTS
CHART_FILES = {"class_area": "class_area.png", "rate": "rate.png", "coverage": "coverage.png",
               **{f"variogram_{el}": f"variogram_{el}.png" for el in GEOSTAT_ELEMENTS},
               **{f"crossval_{el}": f"crossval_{el}.png" for el in GEOSTAT_ELEMENTS}}
CAPTIONS = {"class_area": ("各乡镇类别面积", "Class area by township"),
            "rate": ("各乡镇安全利用率", "Safe-utilisation rate by township"),
            "coverage": ("加密采样前后的点位覆盖", "Sample coverage before and after the plan"),
            **{f"variogram_{el}": (f"{el.capitalize()} 变异函数（对数值）",
                                   f"{el.capitalize()} variogram (log values)")
               for el in GEOSTAT_ELEMENTS},
            **{f"crossval_{el}": (f"{el.capitalize()} 交叉验证", f"{el.capitalize()} cross-validation")
               for el in GEOSTAT_ELEMENTS}}



def draw_charts(tables: dict[str, object], folder: Path, lang: str) -> dict[str, Path]:
    """The report charts that the tables allow, as ``{caption: path}``."""
    drawn = {"class_area": charts.class_area_chart(tables["class_table"],
                                                   folder / CHART_FILES["class_area"], lang=lang)}
    if tables["rate_table"] is not None:
        drawn["rate"] = charts.rate_chart(tables["rate_table"], folder / CHART_FILES["rate"],
                                          lang=lang)
    if tables["plan_effect"] is not None:
        before, after = charts.coverage_from_effect(tables["plan_effect"])
        drawn["coverage"] = charts.coverage_chart(before, after, folder / CHART_FILES["coverage"],
                                                  lang=lang)
    drawn.update(_geostat_charts(tables, folder, lang))
    return {bilingual(*CAPTIONS[key], lang): path for key, path in drawn.items()}


def _geostat_charts(tables: dict[str, object], folder: Path, lang: str) -> dict[str, Path]:
    """Per metal: the empirical variogram of log-values with the model the run fitted, and
    the leave-one-out cross-validation scatter (from crossval_samples.csv)."""
    drawn: dict[str, Path] = {}
    samples, models, cv = tables["samples"], tables["models"], tables["crossval_samples"]
    for el in GEOSTAT_ELEMENTS:
        if samples is not None and "usable" in samples and el in samples:
            xy, values, _ = sample_arrays(samples, el)
            info = models.get(el) or {}
            if len(values) >= 30:
                model = VariogramModel.from_summary(info) if info.get("model") else None
                # distances where the model is read: the kriging space of its anisotropy
                space = xy if model is None else model.kriging_space(xy)
                # the model of residuals from a trend is drawn over those residuals
                emp = empirical_variogram(space, residuals(
                    space, np.log(values), "none" if model is None else model.trend), seed=0)
                key = f"variogram_{el}"
                drawn[key] = charts.variogram_chart(
                    emp.lags, emp.gamma, model, folder / CHART_FILES[key],
                    bilingual(*CAPTIONS[key], lang), counts=emp.counts, lang=lang,
                    nugget_fixed=bool(tables.get("nugget_fixed")))
        if cv is not None and (cv["variable"] == el).any():
            rows = cv[cv["variable"] == el]
            key = f"crossval_{el}"
            drawn[key] = charts.crossval_chart(rows["observed"], rows["predicted"],
                                               folder / CHART_FILES[key],
                                               bilingual(*CAPTIONS[key], lang), lang=lang)
    return drawn
