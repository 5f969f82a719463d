"""The three farmland classes: codes, bilingual labels and the one shared palette.

Classes are stored as nullable integers (pandas ``Int8``): 1 priority protection,
2 safe utilisation, 3 strict control, ``<NA>`` unclassified. Maps and reports take
their colours from :data:`PALETTE` so a class looks the same everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIORITY_PROTECTION = 1
SAFE_UTILISATION = 2
STRICT_CONTROL = 3
CLASS_CODES = (PRIORITY_PROTECTION, SAFE_UTILISATION, STRICT_CONTROL)

LABEL_ZH = {1: "优先保护类", 2: "安全利用类", 3: "严格管控类", None: "未分类"}
LABEL_EN = {1: "Priority protection", 2: "Safe utilisation", 3: "Strict control", None: "Unclassified"}

#: green / amber / red, grey for unclassified (hex, used by maps and charts alike)
PALETTE = {1: "#2e9e4f", 2: "#f0a202", 3: "#d7301f", None: "#9e9e9e"}

MU_PER_M2 = 15 / 10_000  # 1 亩 = 10000/15 m²
HM2_PER_M2 = 1 / 10_000


def as_class(values: object) -> pd.Series:
    """Return ``values`` as a nullable ``Int8`` class series (1/2/3/<NA>)."""
    s = pd.Series(values).astype("Float64").round().astype("Int8")
    bad = s.notna() & ~s.isin(CLASS_CODES)
    if bad.any():
        raise ValueError(f"class codes must be 1, 2 or 3, got {sorted(set(s[bad]))}")
    return s


def label_zh(code: object) -> str:
    """Chinese label of a class code (``未分类`` for missing)."""
    return LABEL_ZH[None if pd.isna(code) else int(code)]


def label_en(code: object) -> str:
    """English label of a class code (``Unclassified`` for missing)."""
    return LABEL_EN[None if pd.isna(code) else int(code)]


def colour(code: object) -> str:
    """Palette colour of a class code."""
    return PALETTE[None if pd.isna(code) else int(code)]


def parcel_area_mu(parcels: pd.DataFrame) -> pd.Series:
    """Parcel area in 亩: ``area_mu`` where present, else the geometry area (metric CRS)."""
    if "area_mu" in parcels:
        mu = pd.to_numeric(parcels["area_mu"], errors="coerce").astype(float)
        if mu.notna().all():
            return mu
        geom_mu = pd.Series(np.asarray(parcels.geometry.area) * MU_PER_M2, index=parcels.index)
        return mu.fillna(geom_mu)
    return pd.Series(np.asarray(parcels.geometry.area) * MU_PER_M2, index=parcels.index)

