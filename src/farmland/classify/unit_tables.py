"""Per-unit tables of the point rule built with NumPy instead of a Python call per group.

At a million parcels the point rule groups 100 000 samples into about 90 000 units;
pandas' ``crosstab`` and ``groupby(...).agg(",".join)`` cost seconds there. These give
the same tables: the units sorted, as ``groupby`` sorts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["class_counts", "joined_per_unit"]


def class_counts(unit: pd.Series, point_class: pd.Series) -> pd.DataFrame:
    """Samples per unit (rows, sorted) and class (columns 1, 2, 3): the table of
    ``pd.crosstab(unit, point_class).reindex(columns=[1, 2, 3], fill_value=0)``.

    Samples without a unit are left out, those of another class listed with their unit
    but not counted."""
    codes, units = pd.factorize(unit, sort=True)
    cls = point_class.to_numpy(dtype=np.int64)
    ok = (codes >= 0) & (cls >= 1) & (cls <= 3)
    counts = np.bincount(codes[ok] * 3 + (cls[ok] - 1), minlength=3 * len(units))
    return pd.DataFrame(counts.reshape(len(units), 3), index=pd.Index(units, name=unit.name),
                        columns=pd.Index([1, 2, 3], name=point_class.name))


def joined_per_unit(unit: pd.Series, text: pd.Series, sep: str = ",") -> pd.Series:
    """``text`` joined by ``sep`` per unit, in the order of the rows: the Series of
    ``text.groupby(unit).agg(sep.join)`` (index: the units sorted; rows without a unit
    left out)."""
    codes, units = pd.factorize(unit, sort=True)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    grouped = codes[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]][:len(order)])
    ends = np.r_[starts[1:], len(order)][:len(starts)]
    values = text.to_numpy(dtype=object)[order].tolist()
    joined = [sep.join(values[s:e]) for s, e in zip(starts, ends, strict=True)]
    return pd.Series(joined, index=pd.Index(units[grouped[starts]], name=unit.name),
                     name=text.name, dtype=object)
