"""Grids and GeoTIFF output (EPSG:4545, metres)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy.spatial import Voronoi

from farmland.errors import OutputExistsError
from farmland.geostats import rasters
from farmland.geostats.rasters import (
    grid_cell_centres,
    grid_for_bounds,
    polygon_cells,
    write_geotiff,
)


def test_grid_for_bounds_snaps_outward_to_the_cell_size():
    transform, shape = grid_for_bounds((500_010.0, 3_000_005.0, 500_250.0, 3_000_190.0), 100.0)
    # x from 500 000 to 500 300 (3 cells), y from 3 000 200 down to 3 000 000 (2 rows)
    assert (transform.c, transform.f, transform.a, transform.e) == (
        500_000.0,
        3_000_200.0,
        100.0,
        -100.0,
    )
    assert shape == (2, 3)


def test_grid_for_a_single_point_has_one_cell():
    assert grid_for_bounds((50.0, 50.0, 50.0, 50.0), 10.0)[1] == (1, 1)


def test_grid_rejects_bad_cell_size():
    with pytest.raises(ValueError, match="cell_size > 0"):
        grid_for_bounds((0.0, 0.0, 10.0, 10.0), 0.0)


def test_cell_centres_row_major():
    transform, _ = grid_for_bounds((0.0, 0.0, 300.0, 200.0), 100.0)
    np.testing.assert_allclose(
        grid_cell_centres(transform, (2, 3)),
        [[50, 150], [150, 150], [250, 150], [50, 50], [150, 50], [250, 50]],
    )


def test_write_geotiff_round_trip_with_cog_layout(tmp_path):
    transform, shape = grid_for_bounds((500_000.0, 3_000_000.0, 560_000.0, 3_040_000.0), 100.0)
    data = np.arange(shape[0] * shape[1], dtype=float).reshape(shape)
    data[0, 0] = np.nan
    path = write_geotiff(tmp_path / "cd.tif", data, transform=transform, crs="EPSG:4545")
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 4545 and src.transform == transform
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.block_shapes == [(256, 256)] and src.compression.name.upper() == "DEFLATE"
        assert src.overviews(1)  # 400 × 600 >= 512 wide
        back = src.read(1)
    assert np.isnan(back[0, 0]) and back[1, 2] == pytest.approx(data[1, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["cd.tif"]  # no temporary file left


def test_write_geotiff_small_numeric_nodata_and_overwrite(tmp_path):
    transform, _ = grid_for_bounds((0.0, 0.0, 30.0, 20.0), 10.0)
    data = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    path = write_geotiff(tmp_path / "x.tif", data, transform=transform, crs=4545, nodata=-9999.0)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_geotiff(path, data, transform=transform, crs=4545)
    write_geotiff(path, data * 2, transform=transform, crs=4545, nodata=-9999.0, overwrite=True)
    with rasterio.open(path) as src:
        assert src.nodata == -9999.0 and not src.overviews(1)
        np.testing.assert_array_equal(src.read(1), [[2.0, -9999.0, 6.0], [8.0, 10.0, 12.0]])


# ----------------------------------------------------------------------- cells in polygons


def test_polygon_cells_by_hand():
    # 10 m grid; the 25 × 20 m box from (500 000, 3 000 000) holds the centres x = 500 005,
    # 500 015 and 500 025 (on its right edge: inside) at y = 3 000 005 and 3 000 015; the
    # triangle beside it, 12 m high, is 20 − 5/12 · 20 = 11.7 m wide at y = 3 000 005, so
    # it holds (500 035, 3 000 005) only
    box = shapely.box(500_000.0, 3_000_000.0, 500_025.0, 3_000_020.0)
    tri = shapely.Polygon([(500_030, 3_000_000), (500_050, 3_000_000), (500_030, 3_000_012)])
    coords, labels = polygon_cells(np.array([box, tri]), 10.0)
    # row by row from the top: y 3 000 015 first
    np.testing.assert_array_equal(coords, [[500_005, 3_000_015], [500_015, 3_000_015],
                                           [500_025, 3_000_015], [500_005, 3_000_005],
                                           [500_015, 3_000_005], [500_025, 3_000_005],
                                           [500_035, 3_000_005]])
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 0, 0, 1])


def test_a_centre_on_a_shared_edge_belongs_to_one_parcel_and_an_overlap_to_the_last():
    left = shapely.box(0.0, 0.0, 15.0, 10.0)  # the edge x = 15 runs through a centre: the
    right = shapely.box(15.0, 0.0, 30.0, 10.0)  # left box's right edge, so the centre is its
    coords, labels = polygon_cells(np.array([left, right]), 10.0)
    np.testing.assert_array_equal(coords, [[5, 5], [15, 5], [25, 5]])
    np.testing.assert_array_equal(labels, [0, 0, 1])
    _, labels = polygon_cells(np.array([shapely.box(0, 0, 30, 10), shapely.box(12, 0, 30, 10)]),
                              10.0)
    np.testing.assert_array_equal(labels, [0, 1, 1])  # the overlap: the last polygon


_EDGE_CASES = [  # edges and vertices through cell centres (10 m grid, centres at 5, 15, …)
    shapely.box(15, 45, 35, 65),
    shapely.Polygon([(5, 5), (45, 45), (45, 5)]),
    shapely.Polygon([(5, 5), (45, 45), (5, 45)]),
    shapely.Polygon([(25, 5), (45, 25), (25, 45), (5, 25)]),
    shapely.Polygon([(5, 55), (95, 55), (95, 95), (75, 95), (75, 75), (25, 75), (25, 95),
                     (5, 95)]),  # a notch: horizontal edges facing down and up
    shapely.box(55, 5, 95, 45).difference(shapely.box(62, 12, 88, 38)),  # a hole off the centres
]


@pytest.mark.parametrize("geom", _EDGE_CASES, ids=range(len(_EDGE_CASES)))
def test_edges_through_centres_follow_gdals_burn_rule(geom):
    burnt = rasterize([(geom, 1)], out_shape=(10, 10), transform=Affine(10, 0, 0, 0, -10, 100),
                      fill=0, dtype="int32")
    r, c = np.nonzero(burnt)
    expected = sorted(zip((c * 10 + 5).tolist(), (100 - r * 10 - 5).tolist()))
    coords, _ = polygon_cells(np.array([geom]), 10.0)
    assert sorted(map(tuple, coords.tolist())) == expected


def _voronoi_parcels(seed: int, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 2000, (n, 2)) * [1.7, 1.0] + [400_000.0, 3_000_000.0]
    vor = Voronoi(pts)
    frame = shapely.box(400_100.0, 3_000_100.0, 403_300.0, 3_001_900.0)
    cells = [shapely.Polygon(vor.vertices[vor.regions[r]]) for r in vor.point_region
             if -1 not in vor.regions[r] and vor.regions[r]]
    geoms = shapely.intersection(np.array(cells), frame)
    return geoms[~shapely.is_empty(geoms) & (shapely.area(geoms) > 0)]


@pytest.mark.parametrize("cell", [30.0, 12.5])
def test_polygon_cells_are_the_cells_rasterio_burns(cell, monkeypatch):
    """The burn rule of GDAL (centre inside), polygons in order, small tiles."""
    monkeypatch.setattr(rasters, "TILE", 16)  # several tiles
    monkeypatch.setattr(rasters, "CANDIDATE_CHUNK", 5_000)  # several chunks
    geoms = _voronoi_parcels(3)
    coords, labels = polygon_cells(geoms, cell)
    # reference: burn the polygons' indices, tile by tile as the grid is listed
    x0, y0 = np.floor(shapely.total_bounds(geoms)[:2] / cell) * cell
    rows = int(np.ceil((shapely.total_bounds(geoms)[3] - y0) / cell))
    cols = int(np.ceil((shapely.total_bounds(geoms)[2] - x0) / cell))
    top = y0 + rows * cell
    ref_xy, ref_labels = [], []
    for r0 in range(0, rows, 16):
        for c0 in range(0, cols, 16):
            h, w = min(16, rows - r0), min(16, cols - c0)
            burnt = rasterize(zip(geoms, range(1, len(geoms) + 1)), out_shape=(h, w),
                              transform=Affine(cell, 0, x0 + c0 * cell, 0, -cell,
                                               top - r0 * cell), fill=0, dtype="int32")
            r, c = np.nonzero(burnt)
            ref_xy.append(np.column_stack([x0 + c0 * cell + (c + 0.5) * cell,
                                           top - r0 * cell - (r + 0.5) * cell]))
            ref_labels.append(burnt[r, c] - 1)
    np.testing.assert_array_equal(coords, np.vstack(ref_xy))
    np.testing.assert_array_equal(labels, np.concatenate(ref_labels))


def test_polygon_cells_of_nothing():
    for geoms in (np.array([], dtype=object), np.array([shapely.box(1, 1, 5, 5)])):  # no centre
        coords, labels = polygon_cells(geoms, 30.0)
        assert coords.shape == (0, 2) and labels.shape == (0,)
