"""The loaded standards: an immutable :class:`Standard` with scalar and vectorised lookups.

All values are mg/kg. Soil values (GB 15618-2018) are total contents; crop limits
(GB 2762) refer to the edible part, rice as brown rice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from farmland.errors import StandardError

from .vocabulary import CLASS_ELEMENTS, CROPS, LANDUSES, ORGANIC_ITEMS, SCREENING_ITEMS

_LANDUSE_INDEX = pd.Index(LANDUSES)
_UNKNOWN = LANDUSES.index("unknown")


@dataclass(frozen=True)
class PhBand:
    """One pH band of GB 15618-2018: the interval ``(lower, upper]`` (``closed="right"``)."""

    code: int
    name: str
    lower: float
    upper: float
    closed: str
    label: str


@dataclass(frozen=True, eq=False)
class Standard:
    """GB 15618-2018 screening/intervention values and GB 2762 crop limits (mg/kg).

    Build it with :func:`farmland.standards.load_standard`; every mapping is read-only
    and every array is non-writeable.

    Attributes
    ----------
    name, version, units
        Name of the table set, its revision and the unit of every value (``mg/kg``).
    fingerprint
        SHA-256 over the table files (name and bytes, in a fixed order).
    path
        Directory the tables were read from.
    standards
        Per standard (``gb15618``, ``gb2762``): code, titles, source, basis.
    bands
        The pH bands, in order; :attr:`band_edges` are their inner edges.
    ph_range
        Valid pH range ``(min, max)``; pH outside it is rejected.
    screening
        ``(element, column) -> value per band`` for cd hg as pb cr cu ni zn.
    organics
        ``item -> value`` for hch, ddt, bap (no pH dependence).
    intervention
        ``element -> value per band`` for the class-driving elements.
    landuse_columns
        ``(item, landuse) -> GB column`` or ``"stricter"`` (lower of the item's columns).
    crop_limits
        ``(crop, element) -> limit`` (``None`` where GB 2762 sets none).
    crop_as_forms
        ``crop -> "inorganic" | "total"``: the arsenic form the limit refers to.
    """

    name: str
    version: str
    units: str
    fingerprint: str
    path: str
    standards: Mapping[str, Mapping[str, str]] = field(repr=False)
    bands: tuple[PhBand, ...] = field(repr=False)
    ph_range: tuple[float, float] = field(repr=False)
    screening: Mapping[tuple[str, str], tuple[float, ...]] = field(repr=False)
    organics: Mapping[str, float] = field(repr=False)
    intervention: Mapping[str, tuple[float, ...]] = field(repr=False)
    landuse_columns: Mapping[tuple[str, str], str] = field(repr=False)
    crop_limits: Mapping[tuple[str, str], float | None] = field(repr=False)
    crop_as_forms: Mapping[str, str] = field(repr=False)
    band_edges: np.ndarray = field(repr=False)
    # item -> (len(LANDUSES), n_bands + 1); the last column is NaN so band -1 gives NaN
    _screening_grid: Mapping[str, np.ndarray] = field(repr=False)
    # element -> (n_bands + 1,), last entry NaN
    _intervention_grid: Mapping[str, np.ndarray] = field(repr=False)

    # ---------------------------------------------------------------- pH bands
    def ph_band(self, ph: float) -> int:
        """Band code (0-3) of one pH value; an exact edge belongs to the lower band.

        Raises
        ------
        ValueError
            If ``ph`` is NaN or outside :attr:`ph_range`.
        """
        value = float(ph)
        if np.isnan(value):
            raise ValueError("pH is NaN: a pH band needs a measured pH")
        self._check_ph_range(np.array([value]))
        return int(np.searchsorted(self.band_edges, value, side="left"))

    def ph_bands(self, ph: Any) -> np.ndarray:
        """Band codes (``int8``) of an array of pH values; ``-1`` where pH is NaN.

        Raises
        ------
        ValueError
            If any non-NaN pH is outside :attr:`ph_range`.
        """
        values = np.asarray(ph, dtype=np.float64)
        self._check_ph_range(values)
        bands = np.asarray(np.searchsorted(self.band_edges, values, side="left"), dtype=np.int8)
        bands[np.isnan(values)] = -1
        return bands

    def _check_ph_range(self, values: np.ndarray) -> None:
        low, high = self.ph_range
        with np.errstate(invalid="ignore"):
            bad = (values < low) | (values > high)
        if bad.any():
            shown = ", ".join(f"{v:g}" for v in values[bad][:5])
            raise ValueError(
                f"pH outside {low:g}-{high:g}: {shown} ({int(bad.sum())} value(s)). "
                "Fix: correct or remove these pH values before classifying"
            )

    # ---------------------------------------------------------------- GB 15618
    def gb_column(self, element: str, landuse: str) -> str:
        """GB 15618 column used for ``element`` on ``landuse``.

        Returns ``"paddy"``, ``"other"``, ``"orchard"``, ``"all"`` or ``"stricter"``
        (the lower of the element's columns, band by band: rotation and unknown land).
        """
        item = _screening_item(element)
        return self.landuse_columns[(item, LANDUSES[_landuse_code(landuse)])]

    def screening_value(self, element: str, landuse: str, ph: float) -> float:
        """Risk screening value (mg/kg) of ``element`` for one land use and pH.

        Organic items (hch, ddt, bap) do not depend on pH, which may then be NaN.
        """
        item = _screening_item(element)
        code = _landuse_code(landuse)
        if item in ORGANIC_ITEMS:
            return self.organics[item]
        return float(self._screening_grid[item][code, self.ph_band(ph)])

    def screening_values(self, element: str, landuse: Any, ph: Any) -> np.ndarray:
        """Vectorised :meth:`screening_value` (``float64``); NaN where pH is NaN.

        ``landuse`` and ``ph`` broadcast against each other (a single land-use string
        is fine). Missing land use (None/NaN) is treated as ``"unknown"``.
        """
        item = _screening_item(element)
        codes = _landuse_codes(landuse)
        if item in ORGANIC_ITEMS:
            shape = np.broadcast_shapes(codes.shape, np.shape(ph))
            return np.full(shape, self.organics[item], dtype=np.float64)
        codes, bands = np.broadcast_arrays(codes, self.ph_bands(ph))
        return self._screening_grid[item][codes, bands]

    def intervention_value(self, element: str, ph: float) -> float:
        """Risk intervention value (mg/kg) of a class-driving element at one pH."""
        item = _class_element(element)
        return float(self._intervention_grid[item][self.ph_band(ph)])

    def intervention_values(self, element: str, ph: Any) -> np.ndarray:
        """Vectorised :meth:`intervention_value` (``float64``); NaN where pH is NaN."""
        item = _class_element(element)
        return self._intervention_grid[item][self.ph_bands(ph)]

    # ---------------------------------------------------------------- GB 2762
    def crop_limit(self, crop: str, element: str) -> float | None:
        """GB 2762 limit (mg/kg, edible part) of ``element`` in ``crop``; None if none is set.

        For arsenic the limit refers to the form given by :meth:`crop_as_form`.
        """
        return self.crop_limits.get((_crop(crop), _screening_item(element)))

    def crop_as_form(self, crop: str) -> str:
        """Arsenic form of the GB 2762 limit for ``crop``: ``"inorganic"`` or ``"total"``."""
        return self.crop_as_forms[_crop(crop)]

    def manifest(self) -> dict[str, Any]:
        """What a run manifest records about these tables (plain JSON-able dict)."""
        return {
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "standards": {key: dict(value) for key, value in self.standards.items()},
        }


def _screening_item(element: str) -> str:
    item = str(element).strip().lower()
    if item not in SCREENING_ITEMS:
        raise StandardError(
            f"unknown element {element!r}: GB 15618-2018 tables cover "
            f"{', '.join(SCREENING_ITEMS)}"
        )
    return item


def _class_element(element: str) -> str:
    item = _screening_item(element)
    if item not in CLASS_ELEMENTS:
        raise StandardError(
            f"{element!r} has no GB 15618-2018 intervention value: only "
            f"{', '.join(CLASS_ELEMENTS)} have one"
        )
    return item


def _crop(crop: str) -> str:
    name = str(crop).strip().lower()
    if name not in CROPS:
        raise StandardError(f"unknown crop {crop!r}: GB 2762 tables cover {', '.join(CROPS)}")
    return name


def _landuse_code(landuse: object) -> int:
    """Index of one land use in LANDUSES (None/NaN → unknown); ValueError if not in it."""
    codes = _landuse_codes(np.array([landuse], dtype=object))
    return int(codes[0])


def _landuse_codes(landuse: Any) -> np.ndarray:
    """Indices into LANDUSES for a scalar or array; missing → unknown; ValueError if invalid."""
    values = np.asarray(landuse, dtype=object)
    codes = _LANDUSE_INDEX.get_indexer(values.ravel()).reshape(values.shape)
    missing = codes < 0
    if missing.any():
        null = pd.isna(values)
        bad = missing & ~null
        if bad.any():
            shown = ", ".join(repr(v) for v in pd.unique(values[bad])[:5])
            raise ValueError(
                f"unknown land use {shown} ({int(bad.sum())} value(s)); "
                f"expected one of {', '.join(LANDUSES)}"
            )
        codes[null] = _UNKNOWN
    return codes
