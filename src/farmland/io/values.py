"""Cell values for :mod:`farmland.io.readers`: numbers, below-detection values, ids, years.

Problems found in a file are collected in a :class:`Problems` and raised once as
one :class:`~farmland.errors.InputError` listing the first few.

Below-detection handling (``<el>_censored = True`` in every case):

* ``<0.05``, ``＜0.05``, ``≤0.05``, ``0.05L``, ``ND(0.05)`` → a detection limit of 0.05:
  value ``0.025`` with ``below_detection="half"`` (default), ``0.05`` with
  ``"limit"``, ``0`` with ``"zero"``;
* ``ND``, ``未检出``, ``<DL`` without a number → NaN (no substitute can be computed;
  a warning names the rows; classification reports such samples);
* blanks and ``-``/``/``/``NA`` → NaN, not censored (not measured).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from farmland.errors import InputError, first_rows
from farmland.io.columns import token_set

log = logging.getLogger(__name__)

BELOW_DETECTION = {"half": 0.5, "limit": 1.0, "zero": 0.0}
_NUM = r"(\d+(?:\.\d*)?|\.\d+)(?:e([-+]?\d+))?"
_NUMBER = re.compile(rf"^[-+]?{_NUM}$")  # after NFKC: full-width digits, point and minus
_LESS = re.compile(rf"^(?:<|≤|<=|小于)\s*{_NUM}$")
_SUFFIX_L = re.compile(rf"^{_NUM}\s*l$")
_ND_WITH = re.compile(
    rf"^(?:nd|n\.d\.?|未检出)\s*[(\[]?\s*(?:<|≤|dl\s*=?|lod\s*=?)?\s*{_NUM}\s*[)\]]?$")
_YYYYMMDD = re.compile(r"^((?:19|20)\d{2})[01]\d[0-3]\d$")
_YEAR = re.compile(r"(?<!\d)(1[89]\d{2}|2[01]\d{2})(?!\d)")
MAX_LISTED = 5

#: (message, fix) of each problem kind
PROBLEM_TEXT = {
    "non_numeric": ("non-numeric value",
                    "write a number, a below-detection value such as '<0.05', '0.05L' or 'ND', "
                    "or leave the cell blank"),
    "non_numeric_ph": ("non-numeric value", ("pH is a number from 0 to 14, e.g. 6.5 (a "
                       "below-detection value is no pH): write the measured pH, or leave the "
                       "cell blank if it was not measured")),
    "non_numeric_area": ("non-numeric value", ("write the area in m2 as a number, or leave "
                         "the cell blank to use the geometry area")),
    "non_numeric_coordinate": ("non-numeric value", ("write the coordinate as a number "
                               "(metres; in a lon/lat column degrees: 24.6 or 24°36'N)")),
    "negative": ("negative concentration", "concentrations are >= 0; leave the cell blank for "
                 "a missing value"),
    "infinite": ("infinite value", "write a finite number or leave the cell blank"),
    "ph_range": ("pH outside 0-14", "check the pH column (is another column mapped to pH?)"),
    "implausible": ("implausible concentration", "check the value and the unit (mg/kg expected; "
                    "a column named with µg/kg or ug/kg is converted)"),
    "censored_ph": ("below-detection value where a measured number is required",
                    "write the measured number"),
    "missing_id": ("missing id", "every row needs an id"),
    "inexact_id": ("id stored as a number with more than 15 digits (a number keeps only 15 "
                   "significant digits, so it may name another parcel)",
                   "format the id column (图斑编号) as text and enter the ids again, or export "
                   "the table from the source system as CSV"),
    "duplicate_id": ("duplicate id", "ids must be unique; map another id column in a mapping "
                     "file if this one is not unique"),
    "bad_year": ("not a year", "write a year such as 2023 or 2023年"),
    "missing_coordinate": ("missing coordinate", "every point needs both coordinates"),
    "unknown_value": ("unrecognised value", "use one of the accepted values (see the message) "
                      "or fix the cell"),
    "decimal_comma": ("comma in a number",
                      ("write plain numbers with a decimal point: 0.25, not 0,25 (and 1250, not "
                       "1,250); export the table again with '.' as the decimal separator")),
    "negative_area": ("negative area",
                      "areas are >= 0 m2; leave the cell blank to use the geometry area"),
    "bad_date": ("not a date", "write a date such as 2023-05-12, 2023/5/12 or 2023年5月12日"),
    "missing_value": ("empty cell where a value is required", "fill in the cell"),
    "bad_tonnage": ("not a tonnage", "write the lot's weight in tonnes as a number >= 0"),
    "no_lot_source": ("lot without a source", ("give the source village (来源村) or the "
                                               "source parcels (来源图斑, separated by ; or 、)")),
    "unknown_parcel": ("parcel id not in the classification",
                       ("check the 图斑编号 against the parcel layer of this run (a parcel "
                        "merged or renumbered in the survey needs its new id)")),
    "outside_year": ("date outside the ledger year", ("the closed-loop ledger covers one year; "
                                                      "give --year or move the row to that "
                                                      "year's ledger")),
    "stage_order": ("stage dated before an earlier stage of the loop",
                    ("stages follow 告知 → 划定 → 种植巡查 → 收获/收储核查 → 补偿/验收; fix "
                     "the date or the stage name")),
    "after_failed": ("stage recorded after a failed stage without a correction row",
                     ("add a row for the failed stage with result 整改 (corrected) dated "
                      "before this one, or fix the result")),
    "not_a_number": ("not a number", "write a plain number (a percentage may end in %)"),
    "negative_value": ("negative value", "write a number >= 0"),
    "direction_range": ("wind direction outside 0-360 degrees",
                        ("write the direction the wind blows from in degrees (0 = north, 90 = "
                         "east) or as compass text such as NNE or 北东北")),
    "duplicate_direction": ("two rows for the same wind direction",
                            "give each direction (sector) one row"),
    "wrong_hemisphere": ("hemisphere letter does not fit the column",
                         ("a longitude column takes E/W (东经), a latitude column N/S (北纬): "
                          "are the two columns swapped?")),
}
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")


@dataclass
class Problems:
    """Problems found in one file; :meth:`raise_if_any` raises them as one error."""

    file: str
    items: list[tuple[str, object, str | None, object, str]] = field(default_factory=list)

    def add(self, kind: str, row: object, column: str | None, value: object,
            detail: str = "") -> None:
        """Record a problem of ``kind`` at ``row`` (id or line), ``column``, ``value``.

        NumPy scalars are stored as Python values and NaN as ``None`` (no "got" part),
        so messages read ``(got -5.0)``, never ``(got np.float64(-5.0))``.
        """
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        self.items.append((kind, row, column, value, detail))

    def add_mask(self, kind: str, mask: np.ndarray, rows: pd.Series, column: str | None,
                 values: pd.Series, detail: str = "") -> None:
        """Record a problem for every True position of ``mask``."""
        for pos in np.flatnonzero(np.asarray(mask, dtype=bool))[: MAX_LISTED + 1]:
            self.add(kind, rows.iloc[pos], column, values.iloc[pos], detail)
        extra = int(np.count_nonzero(mask)) - (MAX_LISTED + 1)
        for _ in range(max(extra, 0)):
            self.items.append((kind, None, column, None, detail))

    def raise_if_any(self) -> None:
        """Raise one :class:`InputError` for everything recorded (first few listed)."""
        if not self.items:
            return
        kind, row, column, value, detail = self.items[0]
        problem, fix = PROBLEM_TEXT[kind]
        problem = f"{problem}{detail}"
        listed = [p for p in self.items[1:] if p[1] is not None][: MAX_LISTED - 1]
        shown = value
        if listed:  # the first value goes before the list, not after it
            problem += "".join(f" (got {v!r})" for v in (value,) if v is not None)
            problem += "; also " + "; ".join(
                f"row/id {r} column '{c}' {PROBLEM_TEXT[k][0]}{d}"
                + ("" if v is None else f" (got {v!r})") for k, r, c, v, d in listed)
            shown = None
        more = len(self.items) - 1 - len(listed)
        error = InputError(problem, file=self.file, row=row, column=column, value=shown,
                           fix=fix, more=more)
        error.value = value
        raise error

    def add_non_numeric(self, bad: np.ndarray, rows: pd.Series, column: str,
                        values: pd.Series, kind: str = "non_numeric") -> None:
        """Record unparseable cells; ``0,25`` (a decimal comma) gets its own message.
        ``kind`` picks the fix text: ``non_numeric`` (a concentration), ``non_numeric_ph``,
        ``non_numeric_area`` or ``non_numeric_coordinate``."""
        bad = np.asarray(bad, dtype=bool)
        comma = np.zeros(len(bad), dtype=bool)  # only unparseable cells can hold a comma
        comma[bad] = values[bad].map(lambda v: isinstance(v, str) and bool(
            _DECIMAL_COMMA.match(_nfkc(v)))).to_numpy(bool)
        self.add_mask("decimal_comma", comma, rows, column, values)
        self.add_mask(kind, bad & ~comma, rows, column, values)


def _nfkc(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip().lower()


def _as_float(mantissa: str, exponent: str | None) -> float:
    return float(mantissa) * (10.0 ** int(exponent) if exponent else 1.0)


def parse_cell(text: str) -> tuple[str, float]:
    """Classify one non-numeric cell.

    Returns
    -------
    (str, float)
        ``("missing", nan)``, ``("number", x)`` for a number written in full-width
        characters (``６．５``, ``－０．３``), ``("limit", dl)`` for a detection limit,
        ``("nd", nan)`` for not detected without a limit, or ``("bad", nan)``.

    Examples
    --------
    >>> parse_cell("＜0.05"), parse_cell("0.05L"), parse_cell("未检出"), parse_cell("６．５")
    (('limit', 0.05), ('limit', 0.05), ('nd', nan), ('number', 6.5))
    """
    t = _nfkc(text)
    if t in token_set("missing"):
        return "missing", math.nan
    number = _NUMBER.match(t.replace("\u2212", "-"))  # not ² or ①: only full-width forms
    if number and all(c.isascii() or c == "\u2212" or unicodedata.decomposition(c)
                      .startswith(("<wide>", "<narrow>")) for c in str(text)):
        return "number", float(number.group(0))
    for pattern in (_LESS, _SUFFIX_L, _ND_WITH):
        m = pattern.match(t)
        if m:
            return "limit", _as_float(m.group(1), m.group(2))
    if t.replace(" ", "") in token_set("not_detected"):
        return "nd", math.nan
    return "bad", math.nan


@dataclass
class Measured:
    """A parsed concentration column (mg/kg)."""

    values: np.ndarray  # float, substitutes for censored cells
    censored: np.ndarray  # bool
    bad: np.ndarray  # bool: unparseable text
    nd_no_limit: np.ndarray  # bool: ND without a number (value NaN)


def parse_measurements(raw: pd.Series, *, factor: float = 1.0,
                       below_detection: str = "half") -> Measured:
    """Parse a concentration column: numbers, ``<DL``/``ND`` values and blanks.

    Parameters
    ----------
    raw
        Cells as read (numbers or text).
    factor
        Unit factor to mg/kg (0.001 for µg/kg), applied to values and limits.
    below_detection
        ``"half"``, ``"limit"`` or ``"zero"``: substitute for a value below a known
        detection limit.
    """
    share = BELOW_DETECTION[below_detection]
    n = len(raw)
    if pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype(object)
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values, censored = numbers.copy(), np.zeros(n, bool)
    bad, nd = np.zeros(n, bool), np.zeros(n, bool)
    todo = np.isnan(numbers) & raw.notna().to_numpy()
    cache: dict[object, tuple[str, float]] = {}
    for pos in np.flatnonzero(todo):
        cell = raw.iloc[pos]
        status, limit = cache.get(cell) or cache.setdefault(cell, parse_cell(cell))
        if status == "number":
            values[pos] = limit
        elif status == "limit":
            values[pos], censored[pos] = limit * share, True
        elif status == "nd":
            censored[pos], nd[pos] = True, True
        elif status == "bad":
            bad[pos] = True
    return Measured(values * factor, censored, bad, nd)


def parse_plain_numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse numbers that may not be censored (pH, coordinates, areas).

    Returns
    -------
    (values, bad, censored)
        Float values (NaN for blanks), a mask of unparseable text and a mask of
        below-detection text (both are errors for such columns).
    """
    measured = parse_measurements(raw)
    return measured.values, measured.bad, measured.censored


_DMS = re.compile(
    r"^(?P<pre>[nsew]|北纬|南纬|东经|西经)?\s*(?P<d>\d+(?:\.\d+)?)\s*(?:°|度)\s*"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*(?:'|′|’|分)\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*(?:\"|″|′′|''|”|秒)\s*)?"
    r"(?P<post>[nsew])?$")
_HEMISPHERE = {"n": ("lat", 1), "s": ("lat", -1), "e": ("lon", 1), "w": ("lon", -1),
               "北纬": ("lat", 1), "南纬": ("lat", -1), "东经": ("lon", 1), "西经": ("lon", -1)}


def parse_dms(text: object, axis: str) -> tuple[str, float]:
    """Parse a degree text such as ``24°36'15.2"N``, ``108度30分E`` or ``北纬24.6°``.

    Parameters
    ----------
    text
        One cell. A degree sign (``°`` or ``度``) is required; minutes and seconds
        are optional and below 60; a hemisphere letter (N/S/E/W) or 北纬/东经 may lead
        or follow (S and W give negative values).
    axis
        ``"lon"`` or ``"lat"``: the column the cell comes from.

    Returns
    -------
    (str, float)
        ``("ok", decimal degrees)``, ``("wrong_axis", nan)`` when the hemisphere
        belongs to the other axis, or ``("bad", nan)``.

    Examples
    --------
    >>> parse_dms("24°36'N", "lat"), parse_dms("24°36'N", "lon")[0]
    (('ok', 24.6), 'wrong_axis')
    """
    m = _DMS.match(_nfkc(text))
    if m is None or (m["pre"] and m["post"]) or (m["s"] and m["m"] and "." in m["m"]):
        return "bad", math.nan
    deg, minutes, seconds = (float(m[k]) if m[k] else 0.0 for k in ("d", "m", "s"))
    if minutes >= 60 or seconds >= 60 or ("." in m["d"] and (m["m"] or m["s"])):
        return "bad", math.nan
    letter = m["pre"] or m["post"]
    own_axis, sign = _HEMISPHERE.get(letter, (axis, 1))
    if own_axis != axis:
        return "wrong_axis", math.nan
    return "ok", sign * round(deg + minutes / 60 + seconds / 3600, 10)


#: a number this large cannot be an exact id: spreadsheets keep 15 significant digits
INEXACT_ID = 1e15


def inexact_ids(raw: pd.Series, *, spreadsheet: bool = False) -> np.ndarray:
    """Where an id is a *number* with more than 15 digits (e.g. an 18-digit 图斑编号 typed
    into an Excel number cell): its last digits are already lost.

    Floats that large are always inexact; integers are exact in an integer column (a
    GeoPackage, a frame) but not when they come from a spreadsheet cell
    (``spreadsheet=True``), which stores every number as a 15-digit float. Text ids are
    always fine.
    """
    if pd.api.types.is_bool_dtype(raw.dtype):
        return np.zeros(len(raw), dtype=bool)
    if pd.api.types.is_integer_dtype(raw.dtype):
        if not spreadsheet:
            return np.zeros(len(raw), dtype=bool)
        return (raw.abs() >= INEXACT_ID).fillna(False).to_numpy(bool)
    if pd.api.types.is_float_dtype(raw.dtype):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
        return np.isfinite(values) & (np.abs(values) >= INEXACT_ID)
    if raw.dtype != object:
        return np.zeros(len(raw), dtype=bool)

    def one(v: object) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            return False
        if isinstance(v, (int, np.integer)) and not spreadsheet:
            return False
        return math.isfinite(v) and abs(v) >= INEXACT_ID
    return raw.map(one).to_numpy(bool)


def id_strings(raw: pd.Series) -> pd.Series:
    """Ids (or codes) as text: ``12.0`` → ``"12"``, strings stripped, blanks → NA."""
    if pd.api.types.is_integer_dtype(raw.dtype) and not raw.isna().any():
        return raw.astype("int64").astype("str")
    if pd.api.types.is_float_dtype(raw.dtype):
        values = raw.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
        out = np.full(len(values), None, dtype=object)
        out[integral] = values[integral].astype(np.int64).astype(str)
        other = np.isfinite(values) & ~integral
        out[other] = [str(v) for v in values[other]]
        return pd.Series(out, index=raw.index, dtype="str")
    if _is_arrow_text(raw.dtype):
        return _arrow_id_strings(raw)
    lookup = {v: _id_text(v) for v in pd.unique(raw.dropna())}
    return raw.map(lookup).astype("str")


def _is_arrow_text(dtype: object) -> bool:
    """Whether ``dtype`` is pandas' default text dtype from pandas 3 (``str``: Arrow-backed,
    NaN as the missing value). Tested by its attributes: pandas < 2.3 cannot build it
    (``StringDtype`` there has no ``na_value`` argument) and never reads text as it."""
    na = getattr(dtype, "na_value", None)
    return (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
            and isinstance(na, float) and math.isnan(na))


#: the ASCII characters Python's ``str.strip()`` removes (``chr(c).isspace()``)
_ASCII_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "


def _arrow_id_strings(raw: pd.Series) -> pd.Series:
    """:func:`id_strings` of an Arrow-backed text column, the same values without a Python
    call per value: ASCII cells are stripped by Arrow (of the characters ``str.strip()``
    removes), the distinct non-ASCII ones by :func:`_id_text`; empty → NA."""
    arr = raw.array.__arrow_array__()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    indices = None
    if not pc.all(pc.string_is_ascii(arr)).as_py():  # non-ASCII: Python per distinct value
        arr = pc.dictionary_encode(arr)
        arr, indices = arr.dictionary, arr.indices
    text = pc.ascii_trim(arr, characters=_ASCII_SPACE)
    other = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(arr), True).to_numpy(
        zero_copy_only=False))
    if len(other):
        fixed = pa.array([_id_text(v) for v in arr.take(other).to_pylist()], type=text.type)
        mask = np.zeros(len(arr), dtype=bool)
        mask[other] = True
        text = pc.replace_with_mask(text, pa.array(mask), fixed)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
    if indices is not None:
        text = pc.take(text, indices)
    return pd.Series(pd.array(text, dtype="str"), index=raw.index, name=raw.name)


def _id_text(v: object) -> str | None:
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        if float(v).is_integer():
            return f"{float(v):.0f}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    text = str(v).strip()
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).strip()
    return text or None


def text_values(raw: pd.Series) -> pd.Series:
    """Free text (names) stripped, blanks → NA."""
    return id_strings(raw)


def parse_years(raw: pd.Series, rows: pd.Series, column: str,
                problems: Problems) -> pd.Series:
    """Years as ``Int64``: ``2023``, ``2023.0``, ``"2023年"``, dates → 2023."""
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return raw.dt.year.astype("Int64")
    lookup = {v: _year_of(v) for v in pd.unique(raw.dropna())}
    years = raw.map(lookup)
    bad = years.map(lambda y: y == "bad").to_numpy(dtype=bool)
    problems.add_mask("bad_year", bad, rows, column, raw)
    return pd.to_numeric(years.where(~bad), errors="coerce").astype("Int64")


def _year_of(v: object) -> object:
    """The year in one cell: an int, None for a blank, or ``"bad"``."""
    if hasattr(v, "year"):  # datetime / Timestamp cells from Excel
        return int(v.year)
    if isinstance(v, (int, float, np.integer, np.floating)):
        if math.isnan(v):
            return None
        if float(v).is_integer():
            v = f"{float(v):.0f}"
    text = _nfkc(v)
    m = _YYYYMMDD.match(text) or _YEAR.search(text)
    if m:
        return int(m.group(1))
    return None if text in token_set("missing") else "bad"


def check_ids(ids: pd.Series, rows: pd.Series, column: str, problems: Problems) -> None:
    """Record missing and duplicate ids (duplicates listed by id, first ones first)."""
    problems.add_mask("missing_id", ids.isna().to_numpy(), rows, column, ids)
    dup = ids.notna() & ids.duplicated(keep=False)
    if dup.any():
        listed = first_rows(pd.unique(ids[dup]))
        problems.add("duplicate_id", listed, column, None,
                     f" ({int(dup.sum())} rows share {ids[dup].nunique()} ids)")


#: what a "not detected" value without a limit means downstream, per kind of sample
_ND_EFFECT = {
    "soil": "a soil sample's class counts them as below the screening value, interpolation "
            "leaves them out",
    "crops": "the crop sample's GB 2762 grade leaves that element out (it never counts as "
            "exceeding its limit)",
}


def warn_not_detected(nd: np.ndarray, rows: pd.Series, column: str, file: str,
                      kind: str = "soil") -> None:
    """Log the rows whose value is 'not detected' without a detection limit."""
    if nd.any():
        log.warning("%s: column '%s': %d value(s) reported as not detected without a "
                    "detection limit (%s); kept without a value (censored=True): %s — give "
                    "the limit, e.g. '<0.05', to use them as values",
                    file, column, int(nd.sum()), first_rows(rows[nd]),
                    _ND_EFFECT.get(kind, _ND_EFFECT["soil"]))


#: text read as true / false by :func:`parse_boolean` (after strip and lower-casing)
TRUE_TEXT = frozenset({"true", "1", "1.0", "yes", "是"})
FALSE_TEXT = frozenset({"false", "0", "0.0", "no", "否"})


def parse_boolean(values: pd.Series) -> pd.Series:
    """The one boolean parser: ``True/False``, ``1/0``, ``true/false``, ``yes/no``, ``是/否``
    as pandas ``boolean``; anything else (blank, NaN, other text) is ``<NA>``."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("Float64").astype("boolean")
    text = values.astype("str").str.strip().str.lower()
    mapping = dict.fromkeys(TRUE_TEXT, True) | dict.fromkeys(FALSE_TEXT, False)
    return text.map(mapping).astype("boolean")

