"""Atomic output writing and input hashing for :mod:`farmland.io`.

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
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd
import pyogrio

from farmland.errors import FarmlandError, OutputError, OutputExistsError

log = logging.getLogger(__name__)

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
    return digest.hexdigest()


def _update(digest: hashlib._Hash, member: Path) -> None:
    with member.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


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
                      overwrite: bool = False) -> Path:
    """Write several layers into one GeoPackage atomically.

    Parameters
    ----------
    path
        Output ``.gpkg``.
    layers
        Layer name → GeoDataFrame (a plain DataFrame becomes an attribute table).
        Geometries are written in their CRS (farmland's metric CRS).
    overwrite
        Replace an existing file.

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
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        with atomic_write(path, overwrite=overwrite) as tmp:
            for name, frame in layers.items():
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    log.info("wrote %s (layers: %s)", path, ", ".join(layers))
    return path
