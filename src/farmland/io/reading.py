"""Steps shared by the readers of :mod:`farmland.io.readers`: open, match columns, ids, place.

Each function works on a :class:`~farmland.io.formats.RawTable` or its frame and
returns new objects; problems are recorded in a :class:`~farmland.io.values.Problems`
or raised at once when reading cannot go on (missing columns, no features).
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
import pyproj

from farmland.crs import describe_crs, ensure_crs, metric_crs_for, to_metric
from farmland.errors import InputError
from farmland.io.columns import (
    ColumnMatch,
    match_columns,
    normalise_value,
    read_mapping,
    token_set,
    value_lookup,
)
from farmland.io.formats import RawTable, open_table
from farmland.io.geometry import require_crs_target
from farmland.io.values import (
    Problems,
    check_ids,
    id_strings,
    inexact_ids,
    parse_years,
    text_values,
)

log = logging.getLogger("farmland.io.readers")

PathLike = str | os.PathLike[str]
#: a reader input: a file path or an in-memory (Geo)DataFrame
Source = str | os.PathLike[str] | pd.DataFrame
MappingArg = Mapping[str, str] | PathLike | None


def open_input(path: Source, layer: str | None, encoding: str | None,
               preferred: tuple[str, ...], read_geometry: bool = True) -> RawTable:
    """Open an input read-only; a file or layer without rows is an InputError."""
    raw = open_table(path, layer=layer, encoding=encoding, preferred_layers=preferred,
                     read_geometry=read_geometry)
    if len(raw.frame) == 0:
        raise InputError("no features (the file or layer is empty)", file=raw.file,
                         fix="check the file and layer")
    return raw


def match_input(raw: RawTable, kind: str, mapping: MappingArg, *, required: tuple[str, ...],
                coordinates: bool = False) -> ColumnMatch:
    """Match columns to the canonical ones of ``kind``.

    Missing required columns raise one InputError naming them and their accepted names.
    """
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = read_mapping(mapping)
    match = match_columns(raw.frame.columns, kind, mapping=mapping, coordinates=coordinates,
                          shapefile=raw.dbf)
    for canonical, full in match.truncated.items():
        log.info("%s: column '%s' read as %s: it is '%s' cut to the 10 bytes a shapefile "
                 "field name holds", raw.file, match.source[canonical], canonical.lstrip("_"),
                 full)
    missing = [c for c in required if c not in match.source]
    if missing:
        have = [str(c) for c in raw.frame.columns if str(c) != "geometry"]
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(the file has: {', '.join(have[:20])})", file=raw.file,
                         column=missing[0],
                         fix=accepted_text(match, missing)
                         + f'; or map your column in a mapping file ("your_name" = "{missing[0]}")')
    unused = [str(c) for c in raw.frame.columns
              if str(c) != "geometry" and c not in set(match.source.values())]
    if unused:
        log.info("%s: column(s) not used: %s (map one in a mapping file if it holds a "
                 "farmland column)", raw.file, ", ".join(unused[:20]))
    return match


def accepted_text(match: ColumnMatch, columns: tuple[str, ...] | list[str]) -> str:
    """``'cd: accepted names cd, 镉, Cd …'`` for error messages."""
    return "; ".join(f"{c}: accepted names {', '.join(match.accepted[c])}" for c in columns)


def require_geometry(raw: RawTable, what: str) -> None:
    """Raise unless the file carries geometries."""
    if not raw.has_geometry:
        raise InputError(f"the file has no geometry; {what} are needed", file=raw.file,
                         fix="give a GeoPackage, Shapefile, FileGDB or GeoJSON layer")


def ids_and_rows(raw: RawTable, column: str, problems: Problems) -> tuple[pd.Series, pd.Series]:
    """Ids as text, and row labels for messages (the id, else 'line N'/'feature N')."""
    ids = id_strings(raw.frame[column])
    rows = ids.where(ids.notna(), raw.labels)
    check_exact_ids(raw, column, ids, rows, problems)
    check_ids(ids, rows, column, problems)
    return ids, rows


def check_exact_ids(raw: RawTable, column: str, ids: pd.Series, rows: pd.Series,
                    problems: Problems) -> None:
    """Refuse ids whose digits were lost in a number cell (see :func:`inexact_ids`)."""
    inexact = inexact_ids(raw.frame[column], spreadsheet=raw.kind == "excel")
    problems.add_mask("inexact_id", inexact, raw.labels, column, ids)


def text_column(frame: pd.DataFrame, src: dict[str, str], canonical: str) -> pd.Series:
    """The canonical text column, or an all-NA column when the file lacks it."""
    return text_values(frame[src[canonical]]) if canonical in src else na_column(frame)


def na_column(frame: pd.DataFrame) -> pd.Series:
    """An all-NA text column on ``frame``'s index."""
    return pd.Series(None, index=frame.index, dtype="str")


def year_column(frame: pd.DataFrame, src: dict[str, str], rows: pd.Series,
                problems: Problems) -> pd.Series:
    """``year`` as Int64 (all NA when the file has no year column)."""
    if "year" not in src:
        return pd.Series(pd.NA, index=frame.index, dtype="Int64")
    return parse_years(frame[src["year"]], rows, src["year"], problems)


def blank_cells(raw: pd.Series) -> pd.Series:
    """Cells that hold no value (NA, empty or a 'missing' token such as '-')."""
    missing = token_set("missing")
    return raw.map(lambda v: v is None or pd.isna(v)
                   or unicodedata.normalize("NFKC", str(v)).strip().lower() in missing)


def vocabulary_values(raw: pd.Series, vocabulary: str) -> pd.Series:
    """Cells mapped to a canonical vocabulary value (NA when not recognised)."""
    lookup = value_lookup(vocabulary)
    return raw.map(lambda v: None if v is None or pd.isna(v)
                   else lookup.get(normalise_value(v))).astype(object)


def report_unknown_values(raw: pd.Series, mapped: pd.Series, rows: pd.Series, column: str,
                          vocabulary: str, problems: Problems, *, blank_ok: bool = False) -> None:
    """Record cells whose value is not in ``vocabulary`` (blanks too unless ``blank_ok``)."""
    unknown = mapped.isna().to_numpy().copy()
    if blank_ok:
        unknown &= ~blank_cells(raw).to_numpy()
    accepted = ", ".join(sorted(set(value_lookup(vocabulary).values())))
    problems.add_mask("unknown_value", unknown, rows, column, raw,
                      f" ({vocabulary}; accepted: {accepted} or their Chinese names)")


def place(gdf: gpd.GeoDataFrame, file: str, crs: Any, target_crs: Any) -> gpd.GeoDataFrame:
    """Check the CRS and reproject to the metric target CRS."""
    gdf = ensure_crs(gdf, file=file, crs=crs)
    if target_crs is None:
        target = metric_crs_for(gdf)
    else:
        require_crs_target(target_crs)
        target = pyproj.CRS.from_user_input(target_crs)
    if pyproj.CRS.from_user_input(gdf.crs) != target:
        log.info("%s: reprojected from %s to %s", file, describe_crs(gdf.crs),
                 describe_crs(target))
    return to_metric(gdf, target)


def finish(gdf: gpd.GeoDataFrame, file: str) -> gpd.GeoDataFrame:
    """Refuse an empty result, log the count and renumber rows 0..n-1."""
    if gdf.empty:
        raise InputError("no usable features (every geometry is empty)", file=file)
    log.info("%s: read %d feature(s)", file, len(gdf))
    return gdf.reset_index(drop=True)
