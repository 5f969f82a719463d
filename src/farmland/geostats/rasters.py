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
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine

from farmland.io.write import atomic_write, refuse_existing

logger = logging.getLogger(__name__)

BLOCK = 256
#: rasters at least this wide or tall get overviews
OVERVIEW_MIN = 512
#: cells per tile side when listing cells inside polygons (sets their order)
TILE = 2048
#: candidate cell centres tested per chunk of polygons (bounds memory)
CANDIDATE_CHUNK = 1 << 22


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


def polygon_cells(geoms: np.ndarray, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the grid cells that lie in polygons, and which polygon holds each.

    The grid is aligned to multiples of ``cell_size`` (as :func:`grid_for_bounds`). A
    centre belongs to a polygon by GDAL's burn rule (``rasterio.features.rasterize``,
    which this replaces): when it lies inside; when it lies exactly on the boundary, if
    the point just left of it lies in the polygon or on its boundary — a centre on a
    polygon's left edge is outside it, on its right, top or bottom edge inside, so a
    centre on an edge shared by two parcels of a coverage belongs to one of them (GDAL
    differs only for a centre exactly on a hole's upper edge, which it leaves out). A centre in several polygons (an overlap) belongs to the
    last of them, as when polygons are burnt in order. Candidates are the centres in
    each polygon's bounding box, tested with ``shapely.intersects_xy``: the cost follows
    the bounding-box areas, with no Python call per polygon.

    Parameters
    ----------
    geoms
        Array of (Multi)Polygons in a metric CRS.
    cell_size
        Cell side in metres, > 0.

    Returns
    -------
    coords, labels
        ``coords`` (m, 2) cell centres in metres, row by row from the top left within
        tiles of ``TILE`` × ``TILE`` cells; ``labels`` (m,) the index in ``geoms`` of the
        polygon holding each. Polygons without a cell centre are not listed.
    """
    if len(geoms) == 0:
        return np.empty((0, 2)), np.empty(0, dtype=np.int64)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    x0, y0 = np.floor(minx / cell_size) * cell_size, np.floor(miny / cell_size) * cell_size
    top = y0 + (int(np.ceil((maxy - y0) / cell_size)) or 1) * cell_size
    n_cols = int(np.ceil((maxx - x0) / cell_size)) or 1
    b = shapely.bounds(geoms)
    eps = 1e-9  # a centre on a bounding-box edge stays a candidate despite rounding
    c_lo = np.ceil((b[:, 0] - x0) / cell_size - 0.5 - eps).astype(np.int64)
    c_hi = np.floor((b[:, 2] - x0) / cell_size - 0.5 + eps).astype(np.int64)
    r_lo = np.ceil((top - b[:, 3]) / cell_size - 0.5 - eps).astype(np.int64)
    r_hi = np.floor((top - b[:, 1]) / cell_size - 0.5 + eps).astype(np.int64)
    boxes = (np.maximum(c_lo, 0), np.maximum(c_hi - np.maximum(c_lo, 0) + 1, 0),
             np.maximum(r_lo, 0), np.maximum(r_hi - np.maximum(r_lo, 0) + 1, 0))
    total = np.cumsum(boxes[1] * boxes[3])
    cuts = np.searchsorted(total, np.arange(CANDIDATE_CHUNK, total[-1], CANDIDATE_CHUNK))
    parts = [_cells_in(geoms, boxes, part, (x0, top, cell_size))
             for part in np.split(np.arange(len(geoms)), np.unique(cuts))]
    rows, cols, labels = (np.concatenate(a) for a in zip(*parts, strict=True))
    tiles_across = -(-n_cols // TILE)
    key = (((rows // TILE) * tiles_across + cols // TILE) * TILE + rows % TILE) * TILE + cols % TILE
    order = np.lexsort((labels, key))
    last = np.ones(len(key), dtype=bool)  # the last polygon holding a cell
    last[:-1] = key[order][1:] != key[order][:-1]
    keep = order[last]
    rows, cols = rows[keep], cols[keep]
    x = x0 + (cols // TILE) * TILE * cell_size + (cols % TILE + 0.5) * cell_size
    y = top - (rows // TILE) * TILE * cell_size - (rows % TILE + 0.5) * cell_size
    return np.column_stack([x, y]), labels[keep]


def _cells_in(geoms: np.ndarray, boxes: tuple, part: np.ndarray,
              grid: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, polygon index) of the candidate centres of polygons ``part`` that lie in
    them; ``boxes`` are every polygon's first column, column count, first row, row count."""
    x0, top, cell = grid
    c_lo, n_c, r_lo, n_r = (a[part] for a in boxes)
    count = n_c * n_r
    label = np.repeat(part, count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    width = np.repeat(np.maximum(n_c, 1), count)
    cols = np.repeat(c_lo, count) + offset % width
    rows = np.repeat(r_lo, count) + offset // width
    x, y, polys = x0 + (cols + 0.5) * cell, top - (rows + 0.5) * cell, geoms[label]
    inside = shapely.contains_xy(polys, x, y)
    rest = np.flatnonzero(~inside)
    edge = rest[shapely.intersects_xy(polys[rest], x[rest], y[rest])]  # exactly on the boundary
    nudge = np.maximum(cell * 1e-9, 64 * np.spacing(np.abs(x[edge])))  # "just left of it"
    inside[edge] = shapely.intersects_xy(polys[edge], x[edge] - nudge, y[edge])
    return rows[inside], cols[inside], label[inside]


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
    with (atomic_write(path, overwrite=overwrite) as tmp,
          rasterio.open(tmp, "w", **_profile(data, transform, crs, nodata)) as dst):
        dst.write(data)
    logger.info("wrote %s (%d × %d, %d band(s))", path, data.shape[1], data.shape[2], data.shape[0])
    return path
