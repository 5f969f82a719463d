"""Truth-known validation (issue 15): synthetic counties, baselines, area-weighted metrics,
the harness behind ``farmland validate`` and the realised effect of sampling plans
(``farmland validate --plans``)."""

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
    screen_scores,
    unclassified_share,
)
from farmland.validation.planner_effect import (
    PLAN_MODES,
    PLAN_SHARE,
    evaluate_plans,
    plan_target_check,
    planner_effect,
    summarise_plans,
)
from farmland.validation.scenarios import SCENARIOS, Scenario
from farmland.validation.synthetic import SyntheticCounty, make_county

__all__ = [
    "DEFAULT_SEEDS", "METRICS", "PLAN_MODES", "PLAN_SHARE", "SCENARIOS", "TARGETS",
    "CountyEvaluation", "Scenario", "SyntheticCounty", "agreement", "agreement_all",
    "calibration_gap", "class3_precision", "class3_recall", "class_metrics",
    "contaminated_called_clean", "evaluate_county", "evaluate_plans", "idw_classes",
    "make_county", "nearest_sample_classes", "plan_target_check", "planner_effect",
    "reliability_table", "scenario_names", "screen_scores", "summarise", "summarise_plans",
    "target_check", "unclassified_share", "validate",
]
