"""Class area tables (亩 and hm²) per township and for the county."""

from __future__ import annotations

import pandas as pd

from farmland.vocabulary import COUNTY

CLASS_KEYS = {1: "class1", 2: "class2", 3: "class3", 0: "unclassified"}


def class_area_table(parcels: pd.DataFrame, *, county_name: str = COUNTY,
                     decimals: int | None = 2) -> pd.DataFrame:
    """Area per final class per township, in 亩 and hm², with a county total row.

    Parameters
    ----------
    parcels
        Classified parcels (``township``, ``final_class``, ``area_mu``).
    county_name
        Label of the total row.
    decimals
        Rounding of the areas and shares (as written to ``summary.csv``); ``None`` keeps
        them exact, for a display that rounds once itself.

    Returns
    -------
    pandas.DataFrame
        Columns ``township``, ``n_parcels``, ``class1_mu`` … ``unclassified_mu``,
        ``total_mu``, the same in hm², and ``class1_pct`` … (share of the total area).
    """
    cls = parcels["final_class"].astype("Int8").fillna(0).astype(int)
    township = parcels["township"].astype(object).fillna("(none)")
    area = pd.crosstab(township, cls, values=parcels["area_mu"], aggfunc="sum")
    area = area.reindex(columns=[1, 2, 3, 0]).fillna(0.0)
    area.columns = [f"{CLASS_KEYS[c]}_mu" for c in area.columns]
    area.insert(0, "n_parcels", township.value_counts().reindex(area.index).to_numpy())
    area.loc[county_name] = area.sum()
    area["total_mu"] = area[[f"{k}_mu" for k in CLASS_KEYS.values()]].sum(axis=1)
    for key in CLASS_KEYS.values():
        area[f"{key}_hm2"] = area[f"{key}_mu"] / 15.0
    area["total_hm2"] = area["total_mu"] / 15.0
    for key in CLASS_KEYS.values():
        area[f"{key}_pct"] = 100.0 * area[f"{key}_mu"] / area["total_mu"].where(area["total_mu"] > 0)
    area["n_parcels"] = area["n_parcels"].astype(int)
    if decimals is not None:
        area = area.round(decimals)
    return area.reset_index(names="township")

