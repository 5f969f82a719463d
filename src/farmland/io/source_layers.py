"""Readers for the layers of source apportionment: rivers and canals, outfalls, geology and
the wind rose.

Like :mod:`farmland.io.readers`, each reader opens its input read-only (a file or an
in-memory frame), matches Chinese or English column names through ``aliases.toml``,
collects every problem of the file and raises one :class:`~farmland.errors.InputError`
naming the file, the row/feature, the column and the value, and logs every automatic
decision. Geometries come back in one metric CRS (``target_crs``, or
:func:`farmland.crs.metric_crs_for` of the data).

Conventions the source ranking relies on:

* a river or canal line is **digitised upstream → downstream: its vertex order is the flow
  direction** (a reader cannot check this; a line drawn the other way reverses "downstream");
* a wind direction is the direction the wind blows **from** (meteorological convention, as
  on a 风玫瑰图), in degrees clockwise from north, at the sector centre.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.errors import InputError
from farmland.io.formats import RawTable
from farmland.io.geometry import clean_lines, clean_polygons
from farmland.io.readers import _points
from farmland.io.reading import (
    MappingArg,
    Source,
    blank_cells,
    finish,
    match_input,
    open_input,
    place,
    report_unknown_values,
    require_geometry,
    text_column,
    vocabulary_values,
)
from farmland.io.values import Problems, id_strings, parse_boolean, parse_plain_numbers

__all__ = ["KARST_WORDS", "read_geology", "read_outfalls", "read_rivers", "read_wind_rose"]

log = logging.getLogger("farmland.io.readers")

_RIVER_LAYERS = ("rivers", "river", "河流", "水系", "河流水系", "HYDL")
_OUTFALL_LAYERS = ("outfalls", "outfall", "排污口", "入河排污口")
_GEOLOGY_LAYERS = ("geology", "地质", "岩性", "lithology")
#: lithology text that means karst (carbonate rock), matched case-insensitively anywhere in
#: the text unless negated (非碳酸盐岩, non-carbonate); 泥灰岩 (marl) contains 灰岩 and counts
KARST_WORDS = ("碳酸盐", "灰岩", "白云岩", "岩溶", "喀斯特", "karst", "limestone", "dolomite",
               "carbonate")
_KARST_PATTERN = re.compile("|".join(rf"(?<!非)(?<!non-)(?<!non ){w}" for w in KARST_WORDS))
#: the 16 compass points in order; sector k is centred on k × 22.5 degrees
COMPASS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
           "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")
CALM = "calm"
_DIRECTION_TEXT = (" (wind direction; accepted: degrees 0-360, the 16 compass points N, NNE "
                   "… NNW or their Chinese names 北, 北东北 …, and C/静风 for calm)")


# Rivers and canals ---------------------------------------------------------------------------
def read_rivers(path: Source, *, layer: str | None = None, crs: Any = None,
                target_crs: Any = None, mapping: MappingArg = None,
                encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read rivers and irrigation canals (河流、灌渠) as lines in flow direction.

    Parameters
    ----------
    path
        Line layer (GeoPackage, Shapefile, GeoJSON, FileGDB, GeoParquet) or a GeoDataFrame.
        **Each line must be digitised upstream → downstream**: its vertex order is taken as
        the flow direction.
    layer
        Layer to read (default: ``rivers``/``河流``/``水系`` if present, else the first).
    crs, target_crs, mapping, encoding
        As for :func:`farmland.io.read_parcels`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``river_id`` (from 河流编号 …, else ``R1, R2 …``; several lines may share an id),
        ``name`` (NA when absent), ``kind`` (``"river"`` or ``"canal"``, from a 类型 column,
        else ``"canal"`` for names containing 渠/canal/ditch, logged) and LineString
        geometries in the metric CRS. MultiLineStrings are split into one row per part
        (same attributes, each part in its own vertex order); empty and zero-length lines
        are dropped (both logged).

    Raises
    ------
    InputError
        Non-line geometry (points, water-surface polygons), an unrecognised 类型 value, a
        missing id where the file has an id column, no features. ``CRSError`` for CRS
        problems.
    """
    raw = open_input(path, layer, encoding, _RIVER_LAYERS)
    match = match_input(raw, "rivers", mapping, required=())
    require_geometry(raw, "lines (rivers and canals in flow direction)")
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids, rows = _ids(raw, src.get("river_id"), problems)
    names = text_column(frame, src, "name")
    out = pd.DataFrame({"river_id": ids, "name": names,
                        "kind": _river_kinds(frame, src, names, rows, problems, raw.file)},
                       index=frame.index)
    problems.raise_if_any()
    gdf = place(gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs),
                raw.file, crs, target_crs)
    return finish(clean_lines(gdf, rows, file=raw.file, what="river/canal"), raw.file)


def _ids(raw: RawTable, column: str | None, problems: Problems) -> tuple[pd.Series, pd.Series]:
    """Ids that may repeat (a river drawn in pieces, a plant with two outfalls) and the row
    labels for messages (the id, else 'feature N'); without an id column R1, R2 …"""
    if column is None:
        ids = pd.Series([f"R{i + 1}" for i in range(len(raw.frame))], index=raw.frame.index,
                        dtype="str")
        log.info("%s: no river id column (河流编号); lines numbered R1 … R%d", raw.file, len(ids))
        return ids, ids
    ids = id_strings(raw.frame[column])
    problems.add_mask("missing_id", ids.isna().to_numpy(), raw.labels, column, ids)
    return ids, ids.where(ids.notna(), raw.labels)


def _river_kinds(frame: pd.DataFrame, src: dict[str, str], names: pd.Series, rows: pd.Series,
                 problems: Problems, file: str) -> pd.Series:
    """``river``/``canal`` from the 类型 column, else from the name (…渠 is a canal)."""
    if "kind" in src:
        kinds = vocabulary_values(frame[src["kind"]], "river_kind")
        report_unknown_values(frame[src["kind"]], kinds, rows, src["kind"], "river_kind",
                              problems)
        return kinds.astype("str")
    text = names.fillna("").str.lower()
    canal = text.str.contains("渠") | text.str.contains("canal") | text.str.contains("ditch")
    log.info("%s: no type column (类型); %d line(s) whose name holds 渠/canal/ditch taken as "
             "canals, the other %d as rivers", file, int(canal.sum()), int((~canal).sum()))
    return pd.Series(np.where(canal, "canal", "river"), index=frame.index, dtype="str")


# Outfalls ------------------------------------------------------------------------------------
def read_outfalls(path: Source, *, layer: str | None = None, crs: Any = None,
                  target_crs: Any = None, mapping: MappingArg = None,
                  encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read outfalls (排污口): where each enterprise discharges into a river or canal.

    Parameters are those of :func:`read_rivers` (a CSV/XLSX with x/y or lon/lat columns
    is read like the soil samples; default layer ``outfalls``/``排污口``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``enterprise_id`` (企业编号, as in the pollution sources; an enterprise may have
        several outfalls), ``river_id`` (the receiving river or canal, NA when absent) and
        point geometries in the metric CRS.

    Raises
    ------
    InputError
        No 企业编号 column, a missing id, a non-point geometry, missing coordinates.
    """
    raw = open_input(path, layer, encoding, _OUTFALL_LAYERS)
    match = match_input(raw, "outfalls", mapping, required=("enterprise_id",),
                        coordinates=not raw.has_geometry)
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids, rows = _ids(raw, src["enterprise_id"], problems)
    out = pd.DataFrame({"enterprise_id": ids, "river_id": text_column(frame, src, "river_id")},
                       index=frame.index)
    return _points(raw, match, out, rows, rows, problems, crs, target_crs)


# Geology -------------------------------------------------------------------------------------
def read_geology(path: Source, *, layer: str | None = None, crs: Any = None,
                 target_crs: Any = None, mapping: MappingArg = None,
                 encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a geology (lithology) layer and mark the karst (carbonate rock) polygons.

    Parameters are those of :func:`read_rivers` (default layer ``geology``/``地质``/``岩性``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``lithology`` (text as written, NA when blank), ``karst`` (bool) and polygon
        geometries in the metric CRS. ``karst`` comes from a 岩溶 column (是/否, yes/no,
        true/false, 1/0); where that column is absent or blank, from the lithology text:
        True when it contains one of :data:`KARST_WORDS` (碳酸盐, 灰岩, 白云岩, 岩溶,
        喀斯特, karst, limestone, dolomite, carbonate) not preceded by 非 or "non", logged.

    Raises
    ------
    InputError
        No lithology column, a 岩溶 cell that is not yes/no, non-polygon geometry, no
        features. ``CRSError`` for CRS problems.
    """
    raw = open_input(path, layer, encoding, _GEOLOGY_LAYERS)
    match = match_input(raw, "geology", mapping, required=("lithology",))
    require_geometry(raw, "polygons")
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    lithology = text_column(frame, src, "lithology")
    if lithology.isna().any():
        log.warning("%s: %d polygon(s) without lithology (%s): not karst unless the 岩溶 "
                    "column says so", raw.file, int(lithology.isna().sum()),
                    ", ".join(raw.labels[lithology.isna()].head(5)))
    karst = _karst_flags(frame, src, lithology, raw.labels, problems, raw.file)
    problems.raise_if_any()
    out = pd.DataFrame({"lithology": lithology, "karst": karst}, index=frame.index)
    gdf = place(gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs),
                raw.file, crs, target_crs)
    gdf = clean_polygons(gdf, raw.labels, file=raw.file, what="geology polygons",
                         fix="give the lithology (岩性) polygon layer")
    return finish(gdf, raw.file)


def _karst_flags(frame: pd.DataFrame, src: dict[str, str], lithology: pd.Series,
                 rows: pd.Series, problems: Problems, file: str) -> np.ndarray:
    """Karst from the 岩溶 column where it has a value, else from the lithology words."""
    from_text = lithology.fillna("").str.lower().map(
        lambda text: _KARST_PATTERN.search(text) is not None).to_numpy(bool)
    if "karst" not in src:
        log.info("%s: karst taken from the lithology text (%s): %d of %d polygon(s)", file,
                 "/".join(KARST_WORDS[:5]), int(from_text.sum()), len(from_text))
        return from_text
    cells = frame[src["karst"]]
    flags = parse_boolean(cells)
    blank = blank_cells(cells).to_numpy()
    problems.add_mask("unknown_value", flags.isna().to_numpy() & ~blank, rows, src["karst"],
                      cells, " (karst; accepted: 是/否, yes/no, true/false, 1/0)")
    if blank.any():
        log.info("%s: %d polygon(s) with a blank '%s' cell: karst taken from the lithology "
                 "text", file, int(blank.sum()), src["karst"])
    return np.where(flags.isna().to_numpy(), from_text, flags.fillna(False).to_numpy(bool))


# Wind rose -----------------------------------------------------------------------------------
def read_wind_rose(path: Source, *, layer: str | None = None, mapping: MappingArg = None,
                   encoding: str | None = None) -> pd.DataFrame:
    """Read a wind rose (风向频率): one row per direction sector.

    Parameters
    ----------
    path
        CSV/XLSX (or a DataFrame) with a direction column (风向: degrees, or the 16 compass
        points ``N``, ``NNE`` … ``NNW`` or their Chinese names 北, 北东北 …, the direction
        the wind blows **from**), a frequency column (频率: percent or fractions; ``12.5%``
        accepted) and optionally the mean speed (平均风速, m/s). A calm row (``C``, 静风)
        is recognised.
    layer, mapping, encoding
        As for :func:`farmland.io.read_measures` (``layer`` is the sheet name for XLSX).

    Returns
    -------
    pandas.DataFrame
        ``direction_deg`` (meteorological degrees the wind blows from, clockwise from
        north, sector centre, in [0, 360)), ``frequency`` (share of the non-calm time,
        summing to 1) and ``speed_m_s`` when the file has speeds; sorted by direction.
        Frequencies summing to 99–101 % (or 0.99–1.01) are rescaled (logged); a calm row
        is left out and the sectors rescaled to the non-calm time (logged).

    Raises
    ------
    InputError
        Missing direction/frequency columns, an unknown direction text, a direction outside
        0–360 or given twice, a negative or non-numeric frequency or speed, frequencies
        that do not sum to about 100 % (or 1).
    """
    raw = open_input(path, layer, encoding, (), read_geometry=False)
    match = match_input(raw, "wind_rose", mapping, required=("direction", "frequency"))
    frame, rows = _first_row_back(raw, match.source["direction"])
    src, problems = match.source, Problems(raw.file)
    degrees = _directions(frame[src["direction"]], rows, src["direction"], problems)
    freq = _numbers(frame[src["frequency"]], rows, src["frequency"], problems, required=True)
    speed = (_numbers(frame[src["speed_m_s"]], rows, src["speed_m_s"], problems)
             if "speed_m_s" in src else None)
    problems.raise_if_any()
    share = _shares(freq, raw.file, src["frequency"])
    calm = np.isnan(degrees)
    if calm.all():
        raise InputError("no wind direction besides calm", file=raw.file,
                         column=src["direction"], fix="give one row per direction sector")
    if calm.any():
        log.info("%s: calm (静风) %.1f %% of the time left out; the sector frequencies are "
                 "shares of the non-calm time", raw.file, 100 * share[calm].sum())
    out = pd.DataFrame({"direction_deg": degrees[~calm],
                        "frequency": share[~calm] / share[~calm].sum()})
    if speed is not None:
        out["speed_m_s"] = speed[~calm]
    log.info("%s: read %d wind direction sector(s)", raw.file, len(out))
    return out.sort_values("direction_deg", kind="stable").reset_index(drop=True)


def _first_row_back(raw: RawTable, direction: str) -> tuple[pd.DataFrame, pd.Series]:
    """The rows and their labels, with the first data row put back when the table reader
    took it for a second header row (units or English names): it does so when every
    cell of that row under a numeric column is text, as in ``N,abc``. A wind direction
    (N, 北, 90 …) under the direction column is no header, so the row is data and its
    bad value is reported with the other problems, naming its line."""
    hint = raw.hints.get(direction)
    if raw.frame.empty or hint is None:
        return raw.frame, raw.labels
    numbers, _, _ = parse_plain_numbers(pd.Series([hint], dtype=object))
    if not (vocabulary_values(pd.Series([hint], dtype=object), "wind_direction").notna().iloc[0]
            or np.isfinite(numbers[0])):
        return raw.frame, raw.labels
    unit, _, number = str(raw.labels.iloc[0]).rpartition(" ")
    label = f"{unit} {int(number) - 1}" if number.isdigit() else f"{unit} 2".strip()
    first = pd.DataFrame([{c: raw.hints.get(c, "") for c in raw.frame.columns}])
    log.info("%s: %s read back as data (a wind direction '%s' is no header)", raw.file, label,
             hint)
    return (pd.concat([first, raw.frame], ignore_index=True),
            pd.concat([pd.Series([label]), raw.labels], ignore_index=True))


def _directions(cells: pd.Series, rows: pd.Series, column: str,
                problems: Problems) -> np.ndarray:
    """Degrees in [0, 360) per row, NaN for calm; problems recorded."""
    values, bad, censored = parse_plain_numbers(cells)
    names = vocabulary_values(cells, "wind_direction")
    text = bad | censored
    calm = text & (names == CALM).to_numpy()
    known = text & names.notna().to_numpy() & ~calm
    index = {name: k for k, name in enumerate(COMPASS)}
    values[known] = [index[n] * 22.5 for n in names[known]]
    values[calm] = np.nan
    blank = np.isnan(values) & ~text
    problems.add_mask("unknown_value", (text & ~known & ~calm) | blank, rows, column, cells,
                      _DIRECTION_TEXT)
    problems.add_mask("direction_range", np.isfinite(values) & ((values < 0) | (values > 360))
                      | np.isinf(values), rows, column, cells)
    values = np.where(values == 360.0, 0.0, values)
    seen = pd.Series(values).where(~np.isnan(values))
    problems.add_mask("duplicate_direction", (seen.duplicated(keep="first") & seen.notna())
                      .to_numpy(), rows, column, cells)
    return values


def _numbers(cells: pd.Series, rows: pd.Series, column: str, problems: Problems, *,
             required: bool = False) -> np.ndarray:
    """Plain numbers >= 0 (a trailing % allowed); blanks are NaN, or a problem if required."""
    stripped = cells.map(lambda v: v.strip().removesuffix("%").strip() if isinstance(v, str)
                         else v)
    values, bad, censored = parse_plain_numbers(stripped)
    problems.add_mask("not_a_number", bad | censored | np.isinf(values), rows, column, cells)
    problems.add_mask("negative_value", values < 0, rows, column, cells)
    if required:
        problems.add_mask("missing_value", np.isnan(values) & ~bad & ~censored, rows, column,
                          cells)
    return values


def _shares(freq: np.ndarray, file: str, column: str) -> np.ndarray:
    """Frequencies as fractions of 1: percent if they sum to 99-101, fractions if 0.99-1.01."""
    total = float(freq.sum())
    for scale, low, high, unit in ((100.0, 99.0, 101.0, "%"), (1.0, 0.99, 1.01, "")):
        if low <= total <= high:
            if abs(total - scale) > 1e-9:
                log.info("%s: column '%s' sums to %g%s; rescaled to %g%s", file, column,
                         round(total, 6), unit, scale, unit)
            return freq / total
    raise InputError("wind frequencies do not sum to 100 % (or to 1)", file=file,
                     column=column, value=round(total, 6),
                     fix="give the frequency of every direction sector (and of calm, 静风, "
                         "if the rose has it) so that they add up to 100 %")
