"""Crop evidence behind the safe-use area C of the rate (domain.md §4).

C is class-2 land with a safe-use measure *that achieved compliant crop production*.
Whether it did is known for a parcel with its own crop samples that year; for the
rest of the treated land the reading used in practice (accounting mode ``official``)
is the compliance rate of that year's crop monitoring on treated class-2 land in the
parcel's township, or in the county when the township has fewer than
``min_samples`` such samples. Two other modes are kept for comparison:

=================  ================================================================
mode               a treated class-2 parcel without own crop samples counts …
=================  ================================================================
``official``       at the compliance rate of its township (or county)
``parcel_verified``  not at all: only parcels with compliant own samples count
``measures_only``  fully (the measure alone is taken as compliant production)
=================  ================================================================

In every mode a parcel with its own samples is judged by them (any exceedance: it does
not count). A strict-control parcel carrying an exceeding food-crop sample of the same
year is a contradiction: counted only in ``measures_only``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

__all__ = ["ACCOUNTING_MODES", "DEFAULT_MODE", "compliance_rates", "counted_mu"]

log = logging.getLogger(__name__)

ACCOUNTING_MODES = ("official", "parcel_verified", "measures_only")
DEFAULT_MODE = "official"
#: township crop samples below which the county compliance rate is used
MIN_TOWNSHIP_SAMPLES = 5


def compliance_rates(status: pd.DataFrame, crops: pd.DataFrame, *,
                     min_samples: int = MIN_TOWNSHIP_SAMPLES) -> tuple[pd.Series, pd.DataFrame]:
    """Compliance rate of crop monitoring on treated class-2 land, per parcel.

    Parameters
    ----------
    status
        Per-parcel frame with ``township`` and ``treated2`` (class 2 with a counting
        safe-use measure), positional (row i = parcel i).
    crops
        Crop samples of the year: ``pos`` (parcel row, -1 none) and ``exceeds``
        (boolean, <NA> = no usable result).
    min_samples
        Township samples needed to use the township's own rate.

    Returns
    -------
    rate, table
        ``rate``: per parcel the compliance rate that applies to it (NaN where no
        monitoring exists at all); ``table``: per township and the county, ``n_samples``,
        ``n_compliant``, ``compliance_rate`` and ``basis`` (``township`` / ``county`` /
        ``none``).
    """
    pos = crops["pos"].to_numpy()
    valid = (pos >= 0) & crops["exceeds"].notna().to_numpy(bool)
    on_treated = np.zeros(len(pos), dtype=bool)
    on_treated[valid] = status["treated2"].to_numpy(bool)[pos[valid]]
    sel = pos[on_treated]
    frame = pd.DataFrame({"township": status["township"].to_numpy()[sel],
                          "compliant": ~crops["exceeds"].to_numpy()[on_treated].astype(bool)})
    n_county, ok_county = len(frame), int(frame["compliant"].sum())
    county_rate = ok_county / n_county if n_county else np.nan
    towns = frame.groupby("township")["compliant"].agg(["size", "sum"])
    towns = towns.reindex(sorted(set(status["township"])), fill_value=0)
    own = towns["size"] >= max(int(min_samples), 1)
    rate_town = np.where(own, towns["sum"] / towns["size"].where(towns["size"] > 0), county_rate)
    table = pd.DataFrame({
        "name": towns.index, "n_samples": towns["size"].to_numpy(int),
        "n_compliant": towns["sum"].to_numpy(int), "compliance_rate": rate_town,
        "basis": np.where(own, "township", "county" if n_county else "none"),
    })
    table = pd.concat([table, pd.DataFrame([{
        "name": "county", "n_samples": n_county, "n_compliant": ok_county,
        "compliance_rate": county_rate, "basis": "county" if n_county else "none"}])],
        ignore_index=True)
    if not n_county:
        log.warning("no crop sample of the year on treated class-2 land: in the official "
                    "accounting, treated class-2 land without its own samples cannot count")
    per_parcel = status["township"].map(dict(zip(towns.index, rate_town, strict=True)))
    return pd.Series(per_parcel.to_numpy(float), index=status.index), table


def counted_mu(status: pd.DataFrame, mode: str) -> np.ndarray:
    """亩 each parcel contributes to the numerator in accounting ``mode``.

    ``status`` carries ``status``, ``area_mu`` and ``compliance_rate``.
    """
    area = status["area_mu"].fillna(0.0).to_numpy(float)
    st = status["status"].to_numpy(object)
    share = np.zeros(len(status))
    share[(st == "achieved_verified") | (st == "controlled")] = 1.0
    by_rate = st == "achieved_by_rate"
    if mode == "official":
        share[by_rate] = np.nan_to_num(status["compliance_rate"].to_numpy(float)[by_rate])
    elif mode == "measures_only":
        share[by_rate | (st == "unverified") | (st == "controlled_but_exceeding")] = 1.0
    return area * share
