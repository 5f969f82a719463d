"""farmland: classify farmland by soil contamination, track the safe-utilisation rate,
and plan re-sampling (GB 15618-2018, GB 2762).

The public API for notebooks and scripts is this module::

    import farmland as fl

    parcels = fl.read_parcels("DLTB.gpkg")          # or a GeoDataFrame you built
    samples = fl.read_soil_samples("soil.xlsx")     # or a (Geo)DataFrame
    classes = fl.classify_parcels(parcels, samples)
    fl.class_area_table(classes)

Names are imported lazily (on first attribute access), so ``farmland --help`` stays
fast. :data:`__all__` lists them; ``docs/api.md`` documents each.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = metadata.version("farmland")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

#: public name -> module that defines it
_API: dict[str, str] = {
    # readers (path or in-memory frame)
    "read_parcels": "farmland.io.readers",
    "read_soil_samples": "farmland.io.readers",
    "read_crop_samples": "farmland.io.readers",
    "read_measures": "farmland.io.readers",
    "read_sources": "farmland.io.readers",
    "read_townships": "farmland.io.readers",
    "read_mapping": "farmland.io.readers",
    "read_rivers": "farmland.io.source_layers",
    "read_outfalls": "farmland.io.source_layers",
    "read_geology": "farmland.io.source_layers",
    "read_wind_rose": "farmland.io.source_layers",
    # standards and rules
    "load_standard": "farmland.standards",
    "load_rules": "farmland.rules",
    # classification
    "classify_samples": "farmland.classify.samples",
    "classify_parcels": "farmland.classify.parcels",
    "class_area_table": "farmland.classify.summary",
    "screen_outliers": "farmland.classify.outliers",
    # rate
    "safe_utilisation_rate": "farmland.rate.accounting",
    "close_gap": "farmland.rate.gap",
    "apply_gap_plan": "farmland.rate.gap",
    # sampling
    "flag_sparse": "farmland.sampling.flags",
    "strict_control_zones": "farmland.sampling.zones",
    "plan_sampling": "farmland.sampling.planner",
    "plan_effect": "farmland.sampling.effect",
    "main_variogram": "farmland.sampling.expected",
    "write_plan": "farmland.sampling.field_export",
    # sources
    "contaminated_clusters": "farmland.sources.clusters",
    "EvidenceLayers": "farmland.sources.candidates",
    "rank_candidates": "farmland.sources.candidates",
    "confirmation_samples": "farmland.sources.confirm",
    "local_hotspots": "farmland.sources.hotspots",
    "PMF": "farmland.sources.pmf",
    "APCS": "farmland.sources.apcs",
    "analyse_sources": "farmland.sources.analysis",
    "write_sources": "farmland.runs.source_writer",
    # runs
    "ClassificationInputs": "farmland.runs.pipeline",
    "classify_run": "farmland.runs.pipeline",
    "write_classification": "farmland.runs.pipeline",
    "Workspace": "farmland.runs.workspace",
    "diff_runs": "farmland.runs.diff",
    "load_classification": "farmland.runs.folder",
    # maps and reports
    "make_map": "farmland.maps.page",
    "save_map": "farmland.maps.page",
    "write_excel_report": "farmland.report.excel",
    "write_html_report": "farmland.report.html",
    "class_area_chart": "farmland.report.charts",
    "rate_chart": "farmland.report.charts",
    "coverage_chart": "farmland.report.charts",
    "coverage_from_effect": "farmland.report.charts",
    # errors
    "FarmlandError": "farmland.errors",
    "InputError": "farmland.errors",
    "CRSError": "farmland.errors",
    "StandardError": "farmland.errors",
    "OutputExistsError": "farmland.errors",
    "OutputError": "farmland.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'farmland' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from farmland.classify.outliers import screen_outliers
    from farmland.classify.parcels import classify_parcels
    from farmland.classify.samples import classify_samples
    from farmland.classify.summary import class_area_table
    from farmland.errors import (
        CRSError,
        FarmlandError,
        InputError,
        OutputError,
        OutputExistsError,
        StandardError,
    )
    from farmland.io.readers import (
        read_crop_samples,
        read_mapping,
        read_measures,
        read_parcels,
        read_soil_samples,
        read_sources,
        read_townships,
    )
    from farmland.maps.page import make_map, save_map
    from farmland.rate.accounting import safe_utilisation_rate
    from farmland.rate.gap import apply_gap_plan, close_gap
    from farmland.report.charts import (
        class_area_chart,
        coverage_chart,
        coverage_from_effect,
        rate_chart,
    )
    from farmland.report.excel import write_excel_report
    from farmland.report.html import write_html_report
    from farmland.rules import load_rules
    from farmland.runs.diff import diff_runs
    from farmland.runs.folder import load_classification
    from farmland.runs.pipeline import ClassificationInputs, classify_run, write_classification
    from farmland.runs.workspace import Workspace
    from farmland.sampling.effect import plan_effect
    from farmland.sampling.expected import main_variogram
    from farmland.sampling.field_export import write_plan
    from farmland.sampling.flags import flag_sparse
    from farmland.sampling.planner import plan_sampling
    from farmland.sampling.zones import strict_control_zones
    from farmland.standards import load_standard
