"""Readers for county data: parcels, soil and crop samples, measures, sources, townships.

Each reader opens its input read-only and returns a NEW frame in the canonical
columns of ``docs/schema.md``, geometries in one metric CRS (``target_crs``, or
:func:`farmland.crs.metric_crs_for` of the data). Column names are matched through
the aliases in ``aliases.toml`` (Chinese and English, case-insensitive, units in
brackets ignored) or a user mapping (``{"their_name": "canonical"}``, a dict or a
TOML/JSON file, see :func:`read_mapping`).

Every problem in a file (non-numeric, negative, implausible values, pH outside
0–14, duplicate ids, …) is collected and raised once as an
:class:`~farmland.errors.InputError` naming the file, the first row/id and column
and the value, and listing the next few. Automatic decisions (encoding, CRS,
units, below-detection substitutes, repaired geometries) are logged.

Formats: GeoPackage, Shapefile, GeoJSON, FileGDB (``layer=``, e.g. ``DLTB``),
GeoParquet, CSV and XLSX with coordinate columns. See :mod:`farmland.io.formats`,
:mod:`farmland.io.values` and :mod:`farmland.io.geometry` for the details.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from farmland.errors import InputError, first_rows
from farmland.io.columns import (
    ColumnMatch,
    aliases,
    read_mapping,
    read_measure_names,
    unit_factor,
    unit_text,
)
from farmland.io.fields import (
    dlbm_codes,
    measure_class_column,
    measure_types,
    metals_list,
    net_area,
    parcel_landuse,
    sample_landuse,
    split_measures,
    township_code_column,
)
from farmland.io.formats import RawTable
from farmland.io.geometry import clean_points, clean_polygons, points_from_columns
from farmland.io.reading import (
    MappingArg,
    Source,
    accepted_text,
    check_exact_ids,
    finish,
    ids_and_rows,
    match_input,
    na_column,
    open_input,
    place,
    report_unknown_values,
    require_geometry,
    text_column,
    vocabulary_values,
    year_column,
)
from farmland.io.townships import assign_townships
from farmland.io.values import (
    BELOW_DETECTION,
    Problems,
    id_strings,
    parse_measurements,
    parse_plain_numbers,
    warn_not_detected,
)
from farmland.standards import CLASS_ELEMENTS, FLAG_ELEMENTS, ORGANIC_ITEMS

__all__ = [
    "concat_sample_files", "read_crop_samples", "read_mapping", "read_measures", "read_parcels", "read_soil_samples",
    "read_sources", "read_townships",
]

log = logging.getLogger(__name__)

CROP_ELEMENTS = ("cd", "pb", "hg", "as", "cr")
_PARCEL_LAYERS = ("DLTB", "parcels", "耕地", "耕地图斑", "图斑")
_TOWNSHIP_LAYERS = ("townships", "township", "乡镇", "XZQ")


# Parcels -------------------------------------------------------------------------------
def read_parcels(path: Source, *, layer: str | None = None, crs: Any = None,
                 target_crs: Any = None, mapping: MappingArg = None,
                 encoding: str | None = None,
                 townships: Source | None = None) -> gpd.GeoDataFrame:
    """Read farmland parcels (耕地图斑).

    Parameters
    ----------
    path
        Polygon file (GeoPackage, Shapefile, FileGDB folder, GeoJSON, GeoParquet), or a
        GeoDataFrame already in memory (read exactly like the same data in a file).
    layer
        Layer to read (default: ``DLTB``/``parcels`` if present, else the first).
    crs
        CRS to assume when the file declares none (e.g. ``"EPSG:4545"``).
    target_crs
        Metric CRS of the result (default: derived with ``metric_crs_for``).
    mapping
        Column mapping ``{their_name: canonical}`` or a TOML/JSON mapping file.
    encoding
        Text encoding of a shapefile DBF when its ``.cpg`` is absent or wrong.
    townships
        Township polygons (XZQMC, XZQDM) or a table of township codes and names, as a
        path or a frame: parcels are named by code (XZQDM = first 9 digits of ZLDWDM),
        else by location. Without it the parcels' own XZQMC is used, else the code
        (see :mod:`farmland.io.townships`); a village is never a township.

    Returns
    -------
    geopandas.GeoDataFrame
        ``parcel_id, dlbm, dlmc, landuse, net_area_m2 (m²), township, township_code,
        village, geometry`` (polygons, metric CRS). Empty geometries are dropped and
        invalid ones repaired (both logged).

    Raises
    ------
    InputError
        Missing ``parcel_id`` column, duplicate/missing ids, non-polygon geometry,
        bad areas, unreadable file, no features. ``CRSError`` for CRS problems.
    """
    raw = open_input(path, layer, encoding, _PARCEL_LAYERS)
    match = match_input(raw, "parcels", mapping, required=("parcel_id",))
    require_geometry(raw, "polygons")
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids, rows = ids_and_rows(raw, src["parcel_id"], problems)
    dlbm = (dlbm_codes(frame[src["dlbm"]], ids, raw.file) if "dlbm" in src
            else na_column(frame))
    out = pd.DataFrame({
        "parcel_id": ids,
        "dlbm": dlbm,
        "dlmc": text_column(frame, src, "dlmc"),
        "landuse": parcel_landuse(frame, src, dlbm, raw.file, ids),
        "net_area_m2": net_area(frame, src, rows, problems, raw.file),
        "township": text_column(frame, src, "township") if "township" in src
        else na_column(frame),
        "township_code": township_code_column(frame, src),
        "village": text_column(frame, src, "village"),
    }, index=frame.index)
    problems.raise_if_any()
    gdf = place(gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs),
                raw.file, crs, target_crs)
    gdf = finish(clean_polygons(gdf, ids, file=raw.file), raw.file)
    towns = None
    if townships is not None:
        towns = read_townships(townships, target_crs=gdf.crs, mapping=mapping,
                               allow_table=True)
    return assign_townships(gdf, towns, file=raw.file, columns=src)


# Soil and crop samples -------------------------------------------------------------------
def read_soil_samples(path: Source, *, layer: str | None = None, crs: Any = None,
                      target_crs: Any = None, mapping: MappingArg = None,
                      encoding: str | None = None,
                      below_detection: str = "half") -> gpd.GeoDataFrame:
    """Read soil samples (土壤点位).

    Parameters
    ----------
    path
        Point file, or CSV/XLSX with x/y (metres, needs ``crs`` unless the eastings
        carry a zone prefix) or lon/lat columns (EPSG:4490 assumed without ``crs``);
        or the same as an in-memory (Geo)DataFrame.
    below_detection
        Substitute for values below a known detection limit: ``"half"`` (½ DL,
        default), ``"limit"`` (DL) or ``"zero"``. ``ND`` without a limit → NaN.
    layer, crs, target_crs, mapping, encoding
        As for :func:`read_parcels` (``layer`` is the sheet name for XLSX).

    Returns
    -------
    geopandas.GeoDataFrame
        ``sample_id, ph, cd, hg, as, pb, cr`` (mg/kg) with ``<el>_censored``; the
        optional ``cu, ni, zn, hch, ddt, bap`` (+ censored), ``landuse`` and
        ``survey`` when present; ``year`` (Int64, NA when absent); point geometry in
        the metric CRS.

    Raises
    ------
    InputError
        Missing required columns, non-numeric/negative/implausible values, pH
        outside 0–14, duplicate ids, missing points — all problems of the file in one
        message. ``CRSError`` for CRS problems.
    """
    _check_below_detection(below_detection)
    raw = open_input(path, layer, encoding, ())
    match = match_input(raw, "soil", mapping, required=("sample_id", "ph", *CLASS_ELEMENTS),
                   coordinates=not raw.has_geometry)
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    ids, rows = ids_and_rows(raw, src["sample_id"], problems)
    out = pd.DataFrame({"sample_id": ids, "ph": _ph(frame[src["ph"]], rows, src["ph"],
                                                   problems)}, index=frame.index)
    optional = [e for e in (*FLAG_ELEMENTS, *ORGANIC_ITEMS) if e in src]
    out = out.join(_concentrations(raw, match, (*CLASS_ELEMENTS, *optional), rows, problems,
                                   below_detection, "soil"))
    if "landuse" in src:
        out["landuse"] = sample_landuse(frame[src["landuse"]], raw.file, src["landuse"])
    out["year"] = year_column(frame, src, rows, problems)
    if "survey" in src:
        out["survey"] = text_column(frame, src, "survey")
    return _with_source(_points(raw, match, out, ids, rows, problems, crs, target_crs), raw,
                        src["sample_id"])


def read_crop_samples(path: Source, *, layer: str | None = None, crs: Any = None,
                      target_crs: Any = None, mapping: MappingArg = None,
                      encoding: str | None = None,
                      below_detection: str = "half") -> gpd.GeoDataFrame:
    """Read crop (agricultural product) samples (农产品点位).

    Parameters are those of :func:`read_soil_samples`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``sample_id, crop`` (rice, milled_rice, wheat, maize, leafy_veg, root_veg,
        tuber_veg, other_veg), ``cd, pb, hg, as, cr`` (mg/kg edible part, NaN when
        not measured) with ``<el>_censored``, ``year`` (Int64), ``unit`` when a
        column is mapped to it, point geometry in the metric CRS.

    Raises
    ------
    InputError
        As for soil samples; also an unrecognised crop name (the message lists the
        accepted names) and a file without any of cd/pb/hg/as/cr.
    """
    _check_below_detection(below_detection)
    raw = open_input(path, layer, encoding, ())
    match = match_input(raw, "crops", mapping, required=("sample_id", "crop"),
                   coordinates=not raw.has_geometry)
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    if not any(e in src for e in CROP_ELEMENTS):
        raise InputError("no element column (need at least one of cd, pb, hg, as, cr)",
                         file=raw.file, fix=accepted_text(match, CROP_ELEMENTS))
    ids, rows = ids_and_rows(raw, src["sample_id"], problems)
    crop = vocabulary_values(frame[src["crop"]], "crop")
    report_unknown_values(frame[src["crop"]], crop, rows, src["crop"], "crop", problems)
    out = pd.DataFrame({"sample_id": ids, "crop": crop.astype("str")}, index=frame.index)
    out = out.join(_concentrations(raw, match, CROP_ELEMENTS, rows, problems, below_detection,
                                   "crops"))
    out["year"] = year_column(frame, src, rows, problems)
    if "unit" in src:
        out["unit"] = text_column(frame, src, "unit")
    return _with_source(_points(raw, match, out, ids, rows, problems, crs, target_crs), raw,
                        src["sample_id"])


def _with_source(gdf: gpd.GeoDataFrame, raw: RawTable, id_column: str) -> gpd.GeoDataFrame:
    """Note the input file and its own id column on the frame (``attrs["source"]``), for
    messages about several files read together (:func:`concat_sample_files`)."""
    gdf.attrs["source"] = {"file": raw.file, "id_column": id_column}
    return gdf


def concat_sample_files(frames: list[gpd.GeoDataFrame],
                        what: str = "soil samples") -> gpd.GeoDataFrame:
    """Several sample files (:func:`read_soil_samples` / :func:`read_crop_samples` results,
    same CRS) as one frame.

    Raises
    ------
    InputError
        If a sample id appears in two files, naming both files (the first pair), the
        ids and the file's own id column (e.g. 样品编号).
    """
    if len(frames) == 1:
        return frames[0]
    clashes = []
    for i, later in enumerate(frames):
        for j, first in enumerate(frames[:i]):
            common = first["sample_id"].isin(later["sample_id"].dropna())
            if common.any():
                clashes.append((j, i, first.loc[common, "sample_id"]))
    if clashes:
        pair, ids = clashes[0][:2], clashes[0][2]
        source = [frames[k].attrs.get("source", {}) for k in pair]
        files = [s.get("file", f"{what} file {k + 1}") for s, k in zip(source, pair, strict=True)]
        columns = list(dict.fromkeys(s.get("id_column", "sample_id") for s in source))
        more = f" (+{len(clashes) - 1} more pair(s) of files)" if len(clashes) > 1 else ""
        raise InputError(f"{len(ids)} sample id(s) appear both in this file and in "
                         f"{files[1]}{more}; each sample needs its own id across all "
                         f"{what} files", file=files[0], row=first_rows(ids),
                         column="' / '".join(columns),
                         fix=f"give re-sampled points new ids in one of the files (e.g. "
                             f"{ids.iloc[0]}-2), or remove the rows repeated in both files")
    merged = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=frames[0].crs)


def _check_below_detection(option: str) -> None:
    if option not in BELOW_DETECTION:
        raise ValueError(f"below_detection must be one of {sorted(BELOW_DETECTION)}, "
                         f"got {option!r}")


def _ph(raw: pd.Series, rows: pd.Series, column: str, problems: Problems) -> np.ndarray:
    values, bad, censored = parse_plain_numbers(raw)
    problems.add_non_numeric(bad, rows, column, raw, "non_numeric_ph")
    problems.add_mask("censored_ph", censored, rows, column, raw)
    problems.add_mask("infinite", np.isinf(values), rows, column, raw)
    problems.add_mask("ph_range", np.isfinite(values) & ((values < 0) | (values > 14)), rows,
                      column, raw)
    return values


def _concentrations(raw: RawTable, match: ColumnMatch, elements: tuple[str, ...],
                    rows: pd.Series, problems: Problems, below_detection: str,
                    kind: str) -> pd.DataFrame:
    """Element columns (mg/kg) and their ``_censored`` flags; absent ones → NaN/False."""
    limits = aliases()["plausible_max"][kind]
    values, flags = {}, {}
    for el in elements:
        col = match.source.get(el)
        if col is None:
            values[el], flags[f"{el}_censored"] = np.nan, False
            continue
        cells = raw.frame[col]
        factor, token = unit_factor(col, raw.hints.get(col))
        if factor != 1.0:
            log.info("%s: column '%s' is in %s; values divided by %g to mg/kg", raw.file, col,
                     unit_text(token), 1 / factor)
        m = parse_measurements(cells, factor=factor, below_detection=below_detection)
        problems.add_non_numeric(m.bad, rows, col, cells)
        problems.add_mask("infinite", np.isinf(m.values), rows, col, cells)
        problems.add_mask("negative", m.values < 0, rows, col, cells)
        problems.add_mask("implausible", np.isfinite(m.values) & (m.values > limits[el]), rows,
                          col, cells, f" (above {limits[el]:g} mg/kg)")
        warn_not_detected(m.nd_no_limit, rows, col, raw.file, kind)
        values[el], flags[f"{el}_censored"] = m.values, m.censored
    return pd.DataFrame({**values, **flags}, index=raw.frame.index)


def _points(raw: RawTable, match: ColumnMatch, out: pd.DataFrame, ids: pd.Series,
            rows: pd.Series, problems: Problems, crs: Any, target_crs: Any,
            polygons_to_points: bool = False) -> gpd.GeoDataFrame:
    if raw.has_geometry:
        problems.raise_if_any()
        geometry = gpd.GeoSeries(raw.frame.geometry.values, index=out.index, crs=raw.frame.crs)
    else:
        geometry = points_from_columns(raw.frame, match, rows, file=raw.file, crs=crs,
                                       problems=problems).geometry
        problems.raise_if_any()
    gdf = gpd.GeoDataFrame(out, geometry=geometry, crs=geometry.crs)
    gdf = clean_points(gdf, ids, file=raw.file, polygons_to_points=polygons_to_points)
    return finish(place(gdf, raw.file, crs, target_crs), raw.file)


# Measures, sources, townships --------------------------------------------------------------
def read_measures(path: Source, *, layer: str | None = None, mapping: MappingArg = None,
                  encoding: str | None = None) -> pd.DataFrame:
    """Read the measures ledger (措施台账); geometry, if any, is ignored.

    A cell naming several measures (``品种替代、水分调控``) gives one row per measure.

    Returns
    -------
    pandas.DataFrame
        ``parcel_id, measure_type, measure_class`` (``safe_use``/``strict_control``,
        derived from the type when the file has no class column), ``year`` (Int64).

    Raises
    ------
    InputError
        Missing ``parcel_id``/``measure_type`` columns, missing parcel ids, a measure
        type that is not recognised while the class is not given, bad classes or
        years (all problems at once).
    """
    raw = open_input(path, layer, encoding, (), read_geometry=False)
    match = match_input(raw, "measures", mapping, required=("parcel_id", "measure_type"))
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    names = (read_measure_names(mapping) if mapping is not None
             and not isinstance(mapping, Mapping) else {})
    ids = id_strings(frame[src["parcel_id"]])
    rows = ids.where(ids.notna(), raw.labels)
    check_exact_ids(raw, src["parcel_id"], ids, rows, problems)
    if ids.isna().any():
        log.warning("%s: %d measure row(s) without a parcel id (%s): kept, reported in "
                    "unknown_measures and never counted — fill in the 图斑编号",
                    raw.file, int(ids.isna().sum()), first_rows(raw.labels[ids.isna()]))
    split: dict[object, list[str]] = {}  # a ledger repeats few cells: split each once

    def measures_in(cell: object) -> list[str]:
        if cell not in split:
            split[cell] = split_measures(cell, names)
        return list(split[cell])

    out = pd.DataFrame({
        "parcel_id": ids,
        "measure_type": frame[src["measure_type"]].map(measures_in),
        "measure_class": measure_class_column(frame, src, rows, problems),
        "year": year_column(frame, src, rows, problems),
        "_row": rows,
    }).explode("measure_type")
    out = measure_types(out, src, problems, extra=names)
    problems.raise_if_any()
    return out.drop(columns="_row").reset_index(drop=True)


def read_sources(path: Source, *, layer: str | None = None, crs: Any = None,
                 target_crs: Any = None, mapping: MappingArg = None,
                 encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read pollution sources (污染源 / 重点企业) as points.

    Returns
    -------
    geopandas.GeoDataFrame
        ``source_id`` (from the file, else ``S1, S2 …``), ``name``, ``industry``,
        ``metals`` (comma list; element names such as 镉、铅 become ``cd,pb``, other
        pollutants are kept as written), point geometry in the metric CRS (polygons
        are replaced by a point inside them, logged).
    """
    raw = open_input(path, layer, encoding, ())
    match = match_input(raw, "sources", mapping, required=(), coordinates=not raw.has_geometry)
    src, frame, problems = match.source, raw.frame, Problems(raw.file)
    if "source_id" in src:
        ids, rows = ids_and_rows(raw, src["source_id"], problems)
    else:
        ids = pd.Series([f"S{i + 1}" for i in range(len(frame))], index=frame.index, dtype="str")
        rows = ids
    out = pd.DataFrame({"source_id": ids, "name": text_column(frame, src, "name"),
                        "industry": text_column(frame, src, "industry"),
                        "metals": metals_list(frame[src["metals"]]) if "metals" in src
                        else na_column(frame)}, index=frame.index)
    return _points(raw, match, out, ids, rows, problems, crs, target_crs,
                   polygons_to_points=True)


def read_townships(path: Source, *, layer: str | None = None, crs: Any = None,
                   target_crs: Any = None, mapping: MappingArg = None,
                   encoding: str | None = None,
                   allow_table: bool = False) -> gpd.GeoDataFrame | pd.DataFrame:
    """Read township boundaries (乡镇界线), or with ``allow_table`` a township table.

    Returns
    -------
    geopandas.GeoDataFrame or pandas.DataFrame
        ``township``, ``township_code`` (NA when absent), polygons in the metric CRS.
        With several layers the one named ``townships``/``乡镇``/``XZQ`` is read. With
        ``allow_table``, a file without geometry that has township codes (XZQDM, XZQMC)
        comes back as a plain table, for naming parcels by their code.
    """
    raw = open_input(path, layer, encoding, _TOWNSHIP_LAYERS)
    match = match_input(raw, "townships", mapping, required=("township",))
    frame, src = raw.frame, match.source
    names = text_column(frame, src, "township")
    out = pd.DataFrame({"township": names, "township_code": township_code_column(frame, src)},
                       index=frame.index)
    if allow_table and not raw.has_geometry and out["township_code"].notna().any():
        return out.reset_index(drop=True)
    require_geometry(raw, "polygons")
    gdf = place(gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=frame.crs),
                raw.file, crs, target_crs)
    labels = names.where(names.notna(), raw.labels)
    return finish(clean_polygons(gdf, labels, file=raw.file), raw.file)
