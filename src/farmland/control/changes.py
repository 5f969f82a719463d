"""Closed-loop status changes between two runs (``farmland diff``, issue 18 item 5).

Both sides are ``control_parcels.csv`` tables (``parcel_id, township, loop_status``,
class-3 parcels only). A parcel class 3 in one run only is ``entered`` (class 3 in B
only) or ``released`` (in A only); otherwise the change is ``advanced``, ``same`` or
``back`` by the order none → notified → inspected → harvest_checked → closed. Across
years "back" is the normal start of a new year's loop; within one year it means a stage
was withdrawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farmland.control.stages import STATUS_LABELS

__all__ = ["LOOP_CHANGE_COLUMNS", "loop_changes", "transition_counts"]

LOOP_CHANGE_COLUMNS = ["parcel_id", "township", "status_a", "status_b", "change"]
_RANK = {s: i for i, s in enumerate(STATUS_LABELS)}


def loop_changes(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per parcel class 3 in either run, sorted by parcel id."""
    left = a[["parcel_id", "township", "loop_status"]].astype({"parcel_id": str})
    right = b[["parcel_id", "township", "loop_status"]].astype({"parcel_id": str})
    m = left.merge(right, on="parcel_id", how="outer", suffixes=("_a", "_b"))
    m["township"] = m["township_b"].where(m["township_b"].notna(), m["township_a"])
    ra = m["loop_status_a"].map(_RANK)
    rb = m["loop_status_b"].map(_RANK)
    change = np.select([ra.isna(), rb.isna(), rb > ra, rb == ra],
                       ["entered", "released", "advanced", "same"], default="back")
    out = pd.DataFrame({"parcel_id": m["parcel_id"], "township": m["township"],
                        "status_a": m["loop_status_a"].fillna(""),
                        "status_b": m["loop_status_b"].fillna(""), "change": change})
    return out.sort_values("parcel_id", kind="stable").reset_index(drop=True)[LOOP_CHANGE_COLUMNS]


def transition_counts(changes: pd.DataFrame) -> pd.DataFrame:
    """Parcels per (status_a, status_b), largest first."""
    if changes.empty:
        return pd.DataFrame(columns=["status_a", "status_b", "n_parcels"])
    counts = (changes.assign(status_a=changes["status_a"].replace("", "—"),
                             status_b=changes["status_b"].replace("", "—"))
              .groupby(["status_a", "status_b"]).size().rename("n_parcels").reset_index())
    return counts.sort_values(["n_parcels", "status_a", "status_b"],
                              ascending=[False, True, True], kind="stable").reset_index(drop=True)
