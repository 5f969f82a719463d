"""Read and validate the standards tables (CSV + TOML package data).

Every problem found in a table is collected and reported at once in one
:class:`~farmland.errors.StandardError` naming file, line and item.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from farmland.errors import StandardError

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
    STRICTER,
)

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).resolve().parent
#: files of a table set, in fingerprint order
TABLE_FILES = ("metadata.toml", "screening.csv", "intervention.csv", "organics.csv",
               "landuse_columns.csv", "crop_limits.csv")
METALS = CLASS_ELEMENTS + FLAG_ELEMENTS

Values = tuple[float, ...]  # one value per pH band
Screening = dict[tuple[str, str], Values]  # (element, column) -> values
Columns = dict[tuple[str, str], str]  # (item, landuse) -> column or 'stricter'
Rows = list[tuple[int, dict[str, str]]]  # (line number, {column: text})


class _Problems:
    """Collects problems as ``file line n: text`` and raises them together."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.items: list[str] = []

    def add(self, file: str, line: int | None, text: str) -> None:
        where = file if line is None else f"{file} line {line}"
        self.items.append(f"{where}: {text}")

    def raise_if_any(self) -> None:
        if self.items:
            listing = "\n".join(f"  - {item}" for item in self.items)
            raise StandardError(
                f"standards tables in {self.directory} are invalid "
                f"({len(self.items)} problem(s)):\n{listing}\n"
                "Fix: correct the tables, or reinstall farmland to restore the shipped ones"
            )


def read_standard(directory: Path) -> Standard:
    """Read, validate and assemble the table set in ``directory`` (no caching)."""
    for name in TABLE_FILES:
        if not (directory / name).is_file():
            raise StandardError(f"{directory / name}: standards table missing")
    problems = _Problems(directory)
    meta = _read_metadata(directory / "metadata.toml")
    bands, ph_range = _parse_bands(meta, problems)
    problems.raise_if_any()
    names = [band.name for band in bands]
    screening = _parse_screening(directory, names, problems)
    intervention = _parse_intervention(directory, names, problems)
    organics = _parse_organics(directory, problems)
    columns = _parse_landuse_columns(directory, problems)
    limits, forms = _parse_crop_limits(directory, problems)
    problems.raise_if_any()
    _check_screening_complete(screening, columns, problems)
    _check_intervention_above(screening, intervention, names, problems)
    problems.raise_if_any()
    table = meta.get("tables", {})
    standard = Standard(
        name=str(table.get("name", "")),
        version=str(table.get("version", "")),
        units=str(table.get("units", "mg/kg")),
        fingerprint=fingerprint(directory),
        path=str(directory),
        standards=_read_only(
            {k: _read_only(dict(v)) for k, v in meta.get("standards", {}).items()}
        ),
        bands=bands,
        ph_range=ph_range,
        screening=_read_only(screening),
        organics=_read_only(organics),
        intervention=_read_only(intervention),
        landuse_columns=_read_only(columns),
        crop_limits=_read_only(limits),
        crop_as_forms=_read_only(forms),
        band_edges=_frozen(np.array([band.upper for band in bands[:-1]])),
        _screening_grid=_read_only(_screening_grid(screening, organics, columns, len(bands))),
        _intervention_grid=_read_only({
            el: _frozen(np.array([*values, np.nan])) for el, values in intervention.items()
        }),
    )
    logger.debug("loaded standards %s from %s (sha256 %s)", standard.name, directory,
                 standard.fingerprint)
    return standard


def fingerprint(directory: Path) -> str:
    """SHA-256 over each table file's name and bytes, in :data:`TABLE_FILES` order."""
    digest = hashlib.sha256()
    for name in TABLE_FILES:
        digest.update(name.encode() + b"\0")
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


# --------------------------------------------------------------------- metadata
def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise StandardError(f"{path}: not valid TOML ({exc})") from exc


def _parse_bands(
    meta: dict[str, Any], problems: _Problems
) -> tuple[tuple[PhBand, ...], tuple[float, float]]:
    """pH bands: ordered, contiguous, from -inf to inf, each closed on the right."""
    file = "metadata.toml"
    ph = meta.get("ph", {})
    raw = ph.get("bands", [])
    if not raw:
        problems.add(file, None, "no [[ph.bands]] defined")
        return (), (0.0, 14.0)
    bands = []
    for code, entry in enumerate(raw):
        try:
            band = PhBand(code=code, name=str(entry["name"]), lower=float(entry["lower"]),
                          upper=float(entry["upper"]), closed=str(entry["closed"]),
                          label=str(entry.get("label", "")))
        except (KeyError, TypeError, ValueError) as exc:
            problems.add(file, None, f"pH band {code}: needs name, lower, upper, closed ({exc})")
            continue
        if band.name != f"b{code}":
            problems.add(file, None, f"pH band {code} is named {band.name!r}; expected 'b{code}'")
        if band.closed != "right":
            problems.add(file, None, f"pH band {band.name}: closed = {band.closed!r}; only "
                         "'right' (lower, upper] is supported (an edge belongs to the lower band)")
        if not band.lower < band.upper:
            problems.add(file, None, f"pH band {band.name}: lower {band.lower} is not below "
                         f"upper {band.upper}")
        bands.append(band)
    for before, after in zip(bands, bands[1:]):
        if before.upper != after.lower:
            problems.add(file, None, f"pH bands {before.name} and {after.name} are not "
                         f"contiguous: {before.name} ends at {before.upper}, {after.name} "
                         f"starts at {after.lower}")
    if bands and (bands[0].lower != -math.inf or bands[-1].upper != math.inf):
        problems.add(file, None, "pH bands must start at -inf and end at inf")
    ph_range = (float(ph.get("valid_min", 0.0)), float(ph.get("valid_max", 14.0)))
    return tuple(bands), ph_range


# --------------------------------------------------------------------- CSV tables
def _read_rows(path: Path, header: list[str], problems: _Problems) -> Rows:
    """Rows of a CSV as ``(line, {column: text})``; the header must equal ``header``."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        found = [cell.strip() for cell in next(reader, [])]
        if found != header:
            problems.add(path.name, 1, f"header is {','.join(found)}; expected {','.join(header)}")
            return []
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                problems.add(path.name, reader.line_num,
                             f"{len(cells)} fields; expected {len(header)}")
                continue
            rows.append((reader.line_num, dict(zip(header, (c.strip() for c in cells)))))
    return rows


def _value(text: str, file: str, line: int, what: str, problems: _Problems) -> float:
    """A positive finite number, or NaN after recording the problem."""
    try:
        value = float(text)
    except ValueError:
        problems.add(file, line, f"{what}: {text!r} is not a number" if text
                     else f"{what}: value missing")
        return math.nan
    if not (math.isfinite(value) and value > 0):
        problems.add(file, line, f"{what}: {text!r} must be a positive number")
        return math.nan
    return value


def _known(value: str, allowed: tuple[str, ...], kind: str, file: str, line: int,
           problems: _Problems) -> bool:
    if value in allowed:
        return True
    problems.add(file, line, f"unknown {kind} {value!r} (known: {', '.join(allowed)})")
    return False


def _unique(key: object, seen: dict[object, int], file: str, line: int,
            problems: _Problems) -> bool:
    if key in seen:
        problems.add(file, line, f"duplicate row {key!r} (first at line {seen[key]})")
        return False
    seen[key] = line
    return True


def _parse_screening(directory: Path, bands: list[str], problems: _Problems) -> Screening:
    file = "screening.csv"
    table: Screening = {}
    seen: dict[object, int] = {}
    for line, row in _read_rows(directory / file, ["element", "column", *bands], problems):
        element, column = row["element"].lower(), row["column"].lower()
        ok = _known(element, METALS, "element", file, line, problems)
        ok = _known(column, GB_COLUMNS, "column", file, line, problems) and ok
        values = tuple(_value(row[b], file, line, f"{element} {column} {b}", problems)
                       for b in bands)
        if ok and _unique((element, column), seen, file, line, problems):
            table[(element, column)] = values
    return table


def _parse_intervention(directory: Path, bands: list[str],
                        problems: _Problems) -> dict[str, Values]:
    file = "intervention.csv"
    table: dict[str, Values] = {}
    seen: dict[object, int] = {}
    for line, row in _read_rows(directory / file, ["element", *bands], problems):
        element = row["element"].lower()
        values = tuple(_value(row[b], file, line, f"{element} {b}", problems) for b in bands)
        if _known(element, CLASS_ELEMENTS, "element", file, line, problems) and _unique(
                element, seen, file, line, problems):
            table[element] = values
    for element in CLASS_ELEMENTS:
        if element not in table and element not in seen:
            problems.add(file, None, f"no row for element {element!r}")
    return table


def _parse_organics(directory: Path, problems: _Problems) -> dict[str, float]:
    file = "organics.csv"
    table: dict[str, float] = {}
    seen: dict[object, int] = {}
    header = ["item", "value", "name_zh", "name_en"]
    for line, row in _read_rows(directory / file, header, problems):
        item = row["item"].lower()
        value = _value(row["value"], file, line, item, problems)
        if _known(item, ORGANIC_ITEMS, "item", file, line, problems) and _unique(
                item, seen, file, line, problems):
            table[item] = value
    for item in ORGANIC_ITEMS:
        if item not in seen:
            problems.add(file, None, f"no row for item {item!r}")
    return table


def _parse_landuse_columns(directory: Path, problems: _Problems) -> Columns:
    file = "landuse_columns.csv"
    table: Columns = {}
    seen: dict[object, int] = {}
    allowed = (*GB_COLUMNS, STRICTER)
    for line, row in _read_rows(directory / file, ["element", *LANDUSES], problems):
        element = row["element"].lower()
        if not (_known(element, SCREENING_ITEMS, "element", file, line, problems)
                and _unique(element, seen, file, line, problems)):
            continue
        for landuse in LANDUSES:
            column = row[landuse].lower()
            if _known(column, allowed, f"column for {element}/{landuse}", file, line, problems):
                table[(element, landuse)] = column
    for element in SCREENING_ITEMS:
        if element not in seen:
            problems.add(file, None, f"no row for element {element!r}")
    return table


def _parse_crop_limits(
    directory: Path, problems: _Problems
) -> tuple[dict[tuple[str, str], float | None], dict[str, str]]:
    """Crop limits; an empty cell means GB 2762 sets no limit (None)."""
    file = "crop_limits.csv"
    header = ["crop", "cd", "pb", "hg", "as", "as_form", "cr", "name_zh"]
    limits: dict[tuple[str, str], float | None] = {}
    forms: dict[str, str] = {}
    seen: dict[object, int] = {}
    for line, row in _read_rows(directory / file, header, problems):
        crop, form = row["crop"].lower(), row["as_form"].lower()
        if not (_known(crop, CROPS, "crop", file, line, problems)
                and _unique(crop, seen, file, line, problems)):
            continue
        if _known(form, AS_FORMS, "arsenic form", file, line, problems):
            forms[crop] = form
        for element in CLASS_ELEMENTS:
            text = row[element]
            limits[(crop, element)] = (
                _value(text, file, line, f"{crop} {element}", problems) if text else None
            )
    missing = [crop for crop in CROPS if crop not in seen]
    if missing:  # tables copied before a category was added stay usable
        logger.warning("%s in %s: no row for crop(s) %s: samples of them are not graded "
                       "(copy the rows from farmland's own table to grade them)", file,
                       directory, ", ".join(missing))
    return limits, forms


# --------------------------------------------------------------------- cross checks
def _check_screening_complete(screening: Screening, columns: Columns,
                              problems: _Problems) -> None:
    """Every metal has a row for every column its land uses refer to; 'stricter' needs two."""
    for element in METALS:
        own = [column for (el, column) in screening if el == element]
        used = {columns[(element, lu)] for lu in LANDUSES} - {STRICTER}
        for column in sorted(used - set(own)):
            problems.add("screening.csv", None, f"no row for element {element!r} column "
                         f"{column!r} (used in landuse_columns.csv)")
        if STRICTER in {columns[(element, lu)] for lu in LANDUSES} and len(own) < 2:
            problems.add("landuse_columns.csv", None, f"{element}: 'stricter' needs at least two "
                         "columns in screening.csv")
    for item in ORGANIC_ITEMS:
        if {columns[(item, lu)] for lu in LANDUSES} != {"all"}:
            problems.add("landuse_columns.csv", None,
                         f"{item}: organic items use column 'all' only")


def _check_intervention_above(screening: Screening, intervention: dict[str, Values],
                              bands: list[str], problems: _Problems) -> None:
    """Intervention value > every screening value of the element, band by band."""
    for (element, column), values in screening.items():
        if element not in intervention:
            continue
        for band, low, high in zip(bands, values, intervention[element]):
            if not high > low:
                problems.add("intervention.csv", None, f"{element} {band}: intervention value "
                             f"{high:g} is not above the screening value {low:g} "
                             f"(screening.csv, column {column})")


# --------------------------------------------------------------------- assembly
def _screening_grid(screening: Screening, organics: dict[str, float], columns: Columns,
                    n_bands: int) -> dict[str, np.ndarray]:
    """Per item: values by (landuse, band) with 'stricter' resolved, plus a trailing NaN band."""
    grids = {}
    for item in SCREENING_ITEMS:
        if item in organics:
            own = {"all": np.full(n_bands, organics[item])}
        else:
            own = {col: np.array(v) for (el, col), v in screening.items() if el == item}
        stricter = np.min(np.vstack(list(own.values())), axis=0)
        rows = [stricter if columns[(item, lu)] == STRICTER else own[columns[(item, lu)]]
                for lu in LANDUSES]
        grid = np.column_stack([np.vstack(rows), np.full(len(LANDUSES), np.nan)])
        grids[item] = _frozen(grid)
    return grids


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def _read_only(mapping: dict) -> MappingProxyType:
    return MappingProxyType(dict(mapping))
