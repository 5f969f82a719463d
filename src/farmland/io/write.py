"""Atomic output writing and input hashing for :mod:`farmland.io.readers`.

An output is first written to a hidden temporary file in the destination folder and
renamed over the destination only when writing succeeded, so a crash never leaves
a half-written GeoPackage behind and an existing output is never touched unless
``overwrite=True``. GeoPackages are written with a fixed GDAL timestamp
(``OGR_CURRENT_DATE``) so the same data gives the same bytes; the run's real time
lives only in ``manifest.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from farmland.errors import FarmlandError, OutputError, OutputExistsError
from farmland.io.styles import write_styles

log = logging.getLogger(__name__)

#: write GeoPackage layers through Arrow (pyogrio >= 0.8 on GDAL >= 3.8; same fields)
_ARROW_WRITE = (tuple(int(p) for p in pyogrio.__version__.split(".")[:2]) >= (0, 8)
                and pyogrio.__gdal_version__ >= (3, 8, 0))

#: shapefile members hashed together by :func:`sha256_file`, in this order
SHAPEFILE_PARTS = (".shp", ".dbf", ".shx", ".prj", ".cpg")
FIXED_GPKG_DATE = "2000-01-01T00:00:00.000Z"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of an input, for manifests.

    A shapefile is hashed with its members ``.shp .dbf .shx .prj .cpg`` (those that
    exist, each preceded by its suffix); a folder (FileGDB) with every file in it,
    sorted by relative path, each preceded by that path.
    """
    path = Path(path)
    key = _file_identity(path)
    if key is not None and key in _HASHED:
        return _HASHED[key]
    digest = hashlib.sha256()
    if path.is_dir():
        for member in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(member.relative_to(path).as_posix().encode() + b"\0")
            _update(digest, member)
    elif path.suffix.lower() == ".shp":
        for suffix in SHAPEFILE_PARTS:
            member = next((m for m in (path.with_suffix(suffix), path.with_suffix(suffix.upper()))
                           if m.exists()), None)
            if member is not None:
                digest.update(suffix.encode() + b"\0")
                _update(digest, member)
    else:
        _update(digest, path)
    if key is not None:
        _HASHED[key] = digest.hexdigest()
    return digest.hexdigest()


#: SHA-256 of the plain files hashed in this process, by :func:`_file_identity` (a run
#: hashes its parcels for the manifest and for the parcel cache: once)
_HASHED: dict[tuple, str] = {}


def _file_identity(path: Path) -> tuple | None:
    """Path, size, inode and modification/change times (ns) of a plain file other than a
    shapefile: the same file unchanged; ``None`` for folders and shapefiles (hashed with
    their members each time)."""
    if path.suffix.lower() == ".shp" or not path.is_file():
        return None
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _update(digest: hashlib._Hash, member: Path) -> None:
    with member.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


#: name prefix of the staging folders of :func:`atomic_folder` (``tempfile.mkdtemp``), whose
#: files are moved up into their parent when the folder is done
STAGING_PREFIX = ".farmland-"
_STAGING = re.compile(re.escape(STAGING_PREFIX) + r"[a-z0-9_]{8}")


def final_path(path: str | os.PathLike[str]) -> Path:
    """Where a file written into an :func:`atomic_folder` staging folder ends up (the
    staging folder is gone after the run): ``out/.farmland-1g1oljdp/a.kml`` → ``out/a.kml``.
    Any other path is returned as it is. For log lines."""
    parts = Path(path).parts
    return Path(*[p for p in parts if not _STAGING.fullmatch(p)]) if parts else Path(path)


def refuse_existing(paths: Iterable[str | os.PathLike[str]], *, overwrite: bool = False) -> None:
    """The one overwrite guard, called before any work: raise if a folder of ``paths``
    cannot be written (:func:`refuse_read_only`), or if any of ``paths`` exists and
    ``overwrite`` is false.

    Raises
    ------
    OutputError
        A folder the outputs go to (or the nearest existing folder above it) is read-only
        or is a file.
    OutputExistsError
        Naming every path that exists (one message), with the ``--overwrite`` fix.
    """
    paths = [Path(p) for p in paths]
    for folder in sorted({p.parent for p in paths}):
        refuse_read_only(folder)
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise OutputExistsError(*existing)


def refuse_read_only(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` when ``folder`` cannot receive outputs: it (or, when it
    does not exist yet, the nearest folder above it that does) is read-only or a file.
    Outputs are written to a temporary name in the folder and renamed, so the folder's
    permission is what counts, not that of a file being replaced."""
    folder = Path(folder)
    existing = next((f for f in (folder, *folder.parents) if f.exists()), Path("."))
    if not existing.is_dir():
        raise OutputError(folder, f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(folder, f"the folder {existing} is read-only")


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike[str], *, overwrite: bool = False,
                  expected: Iterable[str] = ()) -> Iterator[Path]:
    """Write several outputs into ``folder`` all-or-nothing.

    Yields a hidden staging folder inside ``folder``. When the ``with`` block ends
    without error, every file and sub-folder written there replaces its namesake in
    ``folder``; on any error the staging folder is deleted and ``folder`` is left as
    it was. ``expected`` names (relative to ``folder``) are checked by the overwrite
    guard before anything is written; what is staged is checked again at the end.

    Raises
    ------
    OutputExistsError
        If an output exists and ``overwrite`` is false.
    OutputError
        If the operating system refuses a write (disk full, no permission …).
    """
    folder = Path(folder)
    refuse_existing((folder / name for name in expected), overwrite=overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise OutputError(folder, exc.strerror or str(exc)) from exc
    try:
        yield stage
        staged = sorted(stage.iterdir())
        refuse_existing((folder / p.name for p in staged), overwrite=overwrite)
        for item in staged:
            target = folder / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    except FarmlandError:
        raise
    except OSError as exc:
        raise OutputError(folder, exc.strerror or str(exc)) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log.debug("wrote %s", ", ".join(str(folder / p.name) for p in staged))


def write_outputs(folder: str | os.PathLike[str],
                  writers: Mapping[str, Callable[[Path], object]], *,
                  overwrite: bool = False) -> dict[str, Path]:
    """Write several named outputs into ``folder`` all-or-nothing.

    ``writers`` maps a file name to a function that writes that file at the path it is
    given (see :func:`csv_writer`, :func:`json_writer`). Returns name → final path.
    """
    folder = Path(folder)
    with atomic_folder(folder, overwrite=overwrite, expected=writers) as stage:
        for name, write in writers.items():
            write(stage / name)
    return {name: folder / name for name in writers}


def csv_writer(frame: pd.DataFrame, *, index: bool = False) -> Callable[[Path], None]:
    """Writer of ``frame`` as CSV, UTF-8 with BOM (Excel shows the Chinese intact)."""
    return lambda path: frame.to_csv(path, index=index, encoding="utf-8-sig")


# Floats in CSV files ---------------------------------------------------------------------
# A sum of areas carries float noise (1.1 + 2.2 = 3.3000000000000003), which a CSV shows as
# ``2651.1910000000003``. Tables keep their full values (every rate, gap and decision is
# computed from them); :func:`csv_ready` writes each float at :data:`SIGNIFICANT`
# significant digits, which drops the noise (it sits in the 16th-17th digit, and numpy's
# pairwise sums of a province's parcels keep it there) and nothing a county could measure
# (12 digits of a province's 10⁸ 亩 are 0.0001 亩): a per-parcel table still sums to its
# totals to 1e-6 亩. It is not a rounding to display precision: whatever reads these files
# (the report) rounds once, as it would the full values.
#: significant digits of a float written to a CSV (float64 holds 15-17)
SIGNIFICANT = 12


def significant(values, digits: int = SIGNIFICANT) -> np.ndarray:
    """``values`` at ``digits`` significant digits (NaN, infinities and 0 as they are):
    the float nearest the decimal ``f"{v:.{digits}g}"``."""
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.where(finite, np.floor(np.log10(np.abs(x))), 0.0)
    shift = (digits - 1 - exponent).astype(int)
    out = x.copy()
    # x·10^k rounded, then divided by the exact power of ten: the nearest float to the
    # decimal (10^k is exact up to k = 22; smaller values keep their last bits)
    ok = finite & (shift <= 22) & (shift >= -22)
    pos, neg = ok & (shift >= 0), ok & (shift < 0)
    out[pos] = np.round(x[pos] * 10.0 ** shift[pos]) / 10.0 ** shift[pos]
    out[neg] = np.round(x[neg] / 10.0 ** -shift[neg]) * 10.0 ** -shift[neg]
    return out


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose float columns are at :data:`SIGNIFICANT` significant
    digits, for a CSV writer; ``frame`` itself is not changed."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = significant(out[column].to_numpy(dtype=float, na_value=np.nan))
    return out


def json_writer(data: object) -> Callable[[Path], None]:
    """Writer of ``data`` as indented UTF-8 JSON (Chinese kept readable)."""
    return lambda path: path.write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Write ``path`` atomically.

    Yields a temporary path in the same folder (same suffix, hidden name). When the
    ``with`` block ends without error, the temporary file replaces ``path``; on any
    error it is deleted (with SQLite journal side files) and the error propagates.

    Parameters
    ----------
    path
        Final output path; its folder is created if needed.
    overwrite
        Replace an existing ``path``.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False (checked before and after).
    OutputError
        If the operating system refuses the write (disk full, no permission …); the
        temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> with atomic_write(out_dir / "summary.csv") as tmp:   # doctest: +SKIP
    ...     table.to_csv(tmp, index=False)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(path.parent, exc.strerror or str(exc)) from exc
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {tmp}")
        if path.exists():
            if not overwrite:
                raise OutputExistsError(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
        os.replace(tmp, path)
    except FarmlandError:  # OutputError is an OSError too: do not wrap it twice
        _remove_temporary(tmp)
        raise
    except OSError as exc:
        _remove_temporary(tmp)
        raise OutputError(path, exc.strerror or str(exc)) from exc
    except BaseException:
        _remove_temporary(tmp)
        raise
    finally:
        _remove_side_files(tmp)
    log.debug("wrote %s", path)


def _remove_temporary(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def _remove_side_files(tmp: Path) -> None:
    for side in tmp.parent.glob(tmp.name + "-*"):  # -journal, -wal, -shm
        side.unlink(missing_ok=True)


def write_gpkg_layers(path: str | os.PathLike[str], layers: Mapping[str, pd.DataFrame], *,
                      overwrite: bool = False, styles: bool = True) -> Path:
    """Write several layers into one GeoPackage atomically.

    Layers farmland knows (``parcels``, ``samples``, ``crops``, ``zones``, ``plan``, the
    flag layers) get their QGIS style as default style in a ``layer_styles`` table
    (:mod:`farmland.io.styles`), written before the file is renamed into place.

    Parameters
    ----------
    path
        Output ``.gpkg``.
    layers
        Layer name → GeoDataFrame (a plain DataFrame becomes an attribute table).
        Geometries are written in their CRS (farmland's metric CRS).
    overwrite
        Replace an existing file.
    styles
        Write the QGIS styles of the layers (the table is only created when a layer
        has a style).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If ``layers`` is empty.
    """
    if not layers:
        raise ValueError("write_gpkg_layers needs at least one layer")
    path = Path(path)
    with atomic_write(path, overwrite=overwrite) as tmp:
        replace_gpkg_layers(tmp, layers, styles=styles)
    log.debug("wrote %s (layers: %s)", path, ", ".join(layers))  # callers log final paths
    return path


def replace_gpkg_layers(path: str | os.PathLike[str], layers: Mapping[str, pd.DataFrame], *,
                        styles: bool = True) -> None:
    """Write ``layers`` into the GeoPackage ``path`` in place (created when absent), each
    replacing a layer of the same name, in this order, with the fixed GDAL timestamp and
    (``styles``) the QGIS styles of :func:`write_gpkg_layers`. Not atomic: for files in a
    staging folder or temporary files."""
    path = Path(path)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        existing = ({str(n) for n, _ in pyogrio.list_layers(path)} if path.exists()
                    else set())
        for name, frame in layers.items():
            # the Arrow path: the same fields and values, twice as fast for polygons
            pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG",
                                    use_arrow=_ARROW_WRITE,
                                    layer_options={"OVERWRITE": "YES"} if name in existing
                                    else None)
        if styles:
            write_styles(path, layers)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def sqlite_values(series: pd.Series) -> list:
    """The values of ``series`` as GDAL stores them in a GeoPackage's SQLite table, for a
    direct ``INSERT``/``UPDATE``: NULL for every missing marker, text columns as text,
    booleans 0/1, numbers as numbers."""
    missing = series.isna().to_numpy(bool)
    if series.dtype.kind == "b" or str(series.dtype) == "boolean":
        values = series.fillna(False).to_numpy(dtype=int).astype(object)
    else:
        values = series.to_numpy(dtype=object, copy=True)   # written below
        if series.dtype == object:  # text column: whatever is not missing as text
            values = np.array([v if isinstance(v, str) else str(v) for v in values],
                              dtype=object)
    values[missing] = None
    return values.tolist()
