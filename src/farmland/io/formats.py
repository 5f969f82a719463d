"""Opening input files for :mod:`farmland.io.readers`: format, layer, text encoding, headers.

Every reader here opens its file read-only and returns the raw table; mapping to
canonical columns happens in :mod:`farmland.io.readers`.

* Vector data (GeoPackage, Shapefile, GeoJSON, FileGDB, zipped shapefile …) through
  pyogrio. Shapefile DBF text: the ``.cpg`` when present; otherwise UTF-8, falling
  back to GBK (cp936) when UTF-8 decoding fails (logged).
* GeoParquet through geopandas (needs pyarrow).
* CSV: UTF-8 with or without BOM (also UTF-16 with BOM), falling back to GBK
  (decoded as GB18030, its superset; logged). Delimiter: comma, tab, semicolon or
  ``|``, whichever the header line holds most.
* Excel (.xlsx/.xlsm): first sheet, or ``layer=`` as the sheet name.
* CSV/Excel with two header rows (e.g. Chinese names over units or English names,
  merged header cells): recognised when the second row is text where the rows
  below hold numbers; the two rows are combined (logged).
"""

from __future__ import annotations

import io as _io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from farmland.errors import InputError
from farmland.io import read_cache
from farmland.io.columns import all_alias_names, normalise_name
from farmland.io.values import parse_cell

log = logging.getLogger(__name__)

TABLE_SUFFIXES = {".csv", ".txt", ".tsv"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
_SEPARATOR_CANDIDATES = (",", "\t", ";", "|")


@dataclass
class RawTable:
    """A file's table as read, before canonical mapping."""

    frame: pd.DataFrame  # a GeoDataFrame when the file has geometry
    file: str
    kind: str  # "vector", "csv", "excel", "parquet"
    hints: dict[str, str] = field(default_factory=dict)  # column → second header text
    labels: pd.Series | None = None  # "line 5" / "feature 3" per row, for messages
    dbf: bool = False  # a shapefile: field names cut to 10 bytes by its DBF

    @property
    def has_geometry(self) -> bool:
        """Whether the table carries a geometry column."""
        return "geometry" in self.frame.columns and hasattr(self.frame, "crs")


def open_table(path: str | Path | pd.DataFrame, *, layer: str | None = None, encoding: str | None = None,
               preferred_layers: tuple[str, ...] = (), read_geometry: bool = True) -> RawTable:
    """Read any supported input file, or an in-memory (Geo)DataFrame, into a
    :class:`RawTable` (read-only).

    Raises
    ------
    InputError
        If the file does not exist, cannot be read, has an unknown format, or the
        layer / sheet does not exist.
    """
    if isinstance(path, pd.DataFrame):
        return table_from_frame(path)
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=path,
                         fix="export or copy the data again; the transfer may have failed")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES and not path.is_dir():
        return _read_csv(path, encoding)
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, layer)
    if suffix == ".xls":
        raise InputError("old Excel .xls files are not supported", file=path,
                         fix="save the sheet as .xlsx or .csv (UTF-8) and read that")
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    return _read_vector(path, layer, encoding, preferred_layers, read_geometry)


#: how an in-memory frame is named in messages (where a file name would stand)
FRAME_NAME = "(in-memory {kind})"


def table_from_frame(frame: pd.DataFrame) -> RawTable:
    """An in-memory (Geo)DataFrame as a :class:`RawTable`, so it goes through exactly the
    aliases, value parsing, land-use derivation and checks of the same data in a file.

    The frame is copied, never modified. Rows are named ``row 1``, ``row 2`` … in
    messages; a GeoDataFrame keeps its geometry and CRS.
    """
    kind = type(frame).__name__
    out = frame.copy()
    if hasattr(out, "geometry") and hasattr(out, "crs"):
        try:
            geom_name = out.geometry.name
        except AttributeError:  # a GeoDataFrame without an active geometry column
            geom_name = None
        if geom_name not in (None, "geometry"):
            out = out.rename_geometry("geometry")
    out.columns = [str(c) for c in out.columns]
    out = out.reset_index(drop=True)
    labels = pd.Series([f"row {i + 1}" for i in range(len(out))], index=out.index)
    return RawTable(out, FRAME_NAME.format(kind=kind), "frame", labels=labels)


# Vector -------------------------------------------------------------------------------
def _read_vector(path: Path, layer: str | None, encoding: str | None,
                 preferred: tuple[str, ...], read_geometry: bool) -> RawTable:
    layer = choose_layer(path, layer, preferred)
    kwargs = {"layer": layer, "read_geometry": read_geometry}
    try:
        if encoding is None and _is_shapefile(path) and not _sidecar(path, ".cpg"):
            frame = _read_shapefile_guessing_encoding(path, kwargs)
        else:
            frame = read_cache.read_dataframe(path, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, LookupError,
            RuntimeError) as exc:
        raise InputError(f"cannot read the file ({_short(exc)})", file=path,
                         fix="check that it is a valid GeoPackage, Shapefile, GeoJSON, FileGDB, "
                             "GeoParquet, CSV or XLSX file") from None
    labels = pd.Series([f"feature {i + 1}" for i in range(len(frame))], index=frame.index)
    return RawTable(frame, str(path), "vector", labels=labels, dbf=_is_dbf_layer(path, layer))


def _is_dbf_layer(path: Path, layer: str | None) -> bool:
    """Whether the layer is a shapefile (a DBF table, whose field names hold 10 bytes)."""
    if path.suffix.lower() in {".shp", ".dbf"}:
        return True
    if path.suffix.lower() in {".gpkg", ".geojson", ".json", ".gdb", ".fgb"}:
        return False
    try:
        return pyogrio.read_info(path, layer=layer).get("driver") == "ESRI Shapefile"
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, RuntimeError):
        return False  # only a hint for column matching


def _read_shapefile_guessing_encoding(path: Path, kwargs: dict) -> pd.DataFrame:
    try:
        return pyogrio.read_dataframe(path, encoding="utf-8", **kwargs)
    except UnicodeDecodeError:
        log.info("%s: no .cpg file and the DBF is not UTF-8; decoding it as GBK (cp936)", path)
        return pyogrio.read_dataframe(path, encoding="cp936", **kwargs)


def _encoding_error(path: Path, encoding: str | None, exc: UnicodeDecodeError) -> InputError:
    """The error for a DBF whose text cannot be decoded, with what the analyst can do."""
    problem = f"text that is not valid {exc.encoding} ({_short(exc)})"
    cut = _cut_utf8_names(path)
    if cut:
        return InputError(f"{problem}: field name(s) {', '.join(cut)} are UTF-8 Chinese names "
                          "cut in the middle of a character at the 10 bytes a shapefile field "
                          "name holds", file=path,
                          fix="export the layer as GeoPackage (no length limit), or rename "
                              "those fields to short names (at most 3 Chinese characters, or "
                              "the DLTB names such as TBDLMJ) before writing the shapefile")
    cpg = _sidecar(path, ".cpg") if _is_shapefile(path) else None
    if encoding is None and cpg is not None:
        declared = cpg.read_text(encoding="ascii", errors="replace").strip()
        gbk = declared.lower().replace(" ", "") in {"gbk", "936", "cp936", "ansi936", "gb2312",
                                                    "gb18030"}
        other = "UTF-8" if gbk else "GBK"
        return InputError(f"{problem}: the code page file {cpg.name} says '{declared}' but the "
                          "DBF text is in another encoding", file=path,
                          fix=f"write {other} in {cpg.name} (most Chinese shapefiles are GBK, "
                              "newer exports UTF-8), or "
                              f"delete {cpg.name} so that farmland reads UTF-8, else GBK (logged); "
                              "or export the layer as GeoPackage")
    return InputError(problem, file=path,
                      fix="export the layer as GeoPackage (UTF-8); from Python, pass the "
                          "encoding of the file (e.g. encoding='gbk')")


def _cut_utf8_names(path: Path) -> list[str]:
    """Field names of a shapefile's DBF that are UTF-8 cut inside a character (GDAL cuts
    a name at 10 bytes): ``'图斑地…'`` for the bytes of 图斑地 and half of 类."""
    dbf = _sidecar(path, ".dbf") if _is_shapefile(path) else None
    try:
        head = dbf.read_bytes()[:65536] if dbf is not None else b""
    except OSError:
        return []
    names = []
    for start in range(32, len(head) - 31, 32):
        raw = head[start:start + 11].split(b"\0", 1)[0]
        if not raw or raw[0] == 0x0D:
            break
        for k in (1, 2, 3):
            try:
                text = raw[:-k].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if raw[-k] >= 0xC0 and len(raw) >= 10:
                names.append(f"'{text}…'")
            break
    return names


def _is_shapefile(path: Path) -> bool:
    return path.suffix.lower() == ".shp"


def _sidecar(path: Path, suffix: str) -> Path | None:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def layer_names(path: Path) -> list[str]:
    """The layers of a vector file; :class:`InputError` when it cannot be opened."""
    try:
        return [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except (pyogrio.errors.DataSourceError, RuntimeError) as exc:
        raise InputError(f"cannot open the file ({_short(exc)})", file=path,
                         fix="check that it is a valid GeoPackage, Shapefile, GeoJSON, FileGDB, "
                             "GeoParquet, CSV or XLSX file") from None


def choose_layer(path: Path, layer: str | None, preferred: tuple[str, ...]) -> str | None:
    """The layer to read: ``layer`` if given (must exist), else a preferred one, else the first."""
    names = layer_names(path)
    if layer is None:  # QGIS's style table is presentation, never data
        names = [n for n in names if n.lower() != "layer_styles"]
    if not names:
        raise InputError("the file holds no layer", file=path)
    if layer is not None:
        exact = {n.lower(): n for n in names}
        if layer.lower() not in exact:
            raise InputError(f"no layer '{layer}'", file=path, fix=f"layers: {', '.join(names)}")
        return exact[layer.lower()]
    if len(names) == 1:
        return names[0]
    wanted = [normalise_name(p) for p in preferred]
    for name in names:
        if normalise_name(name) in wanted:
            log.info("%s: reading layer '%s' of %s", path, name, names)
            return name
    log.info("%s: reading the first layer '%s' of %s; pass layer= to choose another",
             path, names[0], names)
    return names[0]


def _read_parquet(path: Path) -> RawTable:
    import geopandas as gpd

    try:
        frame = gpd.read_parquet(path)
    except ImportError as exc:
        raise InputError(f"reading GeoParquet needs pyarrow ({_short(exc)})", file=path,
                         fix="pip install pyarrow, or convert the file to GeoPackage") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the file ({_short(exc)})", file=path) from None
    labels = pd.Series([f"feature {i + 1}" for i in range(len(frame))], index=frame.index)
    return RawTable(frame.reset_index(drop=True), str(path), "parquet", labels=labels)


# CSV / Excel ---------------------------------------------------------------------------
def detect_text_encoding(data: bytes, file: object) -> str:
    """Encoding of a CSV file: BOM, else UTF-8, else GBK (as GB18030), logged."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        raise InputError("the text is neither UTF-8 nor GBK", file=file,
                         fix="save the file as UTF-8 CSV") from None
    log.info("%s: not UTF-8; decoded as GBK (GB18030)", file)
    return "gb18030"


def _read_csv(path: Path, encoding: str | None) -> RawTable:
    data = path.read_bytes()
    enc = encoding or detect_text_encoding(data, path)
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InputError(f"cannot decode the file as {enc} ({exc})", file=path) from None
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    sep = max(_SEPARATOR_CANDIDATES, key=first.count)
    if sep != ",":
        log.info("%s: columns separated by %r", path, sep)
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=sep, header=None, dtype=str,
                            keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read the CSV ({_short(exc)})", file=path,
                         fix="check the delimiters and quotes") from None
    return _with_header(frame, path, "csv", "line")


def _read_excel(path: Path, sheet: str | None) -> RawTable:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl style warnings
            frame = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, header=None,
                                  dtype=object)
    except ValueError as exc:
        raise InputError(f"cannot read the sheet ({_short(exc)})", file=path,
                         fix="pass the sheet name as layer=") from None
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise InputError(f"cannot read the Excel file ({_short(exc)})", file=path) from None
    return _with_header(frame, path, "excel", "row")


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _blank_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Boolean frame: cell is NA or only whitespace."""
    text = frame.apply(lambda col: col.astype("str").str.strip().eq("")).fillna(False)
    return frame.isna() | text.astype(bool)


def _with_header(frame: pd.DataFrame, path: Path, kind: str, unit: str) -> RawTable:
    """Use the first row (or the first two rows) as the header."""
    blank_rows = _blank_cells(frame).all(axis=1)
    frame = frame[~blank_rows]
    if frame.empty:
        raise InputError("the file is empty", file=path)
    title = _title_row(frame)
    if title is not None:
        log.info("%s: %s %d read as a title (%r) and skipped; the header is the next row",
                 path, unit, int(frame.index[0]) + 1, title)
        frame = frame.iloc[1:]
    two_rows = _second_row_is_header(frame)
    header_rows = 2 if two_rows else 1
    names, hints = _header_names(frame.iloc[:header_rows], two_rows)
    if two_rows:
        log.info("%s: %s %d read as a second header row (units or English names)",
                 path, unit, int(frame.index[1]) + 1)
    body = frame.iloc[header_rows:].copy()
    body.columns = names
    body = body.reset_index().rename(columns={"index": "__row__"})
    labels = body.pop("__row__").map(lambda i: f"{unit} {int(i) + 1}")
    return RawTable(body, str(path), kind, hints=hints, labels=labels)


def _title_row(frame: pd.DataFrame) -> str | None:
    """Text of a title row above the header (one filled cell, e.g. a merged title, over
    a row of several names), else ``None``."""
    if len(frame) < 2 or frame.shape[1] < 3:
        return None
    first = [v for v in frame.iloc[0] if not _blank(v)]
    second = [v for v in frame.iloc[1] if not _blank(v)]
    if len(first) == 1 and len(second) >= 2 and not pd.notna(
            pd.to_numeric(pd.Series([first[0]]), errors="coerce")[0]):
        return str(first[0]).strip()
    return None


def _second_row_is_header(frame: pd.DataFrame) -> bool:
    if len(frame) < 3:
        return False
    second, body = frame.iloc[1], frame.iloc[2:12]
    numeric = body.apply(lambda col: pd.to_numeric(col, errors="coerce").notna().mean() >= 0.5)
    cells = [second[c] for c in numeric.index[numeric.to_numpy()] if not _blank(second[c])]
    if not cells:
        return False
    return all(pd.isna(pd.to_numeric(pd.Series([c]), errors="coerce")[0])
               and parse_cell(str(c))[0] == "bad" for c in cells)


def _header_names(rows: pd.DataFrame, two_rows: bool) -> tuple[list[str], dict[str, str]]:
    top = [None if _blank(v) else str(v).strip() for v in rows.iloc[0]]
    if not two_rows:
        names = [t if t is not None else f"column_{i + 1}" for i, t in enumerate(top)]
        return _unique(names), {}
    filled = pd.Series(top, dtype=object).ffill().tolist()
    second = [None if _blank(v) else str(v).strip() for v in rows.iloc[1]]
    known = all_alias_names()
    names, hints = [], {}
    for i, (own, merged, sub) in enumerate(zip(top, filled, second, strict=True)):
        if own is not None and normalise_name(own) in known:
            name, hint = own, sub
        elif sub is not None and normalise_name(sub) in known:
            name, hint = sub, merged
        else:
            name = " ".join(t for t in (merged, sub) if t) or f"column_{i + 1}"
            hint = None
        names.append(name)
        if hint:
            hints[name] = hint
    names = _unique(names)
    return names, {n: h for n, h in hints.items() if n in names}


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            new = f"{name}.{seen[name]}"
            log.info("duplicate column name '%s' renamed to '%s'", name, new)
            out.append(new)
        else:
            seen[name] = 0
            out.append(name)
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
