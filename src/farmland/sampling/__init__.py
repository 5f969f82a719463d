"""Where the data are thin: sparse-data flags, contiguous zones, and the sampling
planner with its field-team exports (domain.md §5)."""

from farmland.sampling.effect import plan_effect
from farmland.sampling.field_export import write_plan
from farmland.sampling.flags import FlagResult, flag_sparse
from farmland.sampling.planner import plan_sampling
from farmland.sampling.zones import strict_control_zones

__all__ = ["FlagResult", "flag_sparse", "plan_effect", "plan_sampling",
           "strict_control_zones", "write_plan"]
