"""Raster grids and GeoTIFF output (cloud-optimised layout).

Grids are north-up, in the metric CRS of the data; cell sizes are metres.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from farmland.io.write import atomic_write, refuse_existing

logger = logging.getLogger(__name__)

BLOCK = 256
#: rasters at least this wide or tall get overviews
OVERVIEW_MIN = 512


def grid_for_bounds(
    bounds: tuple[float, float, float, float], cell_size: float
) -> tuple[Affine, tuple[int, int]]:
    """A north-up grid covering ``bounds`` with square cells.

    The origin is snapped outward to a multiple of ``cell_size`` so that grids
    made for different extents with one cell size line up cell for cell.

    Parameters
    ----------
    bounds
        (minx, miny, maxx, maxy) in metres (projected CRS).
    cell_size
        Cell width and height in metres, > 0.

    Returns
    -------
    transform, shape
        Affine transform (top-left origin) and (rows, cols), at least (1, 1).
    """
    minx, miny, maxx, maxy = map(float, bounds)
    if not (
        cell_size > 0
        and all(map(math.isfinite, (minx, miny, maxx, maxy)))
        and maxx >= minx
        and maxy >= miny
    ):
        raise ValueError(
            f"need finite bounds with max >= min and cell_size > 0, got {bounds}, {cell_size}"
        )
    x0 = math.floor(minx / cell_size) * cell_size
    y1 = math.ceil(maxy / cell_size) * cell_size
    cols = max(1, math.ceil((maxx - x0) / cell_size))
    rows = max(1, math.ceil((y1 - miny) / cell_size))
    return Affine(cell_size, 0.0, x0, 0.0, -cell_size, y1), (rows, cols)


def grid_cell_centres(transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """(rows · cols, 2) x/y of the cell centres in row-major order (metres).

    ``values.reshape(shape)`` turns per-centre estimates back into the raster.
    """
    rows, cols = shape
    c, r = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    x = transform.c + transform.a * c + transform.b * r
    y = transform.f + transform.d * c + transform.e * r
    return np.column_stack([x.ravel(), y.ravel()])


def _profile(array: np.ndarray, transform: Affine, crs: object, nodata: float) -> dict:
    bands, rows, cols = array.shape
    common = {
        "count": bands,
        "height": rows,
        "width": cols,
        "dtype": "float32",
        "transform": transform,
        "crs": CRS.from_user_input(crs),
        "nodata": nodata,
        "compress": "DEFLATE",
    }
    with rasterio.Env() as env:
        has_cog = "COG" in env.drivers()
    if has_cog:
        overviews = "AUTO" if max(rows, cols) >= OVERVIEW_MIN else "NONE"
        return {
            **common,
            "driver": "COG",
            "blocksize": BLOCK,
            "overviews": overviews,
            "predictor": "YES",
        }
    return {
        **common,
        "driver": "GTiff",
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "predictor": 3,
    }


def write_geotiff(
    path: str | os.PathLike,
    array: np.ndarray,
    *,
    transform: Affine,
    crs: object,
    nodata: float = np.nan,
    overwrite: bool = False,
) -> Path:
    """Write a float32 GeoTIFF, cloud-optimised, atomically (temporary file + rename).

    Parameters
    ----------
    path
        Output ``.tif``; its folder is created if needed.
    array
        (rows, cols) or (bands, rows, cols); NaN cells become ``nodata``.
    transform
        Affine transform of the grid (e.g. from :func:`grid_for_bounds`).
    crs
        The grid's CRS (EPSG code, WKT, pyproj/rasterio CRS) — the metric CRS of the data.
    nodata
        Nodata value written in the header (default NaN).
    overwrite
        Replace an existing file; otherwise :class:`~farmland.errors.OutputExistsError`.

    Notes
    -----
    GDAL's COG driver when available (256 × 256 tiles, DEFLATE with floating-point
    predictor, overviews when the raster is at least 512 cells wide or tall);
    otherwise a tiled GTiff with the same options (no overviews).
    """
    path = Path(path)
    refuse_existing([path], overwrite=overwrite)
    data = np.asarray(array, dtype=np.float32)
    data = data[None] if data.ndim == 2 else data
    if data.ndim != 3:
        raise ValueError(
            f"array must be 2-D or 3-D (bands, rows, cols), got shape {np.shape(array)}"
        )
    if not np.isnan(nodata):
        data = np.where(np.isnan(data), np.float32(nodata), data)
    with atomic_write(path, overwrite=overwrite) as tmp:
        with rasterio.open(tmp, "w", **_profile(data, transform, crs, nodata)) as dst:
            dst.write(data)
    logger.info("wrote %s (%d × %d, %d band(s))", path, data.shape[1], data.shape[2], data.shape[0])
    return path
