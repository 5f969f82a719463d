"""Field-team exports of a plan (farmland.sampling.field_export)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import X0, Y0

from farmland.errors import InputError, OutputExistsError
from farmland.sampling.field_export import GPX_NS, KML_NS, write_plan


@pytest.fixture
def plan():
    xy = [(X0 + 50, Y0 + 50), (X0 + 850, Y0 + 450), (X0 + 1450, Y0 + 950)]
    to = gpd.GeoSeries(shapely.points(xy), crs="EPSG:4545").to_crs(4326)
    return gpd.GeoDataFrame({
        "point_id": ["P001", "P002", "P003"],
        "lon": to.x.round(6), "lat": to.y.round(6),
        "x": [p[0] for p in xy], "y": [p[1] for p in xy],
        "township": ["大埔镇", "龙头镇", "T<&>"],
        "parcel_id": ["B1", "B2", "B3"],
        "mode": ["uncertainty", "coverage", "sources"],
        "reason": ["不确定性高: p(change)=0.46 / uncertain class",
                   "空间覆盖 / coverage gap",
                   'source "A&B" <smelter> / 污染源'],
        "priority": [1, 2, 3], "expected_benefit": [30.5, 2.0, 0.25],
    }, geometry=shapely.points(xy), crs="EPSG:4545")


def test_writes_four_files_without_temporaries(tmp_path, plan):
    paths = write_plan(plan, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "plan.csv", "plan.gpkg", "plan.gpx", "plan.kml"]
    assert set(paths) == {"csv", "gpx", "kml", "gpkg"}


def test_csv_has_bom_bilingual_headers_and_decimals(tmp_path, plan):
    path = write_plan(plan, tmp_path)["csv"]
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw[3:].decode("utf-8").splitlines()[0].startswith("点位编号 point_id,经度 lon (WGS84)")
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    assert back["乡镇 township"].tolist() == ["大埔镇", "龙头镇", "T<&>"]
    assert back["X 坐标 x (m)"].tolist() == ["500050.00", "500850.00", "501450.00"]
    assert all(len(v.split(".")[1]) == 6 for v in back["经度 lon (WGS84)"])


def test_gpx_is_valid_xml_and_opens_in_gdal(tmp_path, plan):
    path = write_plan(plan, tmp_path)["gpx"]
    root = ET.parse(path).getroot()
    assert root.tag == f"{{{GPX_NS}}}gpx" and root.get("version") == "1.1"
    wpts = root.findall(f"{{{GPX_NS}}}wpt")
    assert [w.findtext(f"{{{GPX_NS}}}name") for w in wpts] == ["P001", "P002", "P003"]
    desc = wpts[2].findtext(f"{{{GPX_NS}}}desc")
    assert desc.startswith('source "A&B" <smelter> / 污染源')   # escaped in the file
    assert "&lt;smelter&gt;" in path.read_text("utf-8")
    assert float(wpts[0].get("lat")) == pytest.approx(plan["lat"].iloc[0])
    gdal = pyogrio.read_dataframe(path, layer="waypoints")
    assert gdal["name"].tolist() == ["P001", "P002", "P003"]
    assert gdal.geometry.x.tolist() == pytest.approx(plan["lon"].tolist())


def test_kml_placemarks_parse_back(tmp_path, plan):
    path = write_plan(plan, tmp_path)["kml"]
    root = ET.parse(path).getroot()
    marks = root.findall(f".//{{{KML_NS}}}Placemark")
    assert [m.findtext(f"{{{KML_NS}}}name") for m in marks] == ["P001", "P002", "P003"]
    lon, lat = marks[1].findtext(f".//{{{KML_NS}}}coordinates").split(",")
    assert (float(lon), float(lat)) == pytest.approx((plan["lon"].iloc[1], plan["lat"].iloc[1]))


def test_gpkg_round_trip_in_metric_crs(tmp_path, plan):
    path = write_plan(plan, tmp_path)["gpkg"]
    back = pyogrio.read_dataframe(path, layer="plan")
    assert back["point_id"].tolist() == ["P001", "P002", "P003"]
    assert back.crs.to_epsg() == 4545
    assert back.geometry.x.tolist() == pytest.approx([X0 + 50, X0 + 850, X0 + 1450])


def test_existing_outputs_need_overwrite(tmp_path, plan):
    write_plan(plan, tmp_path)
    before = (tmp_path / "plan.csv").read_bytes()
    with pytest.raises(OutputExistsError, match="plan.csv: output already exists"):
        write_plan(plan.iloc[:1], tmp_path)
    assert (tmp_path / "plan.csv").read_bytes() == before
    write_plan(plan.iloc[:1], tmp_path, overwrite=True)
    assert len(pd.read_csv(tmp_path / "plan.csv", encoding="utf-8-sig")) == 1
    assert len(pyogrio.read_dataframe(tmp_path / "plan.gpx", layer="waypoints")) == 1


def test_empty_plan_and_missing_columns(tmp_path, plan):
    paths = write_plan(plan.iloc[:0], tmp_path)
    assert ET.parse(paths["gpx"]).getroot().findall(f"{{{GPX_NS}}}wpt") == []
    with pytest.raises(InputError, match="plan lacks column.*lon"):
        write_plan(plan.drop(columns=["lon"]), tmp_path / "x")
