"""GB 15618-2018 soil screening/intervention values and GB 2762 crop limits.

The numbers live in CSV/TOML files beside this module (package data) and are
validated when loaded. Values are mg/kg; soil values are total contents, crop limits
refer to the edible part (rice as brown rice).

Examples
--------
>>> from farmland.standards import load_standard, screening_value
>>> screening_value("Cd", landuse="paddy", ph=6.5)
0.4
>>> std = load_standard()
>>> std.gb_column("cd", "rotation"), std.ph_band(5.5)
('stricter', 0)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .loader import DEFAULT_DIR, TABLE_FILES, read_standard
from .model import PhBand, Standard
from .vocabulary import (
    AS_FORMS,
    CLASS_ELEMENTS,
    CROPS,
    FLAG_ELEMENTS,
    GB_COLUMNS,
    LANDUSES,
    ORGANIC_ITEMS,
    SCREENING_ITEMS,
    landuse_from_dlbm,
)

__all__ = [
    "AS_FORMS", "CLASS_ELEMENTS", "CROPS", "FLAG_ELEMENTS", "GB_COLUMNS", "LANDUSES",
    "ORGANIC_ITEMS", "SCREENING_ITEMS", "TABLE_FILES", "PhBand", "Standard",
    "landuse_from_dlbm", "load_standard", "screening_value",
]


def load_standard(path: str | os.PathLike[str] | None = None) -> Standard:
    """Load and validate the standards tables (cached per directory).

    Parameters
    ----------
    path
        Directory holding the table files (:data:`TABLE_FILES`); default: the tables
        shipped with farmland.

    Returns
    -------
    Standard
        Immutable; the same object is returned for the same directory.

    Raises
    ------
    farmland.errors.StandardError
        If a file is missing or any table is malformed (all problems listed at once,
        each with file and line).
    """
    directory = DEFAULT_DIR if path is None else Path(path).resolve()
    return _load_cached(directory)


@functools.cache
def _load_cached(directory: Path) -> Standard:
    return read_standard(directory)


def screening_value(element: str, landuse: str, ph: float) -> float:
    """Screening value (mg/kg) from the shipped tables; ``element`` is case-insensitive.

    >>> screening_value("Cd", landuse="paddy", ph=6.5)
    0.4
    """
    return load_standard().screening_value(element, landuse, ph)
