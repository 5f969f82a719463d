"""Tests for farmland.crs: EPSG derivation, metric CRS choice, CRS checks."""

from __future__ import annotations

import logging

import geopandas as gpd
import pyproj
import pytest
from shapely.geometry import Point, box

from farmland.crs import (
    coordinate_kind,
    ensure_crs,
    gk_epsg_for_central_meridian,
    gk_epsg_for_longitude,
    gk_epsg_for_zone,
    metric_crs_for,
    parse_crs,
    require_metric,
    same_crs,
    to_metric,
    zone_from_prefixed_easting,
)
from farmland.errors import CRSError, InputError


def _points(xy, crs):
    return gpd.GeoDataFrame({"id": [str(i) for i in range(len(xy))]},
                            geometry=[Point(x, y) for x, y in xy], crs=crs)


# EPSG derivation -------------------------------------------------------------------------
@pytest.mark.parametrize(("lon", "epsg"), [(108.0, 4545), (109.2, 4545), (111.0, 4546),
                                           (109.5, 4546), (106.6, 4545), (75.0, 4534),
                                           (73.2, 4534), (135.0, 4554), (136.0, 4554)])
def test_gk_epsg_for_longitude(lon, epsg):
    assert gk_epsg_for_longitude(lon) == epsg


def test_derived_codes_are_the_registry_crs_of_each_meridian():
    for cm in range(75, 136, 3):
        crs = pyproj.CRS.from_epsg(gk_epsg_for_longitude(cm - 1.2))
        assert crs.name == f"CGCS2000 / 3-degree Gauss-Kruger CM {cm}E"


@pytest.mark.parametrize("lon", [72.9, 136.1, -108.0, float("nan"), float("inf")])
def test_longitude_outside_china_is_refused(lon):
    with pytest.raises(CRSError, match="outside China"):
        gk_epsg_for_longitude(lon)


def test_central_meridian_must_be_a_registry_meridian():
    assert gk_epsg_for_central_meridian(108) == 4545
    with pytest.raises(CRSError, match="central meridian 109E"):
        gk_epsg_for_central_meridian(109)


@pytest.mark.parametrize(("zone", "epsg"), [(36, 4524), (25, 4513), (45, 4533), (13, 4491),
                                            (18, 4496), (23, 4501)])
def test_gk_epsg_for_zone(zone, epsg):
    assert gk_epsg_for_zone(zone) == epsg
    name = pyproj.CRS.from_epsg(epsg).name
    assert name.endswith(f"Gauss-Kruger zone {zone}")


@pytest.mark.parametrize("zone", [12, 24, 46])
def test_unknown_zone_is_refused(zone):
    with pytest.raises(CRSError, match="no CGCS2000 Gauss-Krüger zone"):
        gk_epsg_for_zone(zone)


def test_zone_from_prefixed_easting():
    assert zone_from_prefixed_easting(36_500_000) == 36
    assert zone_from_prefixed_easting(36_123_456.7) == 36
    assert zone_from_prefixed_easting(19_400_000) == 19
    with pytest.raises(CRSError, match="no zone prefix"):
        zone_from_prefixed_easting(500_000)
    with pytest.raises(CRSError, match="99 is no"):
        zone_from_prefixed_easting(99_000_000)


def test_coordinate_kind():
    assert coordinate_kind((108.1, 27.0, 108.3, 27.2)) == "lonlat"
    assert coordinate_kind((27.0, 108.1, 27.2, 108.3)) == "latlon"
    assert coordinate_kind((36_480_000, 3e6, 36_520_000, 3.1e6)) == "prefixed:36"
    assert coordinate_kind((480_000, 3e6, 520_000, 3.1e6)) == "metres"
    assert coordinate_kind((2.0, 48.0, 2.5, 48.5)) == "degrees"


# metric_crs_for ---------------------------------------------------------------------------
def test_metric_crs_keeps_a_projected_crs():
    gdf = _points([(500_000, 3_000_000)], 4545)
    assert metric_crs_for(gdf).to_epsg() == 4545


def test_metric_crs_from_geographic_data_logs_the_decision(caplog):
    caplog.set_level(logging.INFO, logger="farmland.crs")
    gdf = _points([(109.1, 27.0), (109.3, 27.1)], 4490)
    assert metric_crs_for(gdf).to_epsg() == 4545
    assert ("projected to EPSG:4545 (CGCS2000 / 3-degree GK CM 108E) derived from data "
            "longitude 109.2") in caplog.text


def test_metric_crs_from_crs_and_bounds():
    assert metric_crs_for((4326, (110.5, 30.0, 110.7, 30.2))).to_epsg() == 4546


def test_web_mercator_is_not_kept_as_metric():
    gdf = _points([(108.2, 27.0)], 4326).to_crs(3857)
    assert metric_crs_for(gdf).to_epsg() == 4545


def test_metric_crs_needs_a_crs():
    with pytest.raises(CRSError, match="no CRS"):
        metric_crs_for(_points([(1, 2)], None))


# ensure_crs -------------------------------------------------------------------------------
def test_no_crs_names_the_file_and_the_fix():
    gdf = _points([(480_000, 3_000_000), (520_000, 3_100_000)], None)
    with pytest.raises(CRSError, match=r"soil\.shp: no coordinate reference system .*"
                                       r"--crs EPSG:4545.*\.prj") as info:
        ensure_crs(gdf, file="soil.shp")
    assert isinstance(info.value, InputError)


def test_no_crs_with_prefixed_eastings_suggests_the_zone_crs():
    gdf = _points([(36_480_000, 3_000_000), (36_520_000, 3_100_000)], None)
    with pytest.raises(CRSError, match="zone number 36: pass --crs EPSG:4524"):
        ensure_crs(gdf, file="a.shp")


def test_no_crs_with_degrees_suggests_4490():
    with pytest.raises(CRSError, match="--crs EPSG:4490"):
        ensure_crs(_points([(108.1, 27.0)], None), file="a.shp")


def test_override_is_used_when_the_file_has_no_crs_and_input_is_untouched():
    gdf = _points([(480_000, 3_000_000)], None)
    out = ensure_crs(gdf, file="a.shp", crs="EPSG:4545")
    assert out.crs.to_epsg() == 4545
    assert gdf.crs is None


def test_declared_crs_wins_over_the_override(caplog):
    caplog.set_level(logging.INFO, logger="farmland.crs")
    gdf = _points([(108.1, 27.0)], 4490)
    assert ensure_crs(gdf, file="src.geojson", crs="EPSG:4545").crs.to_epsg() == 4490
    assert "keeping the CRS the file declares" in caplog.text


def test_metres_declared_as_degrees():
    gdf = _points([(480_000, 3_000_000)], 4490)
    with pytest.raises(CRSError, match=r"a\.gpkg: wrong CRS declared: EPSG:4490 .* metres"):
        ensure_crs(gdf, file="a.gpkg")


def test_degrees_declared_as_metres():
    gdf = _points([(108.1, 27.0), (108.3, 27.2)], 4545)
    with pytest.raises(CRSError, match="wrong CRS declared.*degrees.*EPSG:4490"):
        ensure_crs(gdf, file="a.gpkg")


def test_prefixed_eastings_declared_without_prefix():
    gdf = _points([(36_480_000, 3_000_000)], 4545)
    with pytest.raises(CRSError, match="zone number 36 but .* expects no zone prefix.*EPSG:4524"):
        ensure_crs(gdf, file="a.gpkg")


def test_plain_eastings_declared_as_a_prefixed_zone():
    gdf = _points([(480_000, 3_000_000)], 4524)
    with pytest.raises(CRSError, match="expects eastings prefixed with zone 36.*EPSG:4545"):
        ensure_crs(gdf, file="a.gpkg")


def test_prefixed_eastings_of_another_zone():
    gdf = _points([(37_480_000, 3_000_000)], 4524)
    with pytest.raises(CRSError, match="zone number 37 but .* expects zone 36.*EPSG:4525"):
        ensure_crs(gdf, file="a.gpkg")


def test_swapped_longitude_latitude():
    gdf = _points([(27.0, 108.1), (27.2, 108.3)], 4490)
    with pytest.raises(CRSError, match=r"b\.csv: longitude and latitude look swapped.*swap"):
        ensure_crs(gdf, file="b.csv")


def test_data_outside_china_is_only_a_warning(caplog):
    out = ensure_crs(_points([(2.3, 48.8)], 4326), file="paris.geojson")
    assert out.crs.to_epsg() == 4326
    assert "outside China" in caplog.text


# to_metric / same_crs ----------------------------------------------------------------
def test_to_metric_reprojects_a_copy():
    gdf = _points([(108.0, 30.0)], 4490)
    out = to_metric(gdf, 4545)
    assert out.geometry.x.iloc[0] == pytest.approx(500_000.0, abs=1e-6)  # on the meridian
    assert gdf.geometry.x.iloc[0] == 108.0 and gdf.crs.to_epsg() == 4490
    with pytest.raises(CRSError, match="not projected"):
        to_metric(gdf, 4326)


def test_same_crs_reprojects_and_refuses_a_missing_crs(caplog):
    caplog.set_level(logging.INFO, logger="farmland.crs")
    parcels = gpd.GeoDataFrame(geometry=[box(480_000, 3_000_000, 520_000, 3_100_000)], crs=4545)
    samples = _points([(108.0, 30.0)], 4490)
    out = same_crs(samples, parcels, "samples")
    assert out.crs.to_epsg() == 4545
    assert out.geometry.x.iloc[0] == pytest.approx(500_000.0, abs=1e-6)
    assert "reprojected samples" in caplog.text
    with pytest.raises(CRSError, match="samples and parcels disagree on the CRS"):
        same_crs(_points([(1, 2)], None), parcels, "samples")


def test_require_metric_refuses_degrees():
    with pytest.raises(CRSError, match="projected metric CRS"):
        require_metric(_points([(108.0, 30.0)], 4490))
    require_metric(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=4545))


@pytest.mark.parametrize("value", ["foo", "EPSG:99999"])
def test_an_unknown_crs_is_one_line_naming_the_value(value):
    with pytest.raises(CRSError, match="not a coordinate reference system") as err:
        parse_crs(value)
    assert f"(got {value!r})" in str(err.value) and "EPSG:4545" in str(err.value)
    gdf = gpd.GeoDataFrame(geometry=[Point(500_000, 2_700_000)])
    with pytest.raises(CRSError, match="not a coordinate reference system"):
        ensure_crs(gdf, file="parcels.gpkg", crs=value)


def test_parse_crs_reads_codes_as_users_write_them():
    assert parse_crs("EPSG:4545") == pyproj.CRS(4545)
    assert parse_crs(4490) == pyproj.CRS(4490)


@pytest.mark.parametrize("command", ["classify", "map", "sources"])
def test_cli_refuses_an_unknown_crs_before_reading(tmp_path, command):
    from click.testing import CliRunner

    from farmland.cli import main

    for name in ("p.gpkg", "s.csv", "classification.gpkg"):
        (tmp_path / name).write_text("")      # exist: the option is checked before reading
    args = {"classify": ["classify", "--parcels", str(tmp_path / "p.gpkg"),
                         "--samples", str(tmp_path / "s.csv")],
            "map": ["map", str(tmp_path / "classification.gpkg")],
            "sources": ["sources", str(tmp_path)]}[command]
    result = CliRunner().invoke(main, [*args, "--crs", "foo", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert ("farmland: error: --crs: not a coordinate reference system pyproj knows "
            "(got 'foo')") in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_extents_in_messages_are_plain_numbers():
    from farmland.crs import _fmt_bounds

    assert _fmt_bounds((612_345.4, 2_719_950.0, 618_000.6, 2_721_620.2)) == (
        "x 612345..618001, y 2719950..2721620")
    assert _fmt_bounds((108.5, 24.25, 108.75, 24.5)) == (
        "x 108.500000..108.750000, y 24.250000..24.500000")
