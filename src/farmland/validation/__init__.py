"""Truth-known validation (issue 15): synthetic counties, baselines, area-weighted metrics
and the harness behind ``farmland validate``."""

from farmland.validation.baselines import idw_classes, nearest_sample_classes
from farmland.validation.harness import (
    DEFAULT_SEEDS,
    METRICS,
    TARGETS,
    CountyEvaluation,
    evaluate_county,
    scenario_names,
    summarise,
    target_check,
    validate,
)
from farmland.validation.metrics import (
    agreement,
    agreement_all,
    calibration_gap,
    class3_precision,
    class3_recall,
    class_metrics,
    contaminated_called_clean,
    reliability_table,
    unclassified_share,
)
from farmland.validation.scenarios import SCENARIOS, Scenario
from farmland.validation.synthetic import SyntheticCounty, make_county

__all__ = [
    "DEFAULT_SEEDS", "METRICS", "SCENARIOS", "TARGETS", "CountyEvaluation", "Scenario",
    "SyntheticCounty", "agreement", "agreement_all", "calibration_gap", "class3_precision",
    "class3_recall", "class_metrics", "contaminated_called_clean", "evaluate_county",
    "idw_classes", "make_county", "nearest_sample_classes", "reliability_table",
    "scenario_names", "summarise", "target_check", "unclassified_share", "validate",
]
