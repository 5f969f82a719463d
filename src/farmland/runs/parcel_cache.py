"""The checked parcels of a workspace, kept for the next run that reads the same parcels
the same way (issue 19: reading and checking a million parcels takes longer than the
rest of an incremental run's input).

A run with a workspace stores what :func:`farmland.io.readers.read_parcels` returned — the
checked, repaired, reprojected parcels — as GeoParquet in ``<workspace>.cache/`` (beside
the workspace file). The file's name is a SHA-256 of what the result depends on in the
inputs: the parcels file's content (SHA-256 of every member), the layer, ``--crs``, the
column mapping and the townships file's content; its metadata hold the fingerprint of the
farmland package's source (every module and data file) and the messages the reading
logged. A hit needs both to match, returns the stored frame (the same values, types, index
and CRS) and logs the stored messages again: stale data cannot be served, another input is
another name and another code a miss. Only the newest entry is kept; a missing, unreadable
or unwritable cache only means reading the file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow.parquet as pq

import farmland
from farmland.io.write import sha256_file

__all__ = ["cache_folder", "cached_parcels"]

log = logging.getLogger(__name__)

_PREFIX = "parcels-"
_META = b"farmland_parcel_cache"


def cache_folder(workspace: str | os.PathLike) -> Path:
    """``<workspace file>.cache`` beside the workspace."""
    workspace = Path(workspace)
    return workspace.with_name(workspace.name + ".cache")


def cached_parcels(read: Callable[[], gpd.GeoDataFrame], *, workspace: str | os.PathLike | None,
                   parcels: str | os.PathLike, layer: str | None, crs: str | None,
                   mapping: dict | None, townships: str | os.PathLike | None
                   ) -> gpd.GeoDataFrame:
    """``read()`` (the parcels as read and checked), or the stored result of the same read."""
    if workspace is None:
        return read()
    folder = cache_folder(workspace)
    path = folder / f"{_PREFIX}{_key(parcels, layer, crs, mapping, townships)}.parquet"
    code = _code_fingerprint()
    if path.is_file():
        try:
            meta = json.loads(pq.read_schema(path).metadata[_META])
            frame = gpd.read_parquet(path) if meta["code"] == code else None
        except Exception as exc:  # noqa: BLE001 - a broken cache only means reading
            log.info("parcel cache %s not readable (%s): reading the parcels", path, exc)
        else:
            if frame is not None:
                for name, level, text in meta["messages"]:
                    logging.getLogger(name).log(level, "%s", text)
                log.info("parcels taken from the cache %s (same file, options and code)", path)
                return frame
    records: list[tuple[str, int, str]] = []
    handler = _Recorder(records)
    logging.getLogger("farmland").addHandler(handler)
    try:
        frame = read()
    finally:
        logging.getLogger("farmland").removeHandler(handler)
    if frame.attrs:  # not kept by Parquet: such a frame is not cached
        return frame
    try:
        _store(path, frame, {"code": code, "messages": records})
    except (OSError, ValueError) as exc:
        log.info("parcel cache not written to %s (%s)", folder, exc)
    return frame


class _Recorder(logging.Handler):
    def __init__(self, records: list) -> None:
        super().__init__(logging.NOTSET)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _store(path: Path, frame: gpd.GeoDataFrame, meta: dict) -> None:
    """Write the entry (a temporary name, then renamed) and remove the older entries."""
    try:  # geopandas' GeoParquet table (with its "geo" metadata): a private function
        from geopandas.io.arrow import _geopandas_to_arrow
    except ImportError as exc:  # another geopandas: no cache, not a failed run
        raise ValueError(f"this geopandas cannot write the cache ({exc})") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _geopandas_to_arrow(frame)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _META: json.dumps(meta, ensure_ascii=False)})
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.parquet")
    try:
        pq.write_table(table, tmp, compression="snappy")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for old in path.parent.glob(f"{_PREFIX}*"):
        if old.name != path.name:
            with contextlib.suppress(OSError):
                old.unlink()


def _key(parcels, layer, crs, mapping, townships) -> str:
    parts: dict[str, Any] = {
        "parcels": sha256_file(parcels), "layer": layer, "crs": crs,
        "mapping": mapping, "townships": None if townships is None else
        (sha256_file(townships) if Path(townships).exists() else str(townships))}
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@functools.cache
def _code_fingerprint() -> str:
    """SHA-256 of every source file of the farmland package (and its version), once per
    process (the code a process runs does not change under it)."""
    root = Path(farmland.__file__).parent
    digest = hashlib.sha256(farmland.__version__.encode())
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml", ".json", ".csv") and path.is_file() \
                and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()
