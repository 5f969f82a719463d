"""Strict-control land, closed loop (严格管控类耕地闭环管理, county plan 三.1; issue 18).

- :mod:`~farmland.control.stages`: the stages 告知 → 划定 → 种植巡查 → 收获/收储核查 →
  补偿/验收 and the loop statuses, bilingual;
- :mod:`~farmland.control.ledger`: the rules between the rows of a closed-loop ledger;
- :mod:`~farmland.control.loop`: status per class-3 parcel, contradictions, township
  coverage, carry-over from the previous run;
- :mod:`~farmland.control.changes`: loop status changes between two runs;
- :mod:`~farmland.control.products`: specific-product strict-control zones and the notice
  table; :mod:`~farmland.control.lots`: grain-lot screening;
  :mod:`~farmland.control.export`: KML of the zones.
"""

from farmland.control.changes import loop_changes, transition_counts
from farmland.control.export import write_zone_kml
from farmland.control.ledger import check_ledger, stage_results
from farmland.control.loop import CONTRADICTION_KINDS, LoopResult, closed_loop, parse_min_stages
from farmland.control.lots import lot_table, screen_lots
from farmland.control.products import ProductZones, product_zones
from farmland.control.stages import (
    DEFAULT_MIN_STAGES,
    LOOP_STATUSES,
    STAGE_LABELS,
    STAGES,
    STATUS_LABELS,
    loop_status_of,
)

__all__ = ["CONTRADICTION_KINDS", "DEFAULT_MIN_STAGES", "LOOP_STATUSES", "STAGES", "STAGE_LABELS",
           "STATUS_LABELS", "LoopResult", "ProductZones", "check_ledger", "closed_loop",
           "loop_changes", "loop_status_of", "lot_table", "parse_min_stages", "product_zones", "screen_lots",
           "stage_results", "transition_counts", "write_zone_kml"]
