"""Numbers as written to the CSV files of ``farmland rate`` and ``farmland control``.

A sum of areas carries float noise (1.1 + 2.2 = 3.3000000000000003), which a CSV shows
as ``2651.1910000000003``. The tables keep their full values (every rate, gap and decision
is computed from them); :func:`csv_ready` writes each float at :data:`SIGNIFICANT`
significant digits, which drops the noise (it sits in the 16th-17th digit, and numpy's
pairwise sums of a province's parcels keep it there) and nothing a county could measure
(12 digits of a province's 10⁸ 亩 are 0.0001 亩): the per-parcel table still sums to the
rate's numerators to 1e-6 亩. It is not a rounding to display precision: the report
rounds the values it reads from these files once, as it would the full ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SIGNIFICANT", "csv_ready", "significant"]

#: significant digits of a float written to a CSV (float64 holds 15-17)
SIGNIFICANT = 12


def significant(values, digits: int = SIGNIFICANT) -> np.ndarray:
    """``values`` at ``digits`` significant digits (NaN, infinities and 0 as they are):
    the float nearest the decimal ``f"{v:.{digits}g}"``."""
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.where(finite, np.floor(np.log10(np.abs(x))), 0.0)
    shift = (digits - 1 - exponent).astype(int)
    out = x.copy()
    # x·10^k rounded, then divided by the exact power of ten: the nearest float to the
    # decimal (10^k is exact up to k = 22; smaller values keep their last bits)
    ok = finite & (shift <= 22) & (shift >= -22)
    pos, neg = ok & (shift >= 0), ok & (shift < 0)
    out[pos] = np.round(x[pos] * 10.0 ** shift[pos]) / 10.0 ** shift[pos]
    out[neg] = np.round(x[neg] / 10.0 ** -shift[neg]) * 10.0 ** -shift[neg]
    return out


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose float columns are at :data:`SIGNIFICANT` significant
    digits, for a CSV writer; ``frame`` itself is not changed."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = significant(out[column].to_numpy(dtype=float, na_value=np.nan))
    return out
