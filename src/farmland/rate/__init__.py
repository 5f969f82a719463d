"""The safe-utilisation rate (安全利用率) and what closes the gap to its target."""

from farmland.rate.accounting import RateResult, safe_utilisation_rate
from farmland.rate.gap import apply_gap_plan, close_gap

__all__ = ["RateResult", "apply_gap_plan", "close_gap", "safe_utilisation_rate"]
