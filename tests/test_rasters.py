"""Grids and GeoTIFF output (EPSG:4545, metres)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from farmland.errors import OutputExistsError
from farmland.geostats.rasters import grid_cell_centres, grid_for_bounds, write_geotiff


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
