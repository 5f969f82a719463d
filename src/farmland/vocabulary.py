"""Labels shared by every table, chart, map and message: the county row and a missing
township. One spelling each, bilingual, so "全县" and "全县 County" cannot drift apart."""

from __future__ import annotations

import pandas as pd

__all__ = ["COUNTY", "UNKNOWN_TOWNSHIP", "townships_of"]

#: name of the county total row in every per-township table
COUNTY = "全县 County"
#: township of a parcel or sample that has none
UNKNOWN_TOWNSHIP = "未知乡镇 unknown"


def townships_of(parcels: pd.DataFrame) -> pd.Series:
    """The parcels' ``township`` as text, :data:`UNKNOWN_TOWNSHIP` where missing or blank."""
    if "township" not in parcels:
        return pd.Series(UNKNOWN_TOWNSHIP, index=parcels.index, dtype=object)
    t = parcels["township"].astype(object)
    return t.where(t.notna() & (t.astype(str).str.strip() != ""), UNKNOWN_TOWNSHIP).astype(str)
