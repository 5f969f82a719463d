"""Names shared by the standards tables and the rest of farmland.

Elements, land uses, GB 15618 columns and crops are plain lower-case strings; the
tuples below fix their order (the order of array axes inside :class:`Standard`).
"""

from __future__ import annotations

import math

#: class-driving elements of GB 15618-2018 (screening and intervention values)
CLASS_ELEMENTS = ("cd", "hg", "as", "pb", "cr")
#: elements with screening values only: they raise an "above screening" flag
FLAG_ELEMENTS = ("cu", "ni", "zn")
#: organic items (GB 15618-2018 Table 2), one screening value each, no pH dependence
ORGANIC_ITEMS = ("hch", "ddt", "bap")
#: every item with a screening value
SCREENING_ITEMS = CLASS_ELEMENTS + FLAG_ELEMENTS + ORGANIC_ITEMS

#: land-use vocabulary of parcels and samples (docs/schema.md)
LANDUSES = ("paddy", "irrigated", "dry", "orchard", "garden", "rotation", "unknown")
#: columns of the GB 15618 screening table, and the rule "lower of the element's columns"
GB_COLUMNS = ("paddy", "other", "orchard", "all")
STRICTER = "stricter"

#: crops of GB 2762 used for the crop-sample adjustment (rice = paddy measured as brown rice)
CROPS = ("rice", "milled_rice", "wheat", "maize", "leafy_veg", "root_veg", "tuber_veg", "other_veg",
         "fresh_fruit", "cranberry_currant", "brassica_veg", "legume_veg", "stem_veg", "celery",
         "pulses", "peanut", "other_cereal")
AS_FORMS = ("inorganic", "total")

#: third land-survey (三调) land-use codes with their own GB column; other 02xx → garden
_DLBM_LANDUSE = {"0101": "paddy", "0102": "irrigated", "0103": "dry", "0201": "orchard"}


def landuse_from_dlbm(dlbm: object) -> str:
    """Land use of a third land-survey code ``DLBM``.

    Parameters
    ----------
    dlbm
        Land-use code as text (``"0101"``) or as a number that lost its leading zero
        (``101``, ``"101"``, ``101.0``). ``None``, NaN and ``""`` mean no code.

    Returns
    -------
    str
        ``"paddy"`` (0101), ``"irrigated"`` (0102), ``"dry"`` (0103), ``"orchard"``
        (0201), ``"garden"`` (any other 02xx) and ``"unknown"`` for anything else.

    Examples
    --------
    >>> landuse_from_dlbm("0101"), landuse_from_dlbm(102), landuse_from_dlbm("0204")
    ('paddy', 'irrigated', 'garden')
    """
    code = _dlbm_text(dlbm)
    if code in _DLBM_LANDUSE:
        return _DLBM_LANDUSE[code]
    if len(code) == 4 and code.startswith("02") and code.isdigit():
        return "garden"
    return "unknown"


def _dlbm_text(dlbm: object) -> str:
    """``dlbm`` as a 4-character zero-padded string ('' when missing or unusable)."""
    if dlbm is None or isinstance(dlbm, bool):
        return ""
    if isinstance(dlbm, float):
        if not math.isfinite(dlbm) or not dlbm.is_integer():
            return ""
        dlbm = int(dlbm)
    text = str(dlbm).strip()
    if text.isdigit() and len(text) < 4:
        text = text.zfill(4)
    return text
